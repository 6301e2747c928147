// Package machinetest gives tests of any package a real machines_dir: a
// fresh loop-mounted btrfs image per call, holding a debootstrapped bookworm
// build machine imported from a cache tarball under /var/cache/buildd-test:
// the host's native machine (New), a foreign architecture's emulated
// through qemu-user (NewArch) or a cross machine (NewCross). Each cache is
// made once with the real create path (machine.Store.Create: debootstrap
// from the host's apt mirror) and kept while its inputs (dist, arch, cross
// architecture, mirror, machine.SetupVersion) are unchanged; concurrent test
// processes wait on a lock file instead of racing to make it. Everything a
// call makes is removed by t.Cleanup. Without root, btrfs or debootstrap the
// test is skipped with a loud message.
package machinetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/internal/flock"
	"buildd/internal/machine"
)

// CacheDir holds the cached machine tarballs.
const CacheDir = "/var/cache/buildd-test"

// Dist is the distribution of the test machine.
const Dist = "bookworm"

// Env is a machines_dir with one machine in it.
type Env struct {
	Dir     string // the loop-mounted btrfs machines_dir
	Store   *machine.Store
	Machine string // "bookworm-ARCH"
	Dist    string
	Arch    string
	Mirror  string
}

// Require skips t loudly unless it runs as root with btrfs, losetup and
// debootstrap available.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	switch {
	case os.Geteuid() != 0:
		why = "not root"
	case !hasBtrfs():
		why = "the kernel has no btrfs"
	}
	for _, p := range []string{"mkfs.btrfs", "losetup", "mount", "umount", "debootstrap", "tar"} {
		if _, err := exec.LookPath(p); err != nil && why == "" {
			why = p + " not found"
		}
	}
	if why != "" {
		msg := fmt.Sprintf("!!!!! SKIPPED %s: needs root and btrfs for real build machines: %s !!!!!", t.Name(), why)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

func hasBtrfs() bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err == nil && strings.Contains(string(data), "\tbtrfs\n") {
		return true
	}
	return exec.Command("modprobe", "btrfs").Run() == nil
}

func run(t testing.TB, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// NewDir returns an empty directory on a fresh loop-mounted btrfs image;
// t.Cleanup unmounts it, detaches the loop device and deletes the image.
func NewDir(t testing.TB) string {
	t.Helper()
	Require(t)
	base := t.TempDir()
	img := filepath.Join(base, "machines.img")
	mnt := filepath.Join(base, "machines")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, time.Minute, "truncate", "-s", "8G", img)
	run(t, time.Minute, "mkfs.btrfs", "-q", img)
	dev := run(t, time.Minute, "losetup", "--find", "--show", img)
	if err := exec.Command("mount", "-t", "btrfs", "-o", "noatime", dev, mnt).Run(); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		t.Fatalf("mount %s on %s: %v", dev, mnt, err)
	}
	t.Cleanup(func() {
		var out []byte
		var err error
		for i := 0; i < 50; i++ {
			if out, err = exec.Command("umount", mnt).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
		exec.Command("losetup", "-d", dev).Run()
	})
	return mnt
}

// Arch is the host's Debian architecture.
func Arch(t testing.TB) string {
	return run(t, time.Minute, "dpkg", "--print-architecture")
}

// Tarball returns the cached tarball of the host's native machine, making
// it first if needed.
func Tarball(t testing.TB) string {
	t.Helper()
	return tarball(t, machine.CreateOptions{Dist: Dist, Arch: Arch(t)})
}

// tarball returns the cached tarball of the machine opt describes (its
// mirror the host's), made with the real create path the first time.
func tarball(t testing.TB, opt machine.CreateOptions) string {
	t.Helper()
	Require(t)
	mirror, err := machine.HostMirror("/", Dist)
	if err != nil {
		t.Fatal(err)
	}
	opt.Mirror = mirror
	inputs := []string{opt.Dist, opt.Arch, mirror, machine.SetupVersion}
	if opt.Cross != "" {
		inputs = append(inputs, "cross "+opt.Cross+" "+machine.CrossSetupVersion)
	}
	key := sha256.Sum256([]byte(strings.Join(inputs, "\n")))
	kind := opt.Arch
	if opt.Cross != "" {
		kind += "-cross-" + opt.Cross
	}
	path := filepath.Join(CacheDir, fmt.Sprintf("machine-%s-%s-%x.tar", opt.Dist, kind, key[:8]))
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lk, err := flock.Acquire(path+".lock", flock.Exclusive, 0o644, 60*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	t.Logf("making the test machine cache %s (debootstrap, once)", path)
	dir := NewDir(t)
	s, err := machine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	s.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if err := s.Create(ctx, "cache", opt); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	tmp := path + ".tmp"
	run(t, 10*time.Minute, "tar", "-C", filepath.Join(dir, "cache", "cache-1"), "--numeric-owner", "--xattrs", "-cf", tmp, ".")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// New returns a fresh machines_dir holding the machine "bookworm-ARCH"
// of the host's architecture.
func New(t testing.TB) *Env {
	t.Helper()
	return newEnv(t, machine.CreateOptions{Dist: Dist, Arch: Arch(t)}, Dist+"-"+Arch(t))
}

// NewArch returns a fresh machines_dir holding the machine "bookworm-ARCH"
// of a foreign architecture, emulated through qemu-user. It skips the
// test, loudly, when the host cannot run arch (machine.CheckEmulation says
// what is missing; make deps sets it up).
func NewArch(t testing.TB, arch string) *Env {
	t.Helper()
	Require(t)
	requireEmulation(t, arch)
	return newEnv(t, machine.CreateOptions{Dist: Dist, Arch: arch}, Dist+"-"+arch)
}

// NewCross returns a fresh machines_dir holding "bookworm-cross-ARCH", a
// cross machine of the host's architecture for arch.
func NewCross(t testing.TB, arch string) *Env {
	t.Helper()
	return newEnv(t, machine.CreateOptions{Dist: Dist, Arch: Arch(t), Cross: arch}, Dist+"-cross-"+arch)
}

// newEnv imports the cached machine of opt as name into a fresh
// machines_dir. Env.Arch is the architecture the machine builds for.
func newEnv(t testing.TB, opt machine.CreateOptions, name string) *Env {
	t.Helper()
	tar := tarball(t, opt)
	mirror, _ := machine.HostMirror("/", Dist)
	dir := NewDir(t)
	s, err := machine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	arch := opt.Arch
	if opt.Cross != "" {
		arch = opt.Cross
	}
	e := &Env{Dir: dir, Store: s, Machine: name, Dist: Dist, Arch: arch, Mirror: mirror}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log strings.Builder
	s.Log = &log
	if err := s.Import(ctx, e.Machine, tar, opt); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	s.Log = nil
	return e
}

// AddArch imports the emulated machine "bookworm-ARCH" of a foreign
// architecture into e's machines_dir (skipping the test, loudly, when the
// host cannot run arch) and returns its name.
func (e *Env) AddArch(t testing.TB, arch string) string {
	t.Helper()
	requireEmulation(t, arch)
	opt := machine.CreateOptions{Dist: Dist, Arch: arch}
	tar := tarball(t, opt)
	name := Dist + "-" + arch
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := e.Store.Import(ctx, name, tar, opt); err != nil {
		t.Fatal(err)
	}
	return name
}

// requireEmulation skips t, loudly, unless this host runs arch.
func requireEmulation(t testing.TB, arch string) {
	t.Helper()
	if err := machine.CheckEmulation(arch); err != nil {
		msg := fmt.Sprintf("!!!!! SKIPPED %s: %v !!!!!", t.Name(), err)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
}

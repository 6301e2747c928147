// Package machinetest gives tests of any package a real machines_dir: a
// fresh loop-mounted btrfs image per call, holding a debootstrapped bookworm
// build machine imported from a cache tarball under /var/cache/buildd-test.
// The cache is made once with the real create path (machine.Store.Create:
// debootstrap from the host's apt mirror) and kept while its inputs (dist,
// arch, mirror, machine.SetupVersion) are unchanged; concurrent test
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

// Tarball returns the cached machine tarball, making it first if needed.
func Tarball(t testing.TB) string {
	t.Helper()
	Require(t)
	arch := Arch(t)
	mirror, err := machine.HostMirror("/", Dist)
	if err != nil {
		t.Fatal(err)
	}
	key := sha256.Sum256([]byte(strings.Join([]string{Dist, arch, mirror, machine.SetupVersion}, "\n")))
	path := filepath.Join(CacheDir, fmt.Sprintf("machine-%s-%s-%x.tar", Dist, arch, key[:8]))
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lk, err := flock.Acquire(path+".lock", flock.Exclusive, 0o644, 30*time.Minute)
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := s.Create(ctx, "cache", machine.CreateOptions{Dist: Dist, Arch: arch, Mirror: mirror}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	tmp := path + ".tmp"
	run(t, 10*time.Minute, "tar", "-C", filepath.Join(dir, "cache", "cache-1"), "--numeric-owner", "--xattrs", "-cf", tmp, ".")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// New returns a fresh machines_dir holding the machine "bookworm-ARCH".
func New(t testing.TB) *Env {
	t.Helper()
	tar := Tarball(t)
	arch := Arch(t)
	mirror, _ := machine.HostMirror("/", Dist)
	dir := NewDir(t)
	s, err := machine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := &Env{Dir: dir, Store: s, Machine: Dist + "-" + arch, Dist: Dist, Arch: arch, Mirror: mirror}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log strings.Builder
	s.Log = &log
	if err := s.Import(ctx, e.Machine, tar, machine.CreateOptions{Dist: Dist, Arch: arch}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	s.Log = nil
	return e
}

package machine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/flock"
	"buildd/internal/machine/sandbox"
)

// SetupVersion changes whenever what Create puts into a machine changes,
// CrossSetupVersion whenever what it adds to a cross machine does (test
// caches of machines are keyed by them).
const (
	SetupVersion      = "2"
	CrossSetupVersion = "2"
)

// crossPackages are what a cross machine for arch has installed beside
// the native build-essential, as sbuild's cross builds have: the cross
// toolchain, and the architecture's C library and C++ runtime, whose
// shlibs and symbols dpkg-shlibdeps reads for the programs built.
func crossPackages(arch string) []string {
	return []string{"crossbuild-essential-" + arch, "libc6-dev:" + arch, "libstdc++6:" + arch}
}

// The unprivileged user builds run as, inside every machine.
const (
	BuildUser = "buildd"
	BuildUID  = 2001
	BuildHome = "/build"
)

// CreateOptions says what machine Create makes.
type CreateOptions struct {
	Dist   string // e.g. bookworm
	Arch   string // e.g. amd64; "" is the host's (dpkg --print-architecture)
	Mirror string // archive URI; "" reads the host's apt sources
	// Cross is the architecture the machine cross-builds for: Arch's
	// machine with Cross added (dpkg --add-architecture) and
	// crossbuild-essential-CROSS installed; "" for a native machine.
	Cross string
}

// adminTimeout bounds each external command of Create and Upgrade.
const adminTimeout = 30 * time.Minute

// Create debootstraps a new machine (or a new revision of a machine that
// has no current one), sets it up for builds, makes it read-only and current.
func (s *Store) Create(ctx context.Context, name string, opt CreateOptions) error {
	if opt.Dist == "" {
		return fmt.Errorf("create %s: no dist", name)
	}
	if opt.Arch == "" {
		host, err := HostArch()
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		opt.Arch = host
	}
	if err := CheckEmulation(opt.Arch); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if opt.Cross != "" {
		if _, ok := qemuNames[opt.Cross]; !ok || opt.Cross == opt.Arch {
			return fmt.Errorf("create %s: cannot cross-build for %q on %s", name, opt.Cross, opt.Arch)
		}
	}
	if opt.Mirror == "" {
		m, err := HostMirror("/", opt.Dist)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		opt.Mirror = m
	}
	return s.makeRevision(ctx, name, opt, func(ctx context.Context, dir string) error {
		if err := s.run(ctx, "debootstrap", "--variant=buildd", "--arch="+opt.Arch, "--include=fakeroot",
			opt.Dist, dir, opt.Mirror); err != nil {
			return err
		}
		return s.setup(ctx, dir, opt)
	})
}

// Import makes a new current revision of machine name from a tar archive of
// a machine's tree (as `tar -C REVISION -cf FILE .` writes it; compressed
// archives are fine). dist and arch are recorded for List.
func (s *Store) Import(ctx context.Context, name, tarball string, opt CreateOptions) error {
	if _, err := os.Stat(tarball); err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	return s.makeRevision(ctx, name, opt, func(ctx context.Context, dir string) error {
		return s.run(ctx, "tar", "-x", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-f", tarball, "-C", dir)
	})
}

// makeRevision makes .new-N, fills it, makes it read-only, renames it NAME-N
// and makes it current. A machine that already has a current revision is
// refused: that is Upgrade's job.
func (s *Store) makeRevision(ctx context.Context, name string, opt CreateOptions, fill func(context.Context, string) error) error {
	if err := checkName(name); err != nil {
		return err
	}
	d := s.machineDir(name)
	if _, err := os.Stat(d); err == nil {
		if _, err := os.Stat(filepath.Join(d, markerName)); err != nil {
			return fmt.Errorf("create %s: %s exists and is not a buildd machine: left alone", name, d)
		}
	} else if err := os.Mkdir(d, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	al, err := flock.Acquire(filepath.Join(d, adminLock), flock.Exclusive, 0o644, 0)
	if err != nil {
		return fmt.Errorf("create %s: another create, upgrade or delete is running: %w", name, err)
	}
	defer al.Unlock()
	if _, _, err := currentRevision(d, name); err == nil {
		return fmt.Errorf("create %s: machine already exists (use upgrade, or delete it first)", name)
	}
	if err := (marker{Dist: opt.Dist, Arch: opt.Arch, Cross: opt.Cross}).write(d); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	n, err := nextRevision(d, name)
	if err != nil {
		return err
	}
	tmp := filepath.Join(d, fmt.Sprintf("%s%d", newPrefix, n))
	if err := createSubvolume(tmp); err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if err := fill(ctx, tmp); err != nil {
		deleteSubvolume(tmp)
		return fmt.Errorf("create %s: %w", name, err)
	}
	return s.publish(d, name, tmp, n)
}

// publish makes tmp read-only, renames it to revision n and switches current.
func (s *Store) publish(d, name, tmp string, n int) error {
	rev := fmt.Sprintf("%s-%d", name, n)
	if err := setReadOnly(tmp, true); err != nil {
		deleteSubvolume(tmp)
		return fmt.Errorf("machine %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(d, rev)); err != nil {
		deleteSubvolume(tmp)
		return fmt.Errorf("machine %s: %w", name, err)
	}
	return switchCurrent(d, name, rev)
}

// switchCurrent points current at rev: a new symlink renamed over it.
func switchCurrent(d, name, rev string) error {
	nl := filepath.Join(d, currentNew)
	os.Remove(nl)
	if err := os.Symlink(rev, nl); err != nil {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	if err := os.Rename(nl, filepath.Join(d, currentName)); err != nil {
		return fmt.Errorf("machine %s: switch current: %w", name, err)
	}
	return atomicfile.SyncDir(d)
}

// nextRevision is one more than any revision number used in d.
func nextRevision(d, name string) (int, error) {
	ents, err := os.ReadDir(d)
	if err != nil {
		return 0, fmt.Errorf("machine %s: %w", name, err)
	}
	max := 0
	for _, e := range ents {
		n, ok := revisionNumber(name, e.Name())
		if g := newRE.FindStringSubmatch(e.Name()); g != nil {
			fmt.Sscan(g[1], &n)
			ok = true
		}
		if g := recvRE.FindStringSubmatch(e.Name()); g != nil {
			fmt.Sscan(g[1], &n)
			ok = true
		}
		if w, isw := parseWork(d, e.Name()); isw {
			n, ok = w.Revision, true
		}
		if ok && n > max {
			max = n
		}
	}
	return max + 1, nil
}

// setup puts into a fresh debootstrap what builds need.
func (s *Store) setup(ctx context.Context, dir string, opt CreateOptions) error {
	files := []struct {
		path string
		mode os.FileMode
		text string
	}{
		{"etc/apt/sources.list", 0o644, fmt.Sprintf("deb %s %s main\ndeb-src %s %s main\n", opt.Mirror, opt.Dist, opt.Mirror, opt.Dist)},
		{"etc/apt/apt.conf.d/90buildd", 0o644, `APT::Get::Assume-Yes "true";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Keep-Downloaded-Packages "false";
Acquire::Languages "none";
Acquire::Retries "3";
Dpkg::Options { "--force-confold"; "--force-confdef"; };
Dpkg::Use-Pty "false";
`},
		{"usr/sbin/policy-rc.d", 0o755, "#!/bin/sh\n# buildd: start no services inside a build machine.\nexit 101\n"},
		{"etc/hostname", 0o644, "buildd-sandbox\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.text), f.mode); err != nil {
			return fmt.Errorf("setup %s: %w", p, err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	user := fmt.Sprintf("%s:x:%d:%d:buildd build user:%s:/bin/sh\n", BuildUser, BuildUID, BuildUID, BuildHome)
	for _, f := range []struct{ path, line string }{
		{"etc/passwd", user},
		{"etc/group", fmt.Sprintf("%s:x:%d:\n", BuildUser, BuildUID)},
		{"etc/shadow", BuildUser + ":*:19000:0:99999:7:::\n"},
		{"etc/gshadow", BuildUser + ":!::\n"},
	} {
		if err := appendLine(filepath.Join(dir, f.path), f.line); err != nil {
			return err
		}
	}
	bh := filepath.Join(dir, BuildHome)
	if err := os.MkdirAll(bh, 0o755); err != nil {
		return err
	}
	if err := os.Chown(bh, BuildUID, BuildUID); err != nil {
		return err
	}
	script := "apt-get -q update"
	if opt.Cross != "" {
		script = fmt.Sprintf("dpkg --add-architecture %s && apt-get -q update && apt-get -q install %s",
			opt.Cross, strings.Join(crossPackages(opt.Cross), " "))
	}
	return s.inside(ctx, dir, script+" && apt-get -q clean && apt-cache gencaches")
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("setup %s: %w", path, err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("setup %s: %w", path, err)
	}
	return f.Close()
}

// inside runs a shell command as root inside dir, with the network.
func (s *Store) inside(ctx context.Context, dir, script string) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	fmt.Fprintf(s.log(), "+ (in %s) %s\n", dir, script)
	c := &sandbox.Cmd{Root: dir, Args: []string{"/bin/sh", "-ec", script}, Network: true, Output: s.log(),
		Env: []string{"DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8", "HOME=/root"}}
	if err := c.Run(ctx); err != nil {
		return fmt.Errorf("in %s: %s: %w", dir, script, err)
	}
	return nil
}

// run runs a host command with its output to the store's log.
func (s *Store) run(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	fmt.Fprintf(s.log(), "+ %s\n", strings.Join(args, " "))
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdout, c.Stderr = s.log(), s.log()
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// Upgrade snapshots the current revision into a new one, runs apt-get
// update and dist-upgrade inside, makes it read-only and current, then
// deletes the old revisions no working snapshot uses but the newest of
// them, the parent of an incremental push (Clean deletes the others once
// their builds are over), and the old revisions' layers and package lists.
func (s *Store) Upgrade(ctx context.Context, name string) error {
	d, err := s.machineDirOf(name)
	if err != nil {
		return err
	}
	al, err := flock.Acquire(filepath.Join(d, adminLock), flock.Exclusive, 0o644, 0)
	if err != nil {
		return fmt.Errorf("upgrade %s: another create, upgrade or delete is running: %w", name, err)
	}
	defer al.Unlock()
	cur, _, err := currentRevision(d, name)
	if err != nil {
		return err
	}
	if mk := readMarker(d); mk.Arch != "" {
		if err := CheckEmulation(mk.Arch); err != nil {
			return fmt.Errorf("upgrade %s: %w", name, err)
		}
	}
	n, err := nextRevision(d, name)
	if err != nil {
		return err
	}
	tmp := filepath.Join(d, fmt.Sprintf("%s%d", newPrefix, n))
	if err := snapshot(filepath.Join(d, cur), tmp, false); err != nil {
		return fmt.Errorf("upgrade %s: %w", name, err)
	}
	if err := s.inside(ctx, tmp, "apt-get -q update && apt-get -q dist-upgrade && apt-get -q --purge autoremove && apt-get -q clean && apt-cache gencaches"); err != nil {
		deleteSubvolume(tmp)
		return fmt.Errorf("upgrade %s: %w", name, err)
	}
	if err := s.publish(d, name, tmp, n); err != nil {
		return err
	}
	_, err = s.deleteOldRevisions(d, name)
	_, cerr := dropOldCaches(d, name)
	return errors.Join(err, cerr)
}

// deleteOldRevisions deletes every revision that is not current, not the
// newest one before current (kept as the parent of the next incremental
// send, on the sender and on the receivers alike) and not used by a
// working snapshot (live or stray). It returns the paths it deleted.
func (s *Store) deleteOldRevisions(d, name string) ([]string, error) {
	rl, err := flock.Acquire(filepath.Join(d, revisionsLock), flock.Exclusive, 0o644, revisionsWait)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	defer rl.Unlock()
	cur, _, _ := currentRevision(d, name)
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	used := map[int]bool{}
	_, curN, _ := currentRevision(d, name)
	previous := 0
	for _, e := range ents {
		if w, ok := parseWork(d, strings.TrimSuffix(e.Name(), lockSuffix)); ok {
			used[w.Revision] = true
		}
		if n, ok := revisionNumber(name, e.Name()); ok && n < curN && n > previous && isSubvolume(filepath.Join(d, e.Name())) {
			previous = n
		}
	}
	used[previous] = true
	var deleted []string
	var errs []error
	for _, e := range ents {
		n, ok := revisionNumber(name, e.Name())
		if !ok || e.Name() == cur || used[n] {
			continue
		}
		p := filepath.Join(d, e.Name())
		if !isSubvolume(p) {
			continue
		}
		if err := deleteSubvolume(p); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, p)
	}
	return deleted, errors.Join(errs...)
}

// Delete deletes machine name in the layout's order: remove current (no new
// builds start), wait for live working snapshots to go (strays are deleted),
// delete the revisions, then the directory. ctx bounds the wait.
func (s *Store) Delete(ctx context.Context, name string) error {
	d, err := s.machineDirOf(name)
	if err != nil {
		return err
	}
	al, err := flock.Acquire(filepath.Join(d, adminLock), flock.Exclusive, 0o644, 0)
	if err != nil {
		return fmt.Errorf("delete %s: another create, upgrade or delete is running: %w", name, err)
	}
	defer al.Unlock()
	if err := os.Remove(filepath.Join(d, currentName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	for {
		m, err := s.inspect(name)
		if err != nil {
			return err
		}
		live := 0
		for _, w := range m.Working {
			if w.Live {
				live++
				continue
			}
			if _, err := s.deleteStray(d, w.Name); err != nil {
				return fmt.Errorf("delete %s: %w", name, err)
			}
		}
		if live == 0 {
			break
		}
		fmt.Fprintf(s.log(), "delete %s: waiting for %d working snapshot(s)\n", name, live)
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete %s: %d working snapshot(s) still in use: %w", name, live, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	rep := &CleanReport{}
	if err := s.removeMachine(d, name, rep); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if len(rep.NotUnderstood) > 0 {
		sort.Strings(rep.NotUnderstood)
		return fmt.Errorf("delete %s: left alone what is not ours: %s", name, strings.Join(rep.NotUnderstood, "; "))
	}
	return nil
}

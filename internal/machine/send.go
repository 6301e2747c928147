package machine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"buildd/internal/flock"
)

// A revision travels between hosts as a btrfs send stream, as the Build OS
// machine layout ships its machines: made once on one host, sent whole the
// first time and then incrementally (btrfs send -p PARENT), received on
// each build host into .recv-N/ and, once checked, renamed NAME-N and made
// current exactly as an upgrade's revision is. A receive that dies halfway
// leaves .recv-N/ behind, which is never current and which Clean deletes.
// The received subvolume keeps the sender's UUID as its received UUID:
// Revision.UUID is that on every host. Layers and package caches are per
// host, and a received revision starts with none.

const recvPrefix = ".recv-"

var recvRE = regexp.MustCompile(`^\.recv-([0-9]+)$`)

// Send writes revision rev of machine name (a NAME-N; "" for the current
// one) to w as a btrfs send stream, incremental from revision parent when
// parent is not "" (the receiver must hold parent). It holds the revisions
// lock shared meanwhile, so neither revision is deleted under it.
func (s *Store) Send(ctx context.Context, name, rev, parent string, w io.Writer) error {
	d, err := s.machineDirOf(name)
	if err != nil {
		return err
	}
	rl, err := flock.Acquire(filepath.Join(d, revisionsLock), flock.Shared, 0o644, revisionsWait)
	if err != nil {
		return fmt.Errorf("send %s: %w", name, err)
	}
	defer rl.Unlock()
	if rev == "" {
		if rev, _, err = currentRevision(d, name); err != nil {
			return err
		}
	}
	args := []string{"btrfs", "send", "-q"}
	if parent != "" {
		if parent == rev {
			return fmt.Errorf("send %s: revision %s cannot be its own parent", name, rev)
		}
		pp, err := s.sendable(d, name, parent)
		if err != nil {
			return err
		}
		args = append(args, "-p", pp)
	}
	rp, err := s.sendable(d, name, rev)
	if err != nil {
		return err
	}
	args = append(args, rp)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	fmt.Fprintf(s.log(), "+ %s\n", strings.Join(args, " "))
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdout, c.Stderr = w, s.log()
	if err := c.Run(); err != nil {
		return fmt.Errorf("send %s: %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// sendable checks that rev is a read-only revision of machine name and
// returns its path.
func (s *Store) sendable(d, name, rev string) (string, error) {
	if _, ok := revisionNumber(name, rev); !ok {
		return "", fmt.Errorf("send %s: %q is not a revision %s-N", name, rev, name)
	}
	p := filepath.Join(d, rev)
	if !isSubvolume(p) {
		return "", fmt.Errorf("send %s: no revision %s in %s", name, rev, d)
	}
	if ro, err := readOnly(p); err != nil || !ro {
		return "", fmt.Errorf("send %s: revision %s is not read-only", name, rev)
	}
	return p, nil
}

// Receive reads a btrfs send stream of a revision of machine name from r
// into a new revision, checks it (a whole, read-only received subvolume
// holding a build machine of opt's architecture), makes it current and
// deletes the revisions no longer needed, as Upgrade does. A machine that
// does not exist yet is made, with opt's dist and arch; one that exists
// must have the same. The stream must be whole: a receive cut short
// changes nothing that is current.
func (s *Store) Receive(ctx context.Context, name string, r io.Reader, opt CreateOptions) (Revision, error) {
	if err := checkName(name); err != nil {
		return Revision{}, err
	}
	d := s.machineDir(name)
	if _, err := os.Stat(d); err == nil {
		if _, err := os.Stat(filepath.Join(d, markerName)); err != nil {
			return Revision{}, fmt.Errorf("receive %s: %s exists and is not a buildd machine: left alone", name, d)
		}
	} else if err := os.Mkdir(d, 0o755); err != nil {
		return Revision{}, fmt.Errorf("receive %s: %w", name, err)
	}
	al, err := flock.Acquire(filepath.Join(d, adminLock), flock.Exclusive, 0o644, 0)
	if err != nil {
		return Revision{}, fmt.Errorf("receive %s: another create, upgrade, receive or delete is running: %w", name, err)
	}
	defer al.Unlock()
	want := marker{Dist: opt.Dist, Arch: opt.Arch, Cross: opt.Cross}
	mk := readMarker(d)
	switch {
	case mk == marker{}:
		if opt.Dist == "" || opt.Arch == "" {
			return Revision{}, fmt.Errorf("receive %s: a new machine needs --dist and --arch", name)
		}
		if err := want.write(d); err != nil {
			return Revision{}, fmt.Errorf("receive %s: %w", name, err)
		}
		mk = want
	case opt.Dist != "" && want != mk:
		return Revision{}, fmt.Errorf("receive %s: the stream is of %s, the machine here is %s", name, want, mk)
	}
	arch := mk.Arch
	n, err := nextRevision(d, name)
	if err != nil {
		return Revision{}, err
	}
	stage := filepath.Join(d, fmt.Sprintf("%s%d", recvPrefix, n))
	if err := os.Mkdir(stage, 0o700); err != nil {
		return Revision{}, fmt.Errorf("receive %s: %w", name, err)
	}
	sub, err := s.receiveInto(ctx, stage, r, arch)
	if err != nil {
		if derr := removeStage(stage); derr != nil {
			err = errors.Join(err, derr)
		}
		return Revision{}, fmt.Errorf("receive %s: %w", name, err)
	}
	rev := fmt.Sprintf("%s-%d", name, n)
	if err := moveReadOnly(sub, filepath.Join(d, rev)); err != nil {
		removeStage(stage)
		return Revision{}, fmt.Errorf("receive %s: %w", name, err)
	}
	if err := os.Remove(stage); err != nil {
		return Revision{}, fmt.Errorf("receive %s: %w", name, err)
	}
	if err := switchCurrent(d, name, rev); err != nil {
		return Revision{}, err
	}
	_, err = s.deleteOldRevisions(d, name)
	_, cerr := dropOldCaches(d, name)
	if err := errors.Join(err, cerr); err != nil {
		return Revision{}, err
	}
	return s.Current(name)
}

// receiveInto runs btrfs receive into the empty directory stage and checks
// what it made, returning the received subvolume's path.
func (s *Store) receiveInto(ctx context.Context, stage string, r io.Reader, arch string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	args := []string{"btrfs", "receive", "-e", stage}
	fmt.Fprintf(s.log(), "+ %s\n", strings.Join(args, " "))
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Stdin, c.Stdout, c.Stderr = r, s.log(), s.log()
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return "", err
	}
	if len(ents) != 1 {
		return "", fmt.Errorf("the stream made %d entries in %s, not one revision", len(ents), stage)
	}
	sub := filepath.Join(stage, ents[0].Name())
	if !isSubvolume(sub) {
		return "", fmt.Errorf("the stream made %s, not a subvolume", sub)
	}
	si, err := getSubvolInfo(sub)
	if err != nil {
		return "", err
	}
	if ro, err := readOnly(sub); err != nil || !ro || si.ReceivedUUID == "" {
		return "", fmt.Errorf("%s was not received whole (not read-only with a received UUID)", sub)
	}
	if err := checkTree(sub, arch); err != nil {
		return "", err
	}
	return sub, nil
}

// checkTree checks that dir holds a build machine of arch: a shell, dpkg
// of that architecture, and the build user.
func checkTree(dir, arch string) error {
	for _, p := range []string{"bin/sh", "usr/bin/dpkg", "etc/apt/sources.list"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("received tree %s is not a build machine: no /%s", dir, p)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if err != nil || !strings.Contains("\n"+string(passwd), fmt.Sprintf("\n%s:x:%d:", BuildUser, BuildUID)) {
		return fmt.Errorf("received tree %s is not a build machine: no build user %s in /etc/passwd", dir, BuildUser)
	}
	got, err := dpkgArch(filepath.Join(dir, "var/lib/dpkg/status"))
	if err != nil {
		return fmt.Errorf("received tree %s: %w", dir, err)
	}
	if got != arch {
		return fmt.Errorf("received tree %s is a machine of %s, not %s", dir, got, arch)
	}
	return nil
}

// dpkgArch is the architecture of the dpkg package in a status file.
func dpkgArch(status string) (string, error) {
	f, err := os.Open(status)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	isDpkg := false
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "":
			isDpkg = false
		case l == "Package: dpkg":
			isDpkg = true
		case isDpkg && strings.HasPrefix(l, "Architecture: "):
			return strings.TrimPrefix(l, "Architecture: "), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("%s: %w", status, err)
	}
	return "", fmt.Errorf("%s: no dpkg package", status)
}

// moveReadOnly moves the read-only subvolume src to dst in another
// directory: the kernel lets a directory change parents only when it can
// write its "..", so the flag is off for the rename (the received UUID
// stays).
func moveReadOnly(src, dst string) error {
	if err := setReadOnly(src, false); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		setReadOnly(src, true)
		return err
	}
	return setReadOnly(dst, true)
}

// removeStage deletes a receive's staging directory and the subvolume a
// stream left in it.
func removeStage(stage string) error {
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(stage, e.Name())
		if !isSubvolume(p) {
			return fmt.Errorf("%s: not a subvolume, left alone", p)
		}
		if err := deleteSubvolume(p); err != nil {
			return err
		}
	}
	return os.Remove(stage)
}

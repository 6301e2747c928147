package machine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

func TestOpenRefusesNonBtrfs(t *testing.T) {
	dir := t.TempDir()
	_, err := machine.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "not on a btrfs") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open(%s) = %v, want a not-btrfs error naming it", dir, err)
	}
	if _, err := machine.Open(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Open of a missing dir succeeded")
	}
}

func workEntries(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*", "work-*"))
	return m
}

func btrfs(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("btrfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("btrfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestWorkingSnapshot(t *testing.T) {
	e := machinetest.New(t)
	ms, err := e.Store.List()
	if err != nil || len(ms) != 1 || ms[0].Current != e.Machine+"-1" || !ms[0].Revisions[0].ReadOnly {
		t.Fatalf("List = %+v, %v", ms, err)
	}
	w, err := e.Store.NewWorking(e.Machine, "hello_1:2.0-1 weird/job")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filepath.Base(w.Path()), "hello_1_2.0-1_weird_job") {
		t.Errorf("working snapshot name %s does not carry the job", w.Path())
	}
	if err := os.WriteFile(filepath.Join(w.Path(), "build/x"), []byte("x"), 0o644); err != nil {
		t.Fatalf("working snapshot not writable: %v", err)
	}
	// Nested subvolumes, one read-only, inside the snapshot: Delete copes.
	btrfs(t, "subvolume", "create", filepath.Join(w.Path(), "build/nested"))
	btrfs(t, "subvolume", "snapshot", "-r", filepath.Join(w.Path(), "build/nested"), filepath.Join(w.Path(), "build/nested-ro"))
	// The sandbox: /proc, /dev, no network, the build user.
	var out strings.Builder
	c := &sandbox.Cmd{Root: w.Path(), User: machine.BuildUser, Output: &out, Args: []string{"/bin/sh", "-ec",
		"id -un; test -c /dev/null; test -c /dev/urandom; test -e /proc/self/status; test -c /dev/pts/ptmx; ls /sys/class/net 2>/dev/null | tr '\\n' ' '; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '"}}
	if err := c.Run(context.Background()); err != nil {
		t.Fatalf("sandbox: %v\n%s", err, out.String())
	}
	if got := out.String(); !strings.HasPrefix(got, machine.BuildUser+"\n") || strings.Contains(got, "eth") || !strings.Contains(got, "lo") {
		t.Errorf("sandbox output %q: want the build user and only lo", got)
	}
	ms, _ = e.Store.List()
	if len(ms[0].Working) != 1 || !ms[0].Working[0].Live || ms[0].Working[0].PID != os.Getpid() {
		t.Errorf("List working = %+v", ms[0].Working)
	}
	if err := w.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if left := workEntries(t, e.Dir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestNewWorkingBadInput(t *testing.T) {
	e := machinetest.New(t)
	if _, err := e.Store.NewWorking("no-such-machine", "j"); err == nil || !strings.Contains(err.Error(), "no-such-machine") {
		t.Errorf("missing machine: %v", err)
	}
	rev := filepath.Join(e.Dir, e.Machine, e.Machine+"-1")
	btrfs(t, "property", "set", "-f", "-ts", rev, "ro", "false")
	_, err := e.Store.NewWorking(e.Machine, "j")
	if err == nil || !strings.Contains(err.Error(), "not read-only") || !strings.Contains(err.Error(), rev) {
		t.Errorf("writable revision: %v", err)
	}
	if left := workEntries(t, e.Dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestCleanAndDelete(t *testing.T) {
	e := machinetest.New(t)
	md := filepath.Join(e.Dir, e.Machine)
	// A stray: a working snapshot whose owner (a child process) was killed.
	stray := filepath.Join(md, "work-1-999999-1700000000-stray_1.0")
	btrfs(t, "subvolume", "snapshot", filepath.Join(md, e.Machine+"-1"), stray)
	os.WriteFile(stray+".lock", []byte("999999 stray\n"), 0o644)
	// A half-made revision and foreign things.
	btrfs(t, "subvolume", "create", filepath.Join(md, ".new-7"))
	foreign := []string{filepath.Join(e.Dir, "README"), filepath.Join(md, "notes.txt")}
	for _, f := range foreign {
		os.WriteFile(f, []byte("mine\n"), 0o644)
	}
	os.Mkdir(filepath.Join(e.Dir, "backup"), 0o755)
	live, err := e.Store.NewWorking(e.Machine, "live_1.0")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Store.Clean(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(md, ".new-7"), stray}
	if strings.Join(rep.Deleted, " ") != strings.Join(want, " ") {
		t.Errorf("Deleted = %v, want %v", rep.Deleted, want)
	}
	if len(rep.NotUnderstood) != 3 || len(rep.Busy) != 1 || !strings.HasPrefix(rep.Busy[0], live.Path()) {
		t.Errorf("NotUnderstood = %v, Busy = %v", rep.NotUnderstood, rep.Busy)
	}
	for _, f := range append(foreign, live.Path(), filepath.Join(e.Dir, "backup"), filepath.Join(md, e.Machine+"-1")) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("clean touched %s: %v", f, err)
		}
	}
	// Delete waits for the live working snapshot.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := e.Store.Delete(ctx, e.Machine); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Delete with a live build: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(md, "current")); err == nil {
		t.Error("Delete left current in place")
	}
	if _, err := e.Store.NewWorking(e.Machine, "late"); err == nil {
		t.Error("NewWorking after Delete began succeeded")
	}
	live.Delete()
	os.Remove(filepath.Join(md, "notes.txt"))
	if err := e.Store.Delete(context.Background(), e.Machine); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(md); err == nil {
		t.Errorf("%s still there", md)
	}
	if _, err := os.Stat(filepath.Join(e.Dir, "README")); err != nil {
		t.Error("Delete touched a foreign file")
	}
	if err := e.Store.Delete(context.Background(), e.Machine); err == nil || !strings.Contains(err.Error(), "no such machine") {
		t.Errorf("Delete of a deleted machine: %v", err)
	}
}

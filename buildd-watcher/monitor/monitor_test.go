package monitor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/hosttest"
	"buildd/internal/machine/machinetest"
	"buildd/internal/slicing"
)

func newMonitor(t *testing.T, extra string) (*hosttest.Host, *Monitor) {
	t.Helper()
	h := hosttest.New(t, extra)
	log, err := daemonlog.Open(h.Cfg.DaemonLogFile, "buildd-watcher")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return h, New(h.Cfg, log)
}

func runMonitor(t *testing.T, m *Monitor) *Report {
	t.Helper()
	r, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func btrfs(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("btrfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("btrfs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestMachines runs the monitor on a real loop btrfs volume holding a
// debootstrapped machine (machinetest): the cleanup, then the upgrade.
func TestMachines(t *testing.T) {
	e := machinetest.New(t)
	t.Run("clean", func(t *testing.T) { testClean(t, e) })
	t.Run("upgrade", func(t *testing.T) { testUpgrade(t, e) })
}

// testClean leaves on the volume what crashes and admins leave: a stray
// working snapshot (no owner holds its lock), a dead machine (no current
// revision), a directory that is no machine, beside a live build's
// snapshot, and checks what the monitor deletes, keeps, mails and holds.
func testClean(t *testing.T, e *machinetest.Env) {
	h, m := newMonitor(t, fmt.Sprintf("machines_dir = %q\nmax_build = 2", e.Dir))
	md := filepath.Join(e.Dir, e.Machine)
	cur, err := os.Readlink(filepath.Join(md, "current"))
	if err != nil {
		t.Fatal(err)
	}
	rev := strings.TrimPrefix(cur, e.Machine+"-")
	stray := filepath.Join(md, "work-"+rev+"-999999-1700000000-hello_1.0-1")
	btrfs(t, "subvolume", "snapshot", filepath.Join(md, cur), stray)
	os.WriteFile(stray+".lock", []byte("999999 hello_1.0-1\n"), 0o644)
	live, err := e.Store.NewWorking(e.Machine, "live_1.0-1")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Delete()
	dead := filepath.Join(e.Dir, "sid-amd64")
	os.Mkdir(dead, 0o755)
	os.WriteFile(filepath.Join(dead, ".buildd-machine"), []byte("Dist: sid\nArch: amd64\n"), 0o644)
	btrfs(t, "subvolume", "create", filepath.Join(dead, "sid-amd64-1"))
	junk := filepath.Join(e.Dir, "junk")
	os.Mkdir(junk, 0o755)

	r := runMonitor(t, m)
	for _, p := range []string{stray, dead} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s not deleted", p)
		}
		if !strings.Contains(strings.Join(r.Clean.Deleted, "\n"), p) {
			t.Errorf("report lacks %s: %+v", p, r.Clean)
		}
	}
	for _, p := range []string{live.Path(), junk, filepath.Join(md, cur)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s deleted", p)
		}
	}
	if !h.Home.Flag(home.HoldBuilds) || len(r.Hold) != 1 || !strings.HasPrefix(r.Hold[0], "machines: "+junk+": ") {
		t.Fatalf("hold %q", r.Hold)
	}
	mails := h.MailsAbout(t, "invalid entries in "+e.Dir+", holding new builds")
	if len(mails) != 1 {
		t.Fatalf("mails %+v", h.Mails(t))
	}
	for _, want := range []string{stray + ": info: deleted", dead + ": info: deleted", "error: " + junk + ": ", "remove " + h.Home.Path(home.HoldBuilds)} {
		if !strings.Contains(mails[0].Body, want) {
			t.Errorf("mail lacks %q:\n%s", want, mails[0].Body)
		}
	}
	// The same problem is not mailed again; the hold stays.
	r = runMonitor(t, m)
	if n := len(h.MailsAbout(t, "invalid entries")); n != 1 || !h.Home.Flag(home.HoldBuilds) {
		t.Errorf("second run: %d mails, hold %v", n, h.Home.Flag(home.HoldBuilds))
	}
	// The admin corrects it and lifts the hold.
	os.Remove(junk)
	os.Remove(h.Home.Path(home.HoldBuilds))
	r = runMonitor(t, m)
	if h.Home.Flag(home.HoldBuilds) || len(r.Hold) != 0 || len(r.Clean.NotUnderstood) != 0 {
		t.Errorf("after the fix: hold %q, %+v", r.Hold, r.Clean)
	}
	if n := len(h.Mails(t)); n != 2 { // starting, invalid entries; nothing new now
		t.Errorf("%d mails, want 2", n)
	}
}

func testUpgrade(t *testing.T, e *machinetest.Env) {
	h, m := newMonitor(t, fmt.Sprintf("machines_dir = %q", e.Dir))
	m.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	before, _ := os.Readlink(filepath.Join(e.Dir, e.Machine, "current"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	if err := m.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("maintenance of %s took %v", e.Machine, time.Since(start))
	after, _ := os.Readlink(filepath.Join(e.Dir, e.Machine, "current"))
	if after == before || after == "" {
		t.Errorf("current %s → %s", before, after)
	}
	if len(h.Mails(t)) != 0 {
		t.Errorf("mails %+v", h.Mails(t))
	}
	// A machine that cannot be made: a failure mail naming the job, the
	// others go on.
	h.Cfg.Dists = append(h.Cfg.Dists, h.Cfg.Dists[0])
	h.Cfg.Dists[0].DistName, h.Cfg.Dists[0].Machine = "nosuchdist", "broken"
	if err := m.Upgrade(ctx); err == nil || !strings.Contains(err.Error(), "create:broken") {
		t.Fatalf("err %v", err)
	}
	mails := h.MailsAbout(t, "machine maintenance failed")
	if len(mails) != 1 || !strings.Contains(mails[0].Body, "No such script") || !strings.Contains(mails[0].Body, "ok upgrade:"+e.Machine) {
		t.Errorf("failure mails %+v", mails)
	}
}

func TestSpace(t *testing.T) {
	h, m := newMonitor(t, "")
	free, err := FreeKiB(h.Home.BuildDir())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		warn, stop int64
		level      string
		mail       string
		hold       bool
	}{
		{0, 0, "ok", "", false},
		{free * 2, 0, "warn", "low space on the build volume", false},
		{free * 2, free * 2, "stop", "no space on the build volume, holding new builds", true},
		{free * 2, free * 2, "stop", "", true},
		{0, 0, "ok", "space on the build volume is back", false},
	}
	seen := 0
	for i, s := range steps {
		m.Cfg.WarnFree, m.Cfg.MinFreeSpace = int(s.warn), int(s.stop)
		r := runMonitor(t, m)
		if len(r.Space) != 1 || r.Space[0].Level != s.level {
			t.Fatalf("step %d: %+v", i, r.Space)
		}
		if h.Home.Flag(home.HoldBuilds) != s.hold {
			t.Errorf("step %d: hold %v", i, h.Home.Flag(home.HoldBuilds))
		}
		got := h.MailsAbout(t, " volume")
		if s.mail != "" {
			seen++
			if len(got) != seen || !strings.HasSuffix(got[seen-1].Subject, s.mail) {
				t.Errorf("step %d: mails %+v, want %q", i, got, s.mail)
			}
		} else if len(got) != seen {
			t.Errorf("step %d: unexpected mail %+v", i, got[len(got)-1])
		}
	}
	// A hold written by the admin stays when space comes back.
	os.WriteFile(h.Home.Path(home.HoldBuilds), []byte("admin: kernel update tonight\n"), 0o644)
	runMonitor(t, m)
	if b, _ := os.ReadFile(h.Home.Path(home.HoldBuilds)); string(b) != "admin: kernel update tonight\n" {
		t.Errorf("admin's hold now %q", b)
	}
}

func TestDiagnostics(t *testing.T) {
	h, m := newMonitor(t, "")
	m.Log = &daemonlog.Log{} // the test writes daemon.log alone
	logf := h.Cfg.DaemonLogFile
	appendLog := func(s string) {
		f, err := os.OpenFile(logf, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	appendLog("Nov 21 07:00:00 buildd[1]: an old error before the first run\n")
	r := runMonitor(t, m)
	if len(r.Diagnostics) != 0 {
		t.Fatalf("first run mails history: %q", r.Diagnostics)
	}
	appendLog("Nov 21 07:01:00 buildd[1]: hello_1.0-1: build successful\n" +
		"Nov 21 07:02:00 buildd[1]: Warning: queue of sid did not answer\n" +
		"Nov 21 07:03:00 buildd-watcher[2]: restart buildd: error mailed already\n" +
		"Nov 21 07:04:00 buildd[1]: ERROR: cannot write REDO\n" +
		"Nov 21 07:05:00 buildd[1]: error half writ")
	r = runMonitor(t, m)
	want := []string{"Nov 21 07:02:00 buildd[1]: Warning: queue of sid did not answer", "Nov 21 07:04:00 buildd[1]: ERROR: cannot write REDO"}
	if strings.Join(r.Diagnostics, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diagnostics %q", r.Diagnostics)
	}
	mails := h.MailsAbout(t, "buildd issued new diagnostics")
	if len(mails) != 1 || !strings.Contains(mails[0].Body, want[0]+"\n"+want[1]+"\n") {
		t.Fatalf("mails %+v", mails)
	}
	if r = runMonitor(t, m); len(r.Diagnostics) != 0 {
		t.Errorf("mailed twice: %q", r.Diagnostics)
	}
	// The line completes, then the watcher rotates the log.
	appendLog("ten\n")
	os.Rename(logf, logf+".old")
	appendLog("Nov 21 08:00:00 buildd[1]: panic: after rotation\n")
	r = runMonitor(t, m)
	want = []string{"Nov 21 07:05:00 buildd[1]: error half written", "Nov 21 08:00:00 buildd[1]: panic: after rotation"}
	if strings.Join(r.Diagnostics, "\n") != strings.Join(want, "\n") {
		t.Errorf("across rotation: %q", r.Diagnostics)
	}
}

func TestStartingMail(t *testing.T) {
	h, m := newMonitor(t, "max_build = 2")
	runMonitor(t, m)
	runMonitor(t, m)
	mails := h.MailsAbout(t, "starting build host monitor")
	if len(mails) != 1 {
		t.Fatalf("%d starting mails", len(mails))
	}
	// The mail reports the slices buildd enforces.
	s, err := slicing.HostSlice(2)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("cpu_total:      %d\n", runtime.NumCPU()),
		"max_build:      2\n",
		fmt.Sprintf("cpu_slice:      %d\n", s.CPUs),
		fmt.Sprintf("ram_slice:      %d kB\n", s.RAMKiB),
		"home:           " + h.Home.Dir,
		"bookworm.machine:                 bookworm-amd64 (not created yet)",
		"uploader_schedule:  10,25,40,55 * * * *",
	} {
		if !strings.Contains(mails[0].Body, want) {
			t.Errorf("starting mail lacks %q:\n%s", want, mails[0].Body)
		}
	}
	// A changed configuration is reported again.
	m.Cfg.MaxBuild = 1
	runMonitor(t, m)
	if n := len(h.MailsAbout(t, "starting build host monitor")); n != 2 {
		t.Errorf("%d starting mails after a config change", n)
	}
}

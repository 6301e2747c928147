package watch

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/hosttest"
)

// newWatcher makes a host and its watcher; every periodic task is made
// not due (fresh stamps) unless the test ages them.
func newWatcher(t testing.TB, extra string) (*hosttest.Host, *Watcher) {
	t.Helper()
	h := hosttest.New(t, extra)
	log, err := daemonlog.Open(h.Cfg.DaemonLogFile, "buildd-watcher")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	for _, s := range []string{"old-logs/plog-stamp", "old-logs/blog-stamp", "old-logs/dlog-stamp", "old-logs/daemon-stamp"} {
		h.Write(t, s, "", 0)
	}
	h.Write(t, "stats/Stamp", fmt.Sprintf("%d\n", time.Now().Unix()), 0)
	h.Write(t, home.NoDaemonPlease, "", 0)
	return h, New(h.Cfg, log)
}

// startProcess starts a real long-running process that writes its own pid
// file as buildd does, and returns its pid.
func startProcess(t *testing.T, pidFile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sh", "-c", `echo $$ > "$1"; exec sleep 600`, "sh", pidFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPID(t, pidFile, cmd.Process.Pid)
	return cmd
}

func waitPID(t *testing.T, pidFile string, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pid, err := home.ReadPID(pidFile)
		if err == nil && pid != 0 && (want == 0 || pid == want) {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no pid written", pidFile)
	return 0
}

// builddStandIn is the restart command of the tests: a real process that
// writes the pid file and runs until killed.
const builddStandIn = `buildd_command = ["sh", "-c", "echo $$ > @HOME@/build/buildd.pid; exec sleep 600"]`

func TestRestartDaemon(t *testing.T) {
	for _, tc := range []struct {
		name        string
		setup       func(t *testing.T, h *hosttest.Host)
		noDaemon    bool
		wantRestart bool
		problem     string
	}{
		{name: "no pid file", setup: func(t *testing.T, h *hosttest.Host) {}, wantRestart: true, problem: "no pid file"},
		{name: "killed daemon", setup: func(t *testing.T, h *hosttest.Host) {
			cmd := startProcess(t, h.Cfg.PIDFile)
			cmd.Process.Kill()
			cmd.Wait()
		}, wantRestart: true, problem: "doesn't exist"},
		{name: "pid reused by a younger process", setup: func(t *testing.T, h *hosttest.Host) {
			startProcess(t, h.Cfg.PIDFile)
			hosttest.Age(t, h.Cfg.PIDFile, time.Hour)
		}, wantRestart: true, problem: "stale"},
		{name: "running daemon", setup: func(t *testing.T, h *hosttest.Host) {
			startProcess(t, h.Cfg.PIDFile)
		}},
		{name: "NO-DAEMON-PLEASE", setup: func(t *testing.T, h *hosttest.Host) {}, noDaemon: true, problem: "no pid file"},
		{name: "corrupt pid file", setup: func(t *testing.T, h *hosttest.Host) {
			h.Write(t, "build/buildd.pid", "garbage\n", 0)
		}, problem: `bad pid file contents "garbage"; not restarting buildd`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, w := newWatcher(t, builddStandIn)
			if !tc.noDaemon {
				os.Remove(h.Home.Path(home.NoDaemonPlease))
			}
			tc.setup(t, h)
			before, _ := home.ReadPID(h.Cfg.PIDFile)
			r, err := w.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Daemon.Problem, tc.problem) {
				t.Errorf("problem %q, want %q", r.Daemon.Problem, tc.problem)
			}
			if r.Daemon.Restart != tc.wantRestart && !tc.noDaemon {
				t.Errorf("restart %v, want %v", r.Daemon.Restart, tc.wantRestart)
			}
			if !tc.wantRestart {
				if r.Restarted != 0 {
					t.Fatalf("restarted pid %d", r.Restarted)
				}
				if after, _ := home.ReadPID(h.Cfg.PIDFile); after != before && !strings.Contains(tc.problem, "bad pid") {
					t.Errorf("pid file changed from %d to %d", before, after)
				}
				return
			}
			if r.Restarted == 0 {
				t.Fatalf("not restarted: %+v", r)
			}
			t.Cleanup(func() { syscall.Kill(r.Restarted, syscall.SIGKILL) })
			if pid := waitPID(t, h.Cfg.PIDFile, r.Restarted); !home.Alive(pid) {
				t.Fatalf("restarted buildd %d is not running", pid)
			}
			if st := w.CheckDaemon(); st.Restart || st.PID != r.Restarted {
				t.Errorf("after restart: %+v", st)
			}
		})
	}
}

func TestRestartFails(t *testing.T) {
	_, w := newWatcher(t, `buildd_command = ["sh", "-c", "echo cannot start >&2; exit 3"]`)
	os.Remove(w.Home.Path(home.NoDaemonPlease))
	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Restarted != 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Error(), "exit status 3") {
		t.Fatalf("report %+v", r)
	}
	log, _ := os.ReadFile(w.Cfg.DaemonLogFile)
	if !strings.Contains(string(log), "cannot start") {
		t.Errorf("daemon.log lacks the program's output:\n%s", log)
	}
}

func TestPurge(t *testing.T) {
	h, w := newWatcher(t, "")
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.MkdirAll(filepath.Join(victim, "sub"), 0o755)
	os.WriteFile(filepath.Join(victim, "sub", "f"), []byte("keep me"), 0o644)
	h.Write(t, "build/chroot-keep/f", "x", 0)
	h.Write(t, "important", "x", 0)
	for _, d := range []string{"build/foo_1.0-1", "build/bar_2", "build/with space"} {
		h.Write(t, d+"/debian/rules", "x", 0)
	}
	os.Symlink(victim, h.Home.Path("build", "link-out"))
	os.Symlink(h.Home.Path("build", "bar_2"), h.Home.Path("build", "link-in"))
	lines := []struct {
		line    string
		refused bool
	}{
		{h.Home.Path("build", "foo_1.0-1"), false},
		{"build/link-in", false}, // a symlink to a directory inside: the directory goes
		{"build/with space", false},
		{"build/missing", false},
		{"../" + filepath.Base(outside) + "/victim", true},
		{victim, true},
		{"build/link-out", true},
		{"build/../important", true},
		{"build", true},
		{h.Home.Path("build", "..", "build", "..", ".."), true},
		{"/", true},
		{"build/chroot-keep/f", true}, // not a directory
	}
	var text strings.Builder
	for _, l := range lines {
		text.WriteString(l.line + "\n")
	}
	h.Write(t, "build/PURGE", text.String(), 0)

	purged, refused, err := w.Purge()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(purged)
	want := []string{h.Home.Path("build", "bar_2"), h.Home.Path("build", "foo_1.0-1"), h.Home.Path("build", "with space")}
	if strings.Join(purged, "\n") != strings.Join(want, "\n") {
		t.Errorf("purged\n%s\nwant\n%s", strings.Join(purged, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range lines {
		found := false
		for _, r := range refused {
			found = found || strings.HasPrefix(r, strconv.Quote(l.line)+":")
		}
		if found != l.refused {
			t.Errorf("line %q: refused %v, want %v (%q)", l.line, found, l.refused, refused)
		}
	}
	for _, p := range []string{filepath.Join(victim, "sub", "f"), h.Home.Path("important"), h.Home.Path("build", "chroot-keep", "f"), h.Home.Path("build", "link-out")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was deleted", p)
		}
	}
	if b, _ := os.ReadFile(h.Home.Path("build", "PURGE")); len(b) != 0 {
		t.Errorf("PURGE not emptied:\n%s", b)
	}
	m := h.MailsAbout(t, "buildd-watcher refused to purge")
	if len(m) != 1 || !strings.Contains(m[0].Body, victim) || !strings.Contains(m[0].Body, "build/../important") {
		t.Fatalf("refusal mail: %+v", m)
	}
}

func TestOldFiles(t *testing.T) {
	h, w := newWatcher(t, `no_warn_pattern = '^build/(keep-.*)$'`)
	week := 7 * 24 * time.Hour
	h.Write(t, "upload/old_1.0_amd64.changes", "x", week+time.Hour)
	h.Write(t, "upload/new_1.0_amd64.changes", "x", time.Hour)
	h.Write(t, "build/REDO", "", 30*24*time.Hour)
	h.Write(t, "build/keep-me", "", 30*24*time.Hour)
	h.Write(t, "build/stale.log", "", 8*24*time.Hour)
	h.Write(t, "build/PURGE.lock", "", 30*24*time.Hour)
	h.Write(t, "build/PURGE", "", 30*24*time.Hour)
	h.Write(t, "build/BUILDING", "", 30*24*time.Hour)
	// A directory is old only when nothing in it changed.
	h.Write(t, "build/olddir/a/b", "", 10*24*time.Hour)
	hosttest.Age(t, h.Home.Path("build/olddir/a"), 10*24*time.Hour)
	hosttest.Age(t, h.Home.Path("build/olddir"), 10*24*time.Hour)
	h.Write(t, "build/busydir/a/b", "", time.Minute)
	hosttest.Age(t, h.Home.Path("build/busydir/a"), 10*24*time.Hour)
	hosttest.Age(t, h.Home.Path("build/busydir"), 10*24*time.Hour)

	got, err := w.OldFiles()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"build/olddir", "build/stale.log", "upload/old_1.0_amd64.changes"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("warned %q, want %q", got, want)
	}
	m := h.MailsAbout(t, "buildd-watcher found some old files")
	if len(m) != 1 || !strings.Contains(m[0].Body, "  build/olddir\n  build/stale.log\n  upload/old_1.0_amd64.changes\n") {
		t.Fatalf("mail %+v", m)
	}
	// Reported again only warning_age days later.
	if got, _ := w.OldFiles(); len(got) != 0 {
		t.Errorf("re-reported at once: %q", got)
	}
	rep := h.Home.Path("reported-old-files")
	b, _ := os.ReadFile(rep)
	old := strings.ReplaceAll(string(b), "build/stale.log "+strconv.FormatInt(time.Now().Unix(), 10), "build/stale.log 1000")
	if old == string(b) {
		old = regexp.MustCompile(`build/stale.log \d+`).ReplaceAllString(string(b), "build/stale.log 1000")
	}
	os.WriteFile(rep, []byte(old), 0o644)
	if got, _ := w.OldFiles(); strings.Join(got, " ") != "build/stale.log" {
		t.Errorf("after the window: %q", got)
	}
	// Entries for files gone are dropped.
	os.Remove(h.Home.Path("build/stale.log"))
	w.OldFiles()
	if b, _ := os.ReadFile(rep); strings.Contains(string(b), "stale.log") {
		t.Errorf("reported-old-files keeps a deleted file:\n%s", b)
	}
}

// readTarGz returns name → contents of a .tar.gz.
func readTarGz(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = string(b)
	}
}

func TestArchive(t *testing.T) {
	h, w := newWatcher(t, "")
	day := 24 * time.Hour
	oldest := h.Write(t, "logs/foo_1.0-1_20240101-0101", "log of foo\n", 9*day)
	newest := h.Write(t, "logs/bar_2.0-1_20240102-0101", "log of bar\n", 8*day)
	h.Write(t, "logs/recent_1_20240103", "recent\n", 6*day)
	h.Write(t, "build/build-old.log", "build log\n", 3*day)
	h.Write(t, "build/build-new.log", "build log\n", time.Hour)
	h.Write(t, "old-logs/daemon-20240101-0000.log.gz", "gz", 8*day)
	for _, s := range []string{"old-logs/plog-stamp", "old-logs/blog-stamp", "old-logs/dlog-stamp"} {
		hosttest.Age(t, h.Home.Path(s), 30*day)
	}
	stOld, _ := os.Stat(oldest)
	stNew, _ := os.Stat(newest)

	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 || len(r.Archives) != 3 {
		t.Fatalf("report %+v", r)
	}
	plog := h.Home.Path("old-logs", "plog-"+formatTime(stOld.ModTime())+"-"+formatTime(stNew.ModTime())+".tar.gz")
	if r.Archives[0] != plog {
		t.Errorf("archive %s, want %s", r.Archives[0], plog)
	}
	if !regexp.MustCompile(`/plog-\d{8}-\d{4}-\d{8}-\d{4}\.tar\.gz$`).MatchString(plog) {
		t.Errorf("bad name %s", plog)
	}
	got := readTarGz(t, plog)
	if len(got) != 2 || got["foo_1.0-1_20240101-0101"] != "log of foo\n" || got["bar_2.0-1_20240102-0101"] != "log of bar\n" {
		t.Errorf("plog contents %q", got)
	}
	if idx, _ := os.ReadFile(strings.TrimSuffix(plog, ".tar.gz") + ".index"); string(idx) != "bar_2.0-1_20240102-0101\nfoo_1.0-1_20240101-0101\n" {
		t.Errorf("index %q", idx)
	}
	if b := readTarGz(t, r.Archives[1]); len(b) != 1 || b["build-old.log"] != "build log\n" || !strings.Contains(r.Archives[1], "/blog-") {
		t.Errorf("blog %s: %q", r.Archives[1], b)
	}
	if b := readTarGz(t, r.Archives[2]); len(b) != 1 || b["daemon-20240101-0000.log.gz"] != "gz" || !strings.Contains(r.Archives[2], "/dlog-") {
		t.Errorf("dlog %s: %q", r.Archives[2], b)
	}
	for _, gone := range []string{oldest, newest, h.Home.Path("build/build-old.log")} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s not deleted", gone)
		}
	}
	for _, kept := range []string{"logs/recent_1_20240103", "build/build-new.log"} {
		if _, err := os.Stat(h.Home.Path(kept)); err != nil {
			t.Errorf("%s deleted", kept)
		}
	}
	// The stamps hold the next run back for pkg_log_keep days.
	h.Write(t, "logs/another", "x", 9*day)
	if name, err := w.Archive(w.archiveSets()[0]); name != "" || err != nil {
		t.Errorf("archived again at once: %s %v", name, err)
	}
}

func TestRotateLog(t *testing.T) {
	h, w := newWatcher(t, "daemon_log_send = true")
	hup := h.Home.Path("hups")
	// A real daemon that counts SIGHUPs.
	cmd := exec.Command("sh", "-c", `trap 'echo hup >> "$1"' HUP; echo $$ > "$2"; while :; do sleep 0.05; done`, "sh", hup, h.Cfg.PIDFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPID(t, h.Cfg.PIDFile, cmd.Process.Pid)
	os.Remove(h.Home.Path(home.NoDaemonPlease))

	h.Write(t, "daemon.log.old", "yesterday's log\n", 24*time.Hour)
	os.WriteFile(h.Cfg.DaemonLogFile, []byte("today's log\n"), 0o640)
	hosttest.Age(t, h.Home.Path("old-logs/daemon-stamp"), 25*time.Hour)

	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Rotated || len(r.Errors) > 0 {
		t.Fatalf("report %+v", r)
	}
	old, _ := os.ReadFile(h.Cfg.DaemonLogFile + ".old")
	if !strings.HasPrefix(string(old), "today's log\n") {
		t.Errorf("daemon.log.old = %q", old)
	}
	gzs, _ := filepath.Glob(h.Home.Path("old-logs", "daemon-*.log.gz"))
	if len(gzs) != 1 {
		t.Fatalf("old-logs: %q", gzs)
	}
	f, _ := os.Open(gzs[0])
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != "yesterday's log\n" {
		t.Errorf("%s holds %q", gzs[0], b)
	}
	f.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(hup)
		if string(b) == "hup\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("buildd got no SIGHUP (%q)", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := h.MailsAbout(t, "Build Daemon Log ")
	if len(m) != 1 || !strings.Contains(m[0].Body, "today's log") {
		t.Fatalf("log mail %+v", m)
	}
	// The watcher's own later lines go to the new daemon.log.
	w.Log.Printf("after rotation")
	if b, _ := os.ReadFile(h.Cfg.DaemonLogFile); !strings.Contains(string(b), "after rotation") {
		t.Errorf("new daemon.log: %q", b)
	}
}

func TestStatistics(t *testing.T) {
	h, w := newWatcher(t, "")
	start := time.Now().Add(-7 * 24 * time.Hour)
	h.Write(t, "stats/Stamp", fmt.Sprintf("%d\n", start.Unix()), 8*24*time.Hour)
	h.Write(t, "stats/taken", "1\n1\n1\n1\n", 0)
	h.Write(t, "stats/builds", "1\n1\n1\n", 0)
	h.Write(t, "stats/uploads", "2\n", 0)
	h.Write(t, "stats/failed", "1\n", 0)
	h.Write(t, "stats/build-time", "3600\n1800\n", 0)
	h.Write(t, "stats/idle-time", "60\nbogus\n", 0)

	sent, err := w.Statistics()
	if !sent || err == nil || !strings.Contains(err.Error(), `stats/idle-time:2: not a number "bogus"`) {
		t.Fatalf("sent %v, err %v", sent, err)
	}
	m := h.MailsAbout(t, "Build Daemon Statistics")
	if len(m) != 1 || m[0].To[0] != "stats@example.org" {
		t.Fatalf("mails %+v", m)
	}
	for _, want := range []string{
		"(7.00 days):",
		"taken    :     4                     0.57\n",
		"builds   :     3         75.00%      0.43\n",
		"uploaded :     2         50.00%      0.29\n",
		"failed   :     1         25.00%      0.14\n",
		"building:   01:30:00     0.89%\n",
		"idle    :   00:01:00     0.01%\n",
		"avg. time/build                     :   00:30:00\n",
		"builds-per-day (max. 100):\n\n",
	} {
		if !strings.Contains(m[0].Body, want) {
			t.Errorf("summary lacks %q:\n%s", want, m[0].Body)
		}
	}
	for _, v := range []string{"taken", "builds", "build-time"} {
		if _, err := os.Stat(h.Home.Path("stats", v)); err == nil {
			t.Errorf("stats/%s not reset", v)
		}
	}
	if sent, _ := w.Statistics(); sent {
		t.Error("statistics again at once")
	}
}

func TestSingleInstance(t *testing.T) {
	_, w := newWatcher(t, "")
	l, err := home.TryLock(w.Home.Path("buildd-watcher"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := w.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("err %v, want ErrRunning", err)
	}
}

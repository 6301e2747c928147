package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/machine/sandbox"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
	"buildd/internal/slicing"
)

// Real builds: the real buildd binary, the real queue merged from a local
// archive by the real wanna-build, real snapshots of a real build machine,
// real dpkg-buildpackage, log mails over real SMTP.

// realEnv is a buildd home whose dist builds in the test machine,
// fetching from a local archive holding pkgs.
func realEnv(t *testing.T, extra string, pkgs ...srcPkg) (*env, *config.Config) {
	t.Helper()
	a := newArchive(t, pkgs...)
	machines, dist := buildMachine(t, a)
	e := newEnv(t, machines, extra, dist)
	c, err := config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	a.merge(t, c.WannaBuildDB)
	return e, c
}

// jobLogs is the text of every job log, for failure messages.
func jobLogs(e *env) string {
	var b strings.Builder
	logs, _ := filepath.Glob(e.path("logs", "*.build"))
	for _, l := range logs {
		text, _ := os.ReadFile(l)
		b.WriteString("==> " + l + "\n" + string(text))
	}
	return b.String()
}

func queueState(t *testing.T, c *config.Config, name string) queue.State {
	t.Helper()
	q := port.Open(c, &c.Dists[0])
	defer q.Close()
	info, err := q.Info(context.Background(), name)
	if err != nil {
		t.Fatalf("info %s: %v", name, err)
	}
	return info.State
}

func workingSnapshots(t *testing.T, dir string) []string {
	t.Helper()
	s, err := machine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		for _, w := range m.Working {
			out = append(out, w.Path)
		}
	}
	return out
}

// TestOnceBuildsInParallel: `buildd --once` with max_build = 2 builds a
// good and a broken package at the same time, each in its own snapshot;
// the queue ends Built and Build-Attempted; the two log mails arrive with
// the classic subjects, the .changes at the end of the successful one, and
// their Message-IDs recorded.
func TestOnceBuildsInParallel(t *testing.T) {
	e, c := realEnv(t, "max_build = 2",
		srcPkg{"goodpkg", "1.0", "misc", "echo building goodpkg"},
		srcPkg{"badpkg", "1.0", "misc", "echo 'error: badpkg does not build' >&2; exit 1"})
	p := e.start("--once")
	if code := p.wait(t, 15*time.Minute); code != 0 {
		t.Fatalf("buildd --once exit %d:\n%s", code, p.stderr)
	}
	log := e.daemonLog()
	if st := queueState(t, c, "goodpkg"); st != "Built" {
		t.Fatalf("goodpkg is %s, want Built\n%s", st, jobLogs(e))
	}
	if st := queueState(t, c, "badpkg"); st != "Build-Attempted" {
		t.Fatalf("badpkg is %s, want Build-Attempted\n%s", st, log)
	}
	// Both started before either finished: they ran at once.
	lastStart := strings.LastIndex(log, "Starting build")
	firstEnd := strings.Index(log, "finished (")
	if strings.Count(log, "Starting build") != 2 || lastStart < 0 || firstEnd < lastStart {
		t.Fatalf("the builds did not overlap:\n%s", log)
	}
	if !strings.Contains(log, "Last lines of ") || !strings.Contains(log, "badpkg does not build") {
		t.Fatalf("the failed job's log tail is not in daemon.log:\n%s", log)
	}
	logs, _ := filepath.Glob(e.path("logs", "*.build"))
	if len(logs) != 2 {
		t.Fatalf("logs: %v", logs)
	}
	// Each build ran under its slot's RAM slice.
	slice, err := slicing.HostSlice(2)
	if err != nil {
		t.Fatal(err)
	}
	limit := fmt.Sprintf("Memory limit %d MiB per step (%s)\n", slice.RAMKiB>>10, sandbox.MemoryController())
	if sandbox.MemoryController() == "" {
		limit = "memory limit not enforced: no cgroup memory controller\n"
	}
	for _, l := range logs {
		if text, _ := os.ReadFile(l); !strings.Contains(string(text), limit) {
			t.Errorf("%s lacks %q", l, limit)
		}
	}
	if w := workingSnapshots(t, e.machines); len(w) != 0 {
		t.Fatalf("snapshots left: %v", w)
	}
	// --once delivered both logs to the log store.
	if left, _ := os.ReadDir(e.path(LogSpoolDir)); len(left) != 0 {
		t.Errorf("log-spool after --once: %v", left)
	}
	db, err := store.Open(c.WannaBuildDB, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, status := range map[string]queue.Outcome{"goodpkg": queue.Successful, "badpkg": queue.Attempted} {
		if stored, err := db.Logs(name); err != nil || len(stored) != 1 || stored[0].Status != status || stored[0].Size < 1000 {
			t.Errorf("log store: %s: %+v, %v; want one %s log", name, stored, err, status)
		}
	}
	db.Close()

	mails := e.smtp.Wait(2, 30*time.Second)
	if len(mails) != 2 {
		t.Fatalf("%d mails, want 2", len(mails))
	}
	subjects := map[string]string{}
	idRE := regexp.MustCompile(`(?mi)^Message-Id: <([^>]+)>`)
	for _, m := range mails {
		raw := strings.ReplaceAll(string(m.Data), "\r\n", "\n")
		for _, s := range []string{"Log for successful build of goodpkg_1.0 on amd64 (dist=bookworm)", "Log for failed build of badpkg_1.0 on amd64 (dist=bookworm)"} {
			if strings.Contains(raw, "Subject: "+s+"\n") {
				subjects[s] = raw
			}
		}
		id := idRE.FindStringSubmatch(raw)
		if id == nil {
			t.Fatalf("no Message-Id in\n%.400s", raw)
		}
		if sent, ok, _ := home.New(e.home).Sent().Lookup(id[1]); !ok || sent.Kind != "log" || sent.Dist != "bookworm" {
			t.Fatalf("Message-Id %s not recorded (%+v)", id[1], sent)
		}
	}
	if len(subjects) != 2 {
		t.Fatalf("subjects found: %v", subjects)
	}
	good := subjects["Log for successful build of goodpkg_1.0 on amd64 (dist=bookworm)"]
	i := strings.LastIndex(good, "goodpkg_1.0_amd64.changes:")
	if i < 0 {
		t.Fatalf("no .changes heading in the successful log mail:\n%s", good)
	}
	rest := good[i:]
	if !strings.Contains(rest, "Source: goodpkg") || !strings.Contains(rest, "Files:") || strings.Contains(rest, "+----") {
		t.Fatalf("the .changes is not at the end of the mail:\n%s", rest)
	}
}

// slowPkg builds for ten minutes: long enough to be interrupted.
var slowPkg = srcPkg{"slowpkg", "1.0", "misc", "sleep 600"}

// TestSignalsMidBuild: SIGTERM mid-build puts the package back in REDO
// and leaves no snapshot; SIGKILL mid-build leaves one, which the next
// start deletes (stage machines), and the package is back in REDO.
func TestSignalsMidBuild(t *testing.T) {
	e, c := realEnv(t, "max_build = 1", slowPkg)
	redo := home.New(e.home).REDO()
	inREDO := func() bool {
		es, _, _ := redo.Read()
		return len(es) == 1 && es[0].PkgVersion == "slowpkg_1.0" && es[0].Dist == "bookworm"
	}
	building := func() bool {
		return len(workingSnapshots(t, e.machines)) == 1 && strings.Contains(e.daemonLog(), "Starting build (dist=bookworm) of slowpkg_1.0")
	}

	p := e.start("--no-detach")
	waitFor(t, 5*time.Minute, "the build to start", building)
	time.Sleep(2 * time.Second)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr)
	}
	if !inREDO() {
		es, _, _ := redo.Read()
		t.Fatalf("after SIGTERM REDO is %v\n%s", es, e.daemonLog())
	}
	if w := workingSnapshots(t, e.machines); len(w) != 0 {
		t.Fatalf("snapshots left after SIGTERM: %v", w)
	}
	if st := queueState(t, c, "slowpkg"); st != "Building" {
		t.Fatalf("slowpkg is %s after SIGTERM, want Building (ours, in REDO)", st)
	}

	p = e.start("--no-detach")
	waitFor(t, 5*time.Minute, "the build from REDO to start", func() bool {
		es, _, _ := redo.Read()
		return len(es) == 0 && len(workingSnapshots(t, e.machines)) == 1
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, time.Minute)
	stray := workingSnapshots(t, e.machines)
	if len(stray) != 1 {
		t.Fatalf("after SIGKILL: snapshots %v", stray)
	}

	// The next start: stage machines deletes the stray snapshot, stage
	// queue puts the job back in REDO; HOLD-BUILDS keeps the round from
	// building it again.
	os.WriteFile(e.path(home.HoldBuilds), nil, 0o644)
	p = e.start("--once")
	if code := p.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("restart exit %d:\n%s", code, p.stderr)
	}
	if w := workingSnapshots(t, e.machines); len(w) != 0 {
		t.Fatalf("stray snapshot not cleaned at start: %v", w)
	}
	if _, err := os.Stat(stray[0]); !os.IsNotExist(err) {
		t.Fatalf("%s still there", stray[0])
	}
	log := e.daemonLog()
	if !strings.Contains(log, "Deleted stray snapshot") || !strings.Contains(log, "slowpkg_1.0 on amd64 (dist=bookworm) was building when buildd died -- back in REDO") {
		t.Fatalf("daemon.log:\n%s", log)
	}
	if !inREDO() {
		t.Fatal("slowpkg lost after SIGKILL")
	}
}

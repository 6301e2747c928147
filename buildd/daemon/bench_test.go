package daemon

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/machine/machinetest"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
)

// BenchmarkIdleRSS measures the resident memory of a real idle daemon
// (`buildd --no-detach` on an empty queue), from /proc/PID/status VmRSS.
func BenchmarkIdleRSS(b *testing.B) {
	for i := 0; i < b.N; i++ {
		rss := idleRSS(b)
		b.ReportMetric(float64(rss)/1024, "MiB-RSS")
	}
}

func idleRSS(b *testing.B) int64 {
	machinetest.Require(b)
	dir := machinetest.NewDir(b)
	e := newEnv(b, dir, "idle_sleep_time = 2", "")
	p := e.start("--no-detach")
	defer p.cmd.Process.Kill()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(e.daemonLog(), "Nothing to do") {
		if time.Now().After(deadline) {
			b.Fatalf("daemon not idle:\n%s\nstderr:\n%s", e.daemonLog(), p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // a few idle rounds
	status, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkIdleRound times one round with nothing to do: flush the empty
// mail spool, look at HOLD-BUILDS, the free space, REDO and the (empty)
// needs-build list of the local queue.
func BenchmarkIdleRound(b *testing.B) {
	e := newEnv(b, b.TempDir(), "", "")
	c, err := config.Load(e.conf)
	if err != nil {
		b.Fatal(err)
	}
	home.New(c.Home).Init()
	lg, err := daemonlog.Open(c.DaemonLogFile, "buildd")
	if err != nil {
		b.Fatal(err)
	}
	defer lg.Close()
	d := New(c, RealParts(), lg)
	d.machines = &fakeMachines{}
	ctx := context.Background()
	d.Round(ctx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n := d.Round(ctx); n != 0 {
			b.Fatalf("round started %d builds", n)
		}
	}
}

// BenchmarkParallelBuilds builds the same two packages one after the other
// (max_build = 1, two `buildd --once`) and at once (max_build = 2, one
// `buildd --once`), and reports the ratio of the summed wall times. Each
// package's build step is one single-threaded CPU job of a few seconds
// (sha256sum of a 1 GiB sparse file: no disk I/O, no sleep), as a build
// with parallel=1 in a one-CPU slot is; the rest of a job is buildd's and
// buildd/build's fixed work (snapshot, apt-get update and source fetch,
// build-dependency check, dpkg-buildpackage, collecting, deleting the
// snapshot).
func BenchmarkParallelBuilds(b *testing.B) {
	pkgs := []srcPkg{
		{"cpuwork-a", "1.0", "misc", "truncate -s 1G sparse && sha256sum sparse && rm sparse"},
		{"cpuwork-b", "1.0", "misc", "truncate -s 1G sparse && sha256sum sparse && rm sparse"},
	}
	var seq, par time.Duration
	for i := 0; i < b.N; i++ {
		seq += benchBuilds(b, pkgs, 1, 2)
		par += benchBuilds(b, pkgs, 2, 1)
	}
	b.ReportMetric(seq.Seconds()/float64(b.N), "s-sequential")
	b.ReportMetric(par.Seconds()/float64(b.N), "s-parallel")
	b.ReportMetric(par.Seconds()/seq.Seconds(), "parallel/sequential")
}

// benchBuilds runs `buildd --once` runs times with max_build and returns
// the wall time of the runs.
func benchBuilds(b *testing.B, pkgs []srcPkg, maxBuild, runs int) time.Duration {
	a := newArchive(b, pkgs...)
	machines, dist := buildMachine(b, a)
	e := newEnv(b, machines, "max_build = "+strconv.Itoa(maxBuild), dist)
	c, err := config.Load(e.conf)
	if err != nil {
		b.Fatal(err)
	}
	a.merge(b, c.WannaBuildDB)
	start := time.Now()
	for r := 0; r < runs; r++ {
		p := e.start("--once")
		select {
		case <-p.done:
		case <-time.After(15 * time.Minute):
			b.Fatal("buildd --once hangs")
		}
	}
	took := time.Since(start)
	log := e.daemonLog()
	if n := strings.Count(log, "finished (successful)"); n != len(pkgs) {
		b.Fatalf("%d successful builds of %d:\n%s", n, len(pkgs), jobLogs(e))
	}
	return took
}

// BenchmarkDispatchLatency measures how long a package the admin merges
// waits before an idle real daemon (`buildd --no-detach`, max_build = 1)
// starts building it: per iteration one new package is merged with the
// real wanna-build, and the time from the merge command's return to the
// "Starting build" line of that package in daemon.log (polled every
// millisecond) is reported as ms/dispatch (mean) and max-ms/dispatch.
// The build itself, and the wait for the daemon to be idle again, are not
// measured (but are in ns/op: run with -benchtime=Nx).
//
// postgres: a PostgreSQL queue and idle_sleep_time = 3600: the merge's
// notification (LISTEN/NOTIFY) wakes the daemon. PostgreSQL sends it at
// the commit, before the merge command returns, so the build may already
// be starting when the clock starts: the figure is "from what the admin
// sees to the build", and the merge itself is reported as ms/merge.
//
// bolt-idle5s: the local bbolt queue, which cannot notify, and
// idle_sleep_time = 5: the package waits for the next idle round. Each
// merge comes at a random moment of the idle sleep (a random pause of 0
// to 5 s after the daemon said "Nothing to do"), so the mean is about
// idle_sleep_time/2 and the max about idle_sleep_time: the contrast is
// idle_sleep_time, not the queue. The postgres run makes the same pauses.
func BenchmarkDispatchLatency(b *testing.B) {
	b.Run("postgres", func(b *testing.B) { dispatchLatency(b, true, 3600) })
	b.Run("bolt-idle5s", func(b *testing.B) { dispatchLatency(b, false, 5) })
}

func dispatchLatency(b *testing.B, usePG bool, idle int) {
	if usePG {
		pgtest.Require(b)
	}
	machinetest.Require(b)
	pkgs := make([]srcPkg, b.N)
	for i := range pkgs {
		pkgs[i] = srcPkg{fmt.Sprintf("dispatch%03d", i), "1.0", "misc", "true"}
	}
	a := newArchive(b, pkgs...)
	machines, dist := buildMachine(b, a)
	extra := fmt.Sprintf("max_build = 1\nidle_sleep_time = %d\n", idle)
	var db *pgtest.DB
	if usePG {
		db = pgtest.New(b)
		builder := pgtest.Builders[0]
		db.Grant(b, builder, queue.Pair{Dist: "bookworm", Arch: "amd64"})
		extra += fmt.Sprintf("builder_name = %q\nwanna_build_db = %q\n", builder, db.URL(builder))
	}
	e := newEnv(b, machines, extra, dist)
	c, err := config.Load(e.conf)
	if err != nil {
		b.Fatal(err)
	}
	adminDB := c.WannaBuildDB
	if usePG {
		adminDB = db.URL(pgtest.Admin)
	}
	// Each merge's Sources holds the packages merged so far and the new
	// one: a source missing from a merge would be removed from the queue.
	sources := sourceParagraphs(b, filepath.Join(a.dir, "dists", "bookworm", "main", "source", "Sources"))
	wb := wannaBuild(b)
	subset := filepath.Join(b.TempDir(), "Sources")
	merge := func(n int) {
		var text strings.Builder
		for _, p := range pkgs[:n] {
			text.WriteString(sources[p.name] + "\n\n")
		}
		if err := os.WriteFile(subset, []byte(text.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		run(b, a.dir, wb, "--db", adminDB, "--dist=bookworm", "-A", "amd64", "--merge-v3",
			"dists/bookworm/main/binary-amd64/Packages", ".", subset)
	}
	if usePG {
		merge(0) // the admin creates the schema
	}

	p := e.start("--no-detach")
	const ready = "Nothing to do"
	waitFor(b, time.Minute, "the daemon to be idle", func() bool {
		l := e.daemonLog()
		return strings.Contains(l, ready) && (!usePG || strings.Contains(l, "bookworm/amd64: waiting for the queue's notifications"))
	})
	log := &logTail{path: e.path("daemon.log"), off: int64(len(e.daemonLog()))}
	rng := rand.New(rand.NewPCG(1, 2))
	var total, worst, merging time.Duration
	b.ResetTimer()
	for i := range pkgs {
		time.Sleep(time.Duration(rng.Int64N(int64(5 * time.Second))))
		began := time.Now()
		merge(i + 1)
		merged := time.Now()
		log.wait(b, time.Duration(idle+60)*time.Second, "Starting build (dist=bookworm) of "+pkgs[i].name+"_1.0 ")
		took := time.Since(merged)
		total += took
		worst = max(worst, took)
		merging += merged.Sub(began)
		log.wait(b, 10*time.Minute, "Build of "+pkgs[i].name+"_1.0 on amd64 (dist=bookworm) finished (successful)")
		log.wait(b, time.Minute, ready)
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/dispatch")
	b.ReportMetric(float64(worst.Microseconds())/1e3, "max-ms/dispatch")
	b.ReportMetric(float64(merging.Microseconds())/1e3/float64(b.N), "ms/merge")
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(b, 3*time.Minute); code != 0 {
		b.Fatalf("buildd exit %d:\n%s", code, p.stderr)
	}
}

// sourceParagraphs splits a Sources index into its paragraphs, by package.
func sourceParagraphs(b *testing.B, path string) map[string]string {
	text, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]string{}
	for _, para := range strings.Split(strings.TrimSpace(string(text)), "\n\n") {
		for _, l := range strings.Split(para, "\n") {
			if name, ok := strings.CutPrefix(l, "Package: "); ok {
				out[name] = para
			}
		}
	}
	return out
}

// logTail follows a growing daemon.log: wait finds a line after the last
// one it found.
type logTail struct {
	path string
	off  int64
}

func (l *logTail) wait(b *testing.B, timeout time.Duration, s string) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	var buf []byte
	for {
		if f, err := os.Open(l.path); err == nil {
			st, _ := f.Stat()
			if st != nil && st.Size() > l.off+int64(len(buf)) {
				more := make([]byte, st.Size()-l.off-int64(len(buf)))
				n, _ := f.ReadAt(more, l.off+int64(len(buf)))
				buf = append(buf, more[:n]...)
			}
			f.Close()
		}
		// Whole lines only: the line may be half written.
		if end := bytes.LastIndexByte(buf, '\n'); end >= 0 {
			if i := bytes.Index(buf[:end+1], []byte(s)); i >= 0 {
				nl := bytes.IndexByte(buf[i:], '\n')
				l.off += int64(i + nl + 1)
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %v waiting for %q in %s; since the last find:\n%s", timeout, s, l.path, buf)
		}
		time.Sleep(time.Millisecond)
	}
}

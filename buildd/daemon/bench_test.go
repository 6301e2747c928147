package daemon

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/machine/machinetest"
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

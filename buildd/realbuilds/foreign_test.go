//go:build realbuilds

package realbuilds

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/debiandata"
	"buildd/internal/flock"
	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
)

// TestForeignBuilds builds the real bookworm hello for arm64 on this host
// twice, in an emulated arm64 machine (qemu-user) and cross in a machine of
// the host's architecture, from the mirror: each .changes holds exactly
// the binaries Debian's Packages-arm64 lists for it, its programs are
// AArch64, and the emulated build ran the package's test suite (the cross
// one cannot). make test-foreign runs it.
func TestForeignBuilds(t *testing.T) {
	for _, r := range foreignHello(t, false) {
		t.Logf("%s: Job-Time %.1f s", r.mode, r.jobTime)
	}
}

// BenchmarkForeign is the figure of make bench-foreign: hello's Job-Time
// for arm64 emulated, arm64 cross and native (the host's architecture),
// side by side in one run, and the time to create an arm64 machine
// through qemu-user beside a native one (debootstrap and setup, from the
// mirror, no cache).
func BenchmarkForeign(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for _, r := range foreignHello(b, true) {
			b.ReportMetric(r.jobTime, r.mode+"_job_s")
		}
		for _, arch := range []string{machinetest.Arch(b), "arm64"} {
			s, err := machine.Open(machinetest.NewDir(b))
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := s.Create(context.Background(), "m", machine.CreateOptions{Dist: dist, Arch: arch}); err != nil {
				b.Fatal(err)
			}
			mode := "native"
			if arch == "arm64" {
				mode = "emulated"
			}
			b.ReportMetric(time.Since(start).Seconds(), mode+"_create_s")
		}
	}
}

// foreignResult is one build of hello.
type foreignResult struct {
	mode    string
	jobTime float64
}

// foreignHello builds hello emulated and cross for arm64 (and natively
// too when native), checking each arm64 build against Debian's.
func foreignHello(tb testing.TB, native bool) []foreignResult {
	machinetest.Require(tb)
	if os.Getenv(lockedEnv) == "" {
		lk, err := flock.Acquire(lockPath, flock.Exclusive, 0o644, 30*time.Minute)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { lk.Unlock() })
	}
	data := os.Getenv(dataEnv)
	if data == "" {
		data = filepath.Join(debiandata.ModuleRoot(tb), "..", "shared", "data", "debian-bookworm-main")
	}
	all := readSources(tb, filepath.Join(data, "Sources.xz"))
	hello := all["hello"]
	if hello == nil {
		tb.Fatalf("%s: no hello", data)
	}
	srcs := map[string]*src{"hello": hello}
	readPackages(tb, filepath.Join(data, "Packages-arm64.xz"), "arm64", srcs, filepath.Join(tb.TempDir(), "Packages-arm64-others"))

	type way struct {
		mode string
		env  func(testing.TB) *machinetest.Env
	}
	ways := []way{
		{"emulated", func(tb testing.TB) *machinetest.Env { return machinetest.NewArch(tb, "arm64") }},
		{"cross", func(tb testing.TB) *machinetest.Env { return machinetest.NewCross(tb, "arm64") }},
	}
	if native {
		ways = append(ways, way{"native", machinetest.New})
	}
	var out []foreignResult
	for _, w := range ways {
		e := w.env(tb)
		cfg := config.Defaults()
		cfg.Home, cfg.MachinesDir, cfg.BuilderName, cfg.MailFrom = tb.TempDir(), e.Dir, builder, builder+"@example.org"
		mode := "native"
		if w.mode == "cross" {
			mode = "cross"
		}
		cfg.Dists = []config.Dist{{DistName: dist, BuiltArchitecture: e.Arch, Machine: e.Machine, BuildMode: mode}}
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		res, err := build.Run(ctx, &cfg, e.Store, build.Job{Dist: &cfg.Dists[0], PkgVersion: hello.pkgv(), Parallel: 2})
		cancel()
		if err != nil {
			tb.Fatal(err)
		}
		log := readFile(tb, res.LogPath)
		if res.Status != build.Successful {
			tb.Fatalf("%s build of %s: %s at %s: %s\n%s", w.mode, hello.pkgv(), res.Status, res.FailStage, res.Message, log)
		}
		kv := summary(tb, res.LogPath)
		if kv["Build-Mode"] != w.mode {
			tb.Errorf("%s build: Build-Mode %q", w.mode, kv["Build-Mode"])
		}
		jobTime, err := strconv.ParseFloat(kv["Job-Time"], 64)
		if err != nil {
			tb.Errorf("%s build: Job-Time %q", w.mode, kv["Job-Time"])
		}
		out = append(out, foreignResult{w.mode, jobTime})
		if e.Arch != "arm64" {
			continue
		}
		checkChanges(tb, hello, "arm64", res.ChangesPath)
		if m := machinetest.ELFMachine(tb, filepath.Join(cfg.Home, "build", "hello_"+hello.version+"_arm64.deb"), "usr/bin/hello"); m != "AArch64" {
			tb.Errorf("%s build: /usr/bin/hello is for %q", w.mode, m)
		}
		ranTests := strings.Contains(log, "PASS: tests/")
		if ranTests != (w.mode == "emulated") {
			tb.Errorf("%s build: the test suite ran: %v", w.mode, ranTests)
		}
	}
	return out
}

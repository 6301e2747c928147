package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"buildd/internal/queue/store/storetest"
)

// EnvOldBinary names an older wanna-build binary (e.g. one built from
// the code before the PostgreSQL store and the status web) for
// BenchmarkStartup to run beside this one on the same bbolt queue.
const EnvOldBinary = "BUILDD_OLD_WANNA_BUILD"

// startupVariant is one command line that BenchmarkStartup times.
type startupVariant struct {
	name   string
	argv   []string
	wall   []time.Duration
	minflt []int64
}

// startupStates are the page-cache states the binaries are timed in. A
// process's start-up is mostly page faults on the binary, and what one
// costs depends on how the file's pages came into the page cache (the
// folios' sizes), for the same bytes: on ext4 with large folios (Linux
// 6.18) --info of one binary took 3.5 ms (median) written by one
// write(2), 3.8 ms copied by cp(1), 4.5–4.7 ms read back from the disk or
// as go build's linker leaves it. A binary that faults more pages than
// another loses more in the slower states, so the figures compare the
// binaries in one state at a time.
//
//	copied: written by one write(2), as an install may leave it;
//	reread: that file fsynced, dropped from the page cache and read back
//	        by the first run, as after a reboot.
var startupStates = []string{"copied", "reread"}

// BenchmarkStartup: whole-process `--info gcc-12` and `--list=building`
// (read-only, nothing listed: the start-up and the store's opening) with
// the real bookworm merge in the queue, on a bbolt file and on PostgreSQL
// (after VACUUM ANALYZE), and, when $BUILDD_OLD_WANNA_BUILD names an older
// binary, that binary on the same bbolt file; each in the page-cache
// states of startupStates. Two command lines are compared at a time, their
// processes alternating, so that both see the same machine: this binary
// on bbolt against the old one (.../old: old-ratio) and PostgreSQL against
// bbolt (.../postgres: pg-ratio), the ratios of the medians. Per command
// line it reports the median and p90 wall time (ms) and the median minor
// page faults. The bbolt file is merged by the old binary when one is
// given: this one reads the old records, the old one cannot read records
// this one writes. For the README's figure:
//
//	BUILDD_OLD_WANNA_BUILD=/path/wanna-build go test -run '^$' -bench Startup -benchtime 300x ./wannabuild/wanna-build/
func BenchmarkStartup(b *testing.B) {
	src, pkgs := plainData(b)
	dir := b.TempDir()
	old := os.Getenv(EnvOldBinary)
	cur, olds := map[string]string{}, map[string]string{}
	for _, st := range startupStates {
		os.Mkdir(filepath.Join(dir, st), 0o755)
		cur[st] = installed(b, bin, filepath.Join(dir, st, "wanna-build"), st == "reread")
		if old != "" {
			olds[st] = installed(b, old, filepath.Join(dir, st, "wanna-build-old"), st == "reread")
		}
	}
	bolt := filepath.Join(dir, "wb.db")
	if old != "" {
		startupRun(b, olds["copied"], bolt, "--merge-v3", pkgs, ".", src)
	} else {
		startupRun(b, cur["copied"], bolt, "--merge-v3", pkgs, ".", src)
	}
	dbs := [][2]string{{"bolt", bolt}}
	if err := havePostgres(); err == nil {
		pgdb := storetest.NewOf(b, "postgres")
		startupRun(b, cur["copied"], pgdb, "--merge-v3", pkgs, ".", src)
		settle(b, pgdb)
		dbs = append(dbs, [2]string{"postgres", pgdb})
	} else {
		b.Logf("!!!!! no PostgreSQL figures: %v !!!!!", err)
	}
	for _, cmd := range [][]string{{"--info", "gcc-12"}, {"--list=building"}} {
		// The old binary must answer as this one does on the same file.
		if old != "" {
			if o, n := startupRun(b, olds["copied"], bolt, cmd...), startupRun(b, cur["copied"], bolt, cmd...); o != n {
				b.Logf("%s: the old binary's output differs:\n%s\nthis one's:\n%s", cmd[0], o, n)
			}
		}
		for _, st := range startupStates {
			variant := func(name, binary, db string) *startupVariant {
				return &startupVariant{name: name, argv: append([]string{binary, "--db", db, "--dist=bookworm", "--arch=arm64"}, cmd...)}
			}
			name := strings.TrimLeft(strings.SplitN(cmd[0], "=", 2)[0], "-") + "/" + st
			// Each comparison alternates its two command lines only: a
			// PostgreSQL backend ending beside the next process would
			// weigh on the bbolt figures.
			if old != "" {
				b.Run(name+"/old", func(b *testing.B) {
					startupCompare(b, variant("old-bolt", olds[st], bolt), variant("bolt", cur[st], bolt), "old-ratio")
				})
			}
			if len(dbs) > 1 {
				b.Run(name+"/postgres", func(b *testing.B) {
					startupCompare(b, variant("bolt", cur[st], bolt), variant("postgres", cur[st], dbs[1][1]), "pg-ratio")
				})
			}
		}
	}
}

// startupCompare times base and v alternating and reports the figures,
// and v's median over base's as ratio.
func startupCompare(b *testing.B, base, v *startupVariant, ratio string) {
	vs := []*startupVariant{base, v}
	for _, v := range vs {
		for range 3 { // the page cache (a reread binary is read here) and the database
			startupTime(b, v)
		}
		v.wall, v.minflt = nil, nil
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range vs {
			startupTime(b, vs[(i+j)%len(vs)])
		}
	}
	b.StopTimer()
	for _, v := range vs {
		slices.Sort(v.wall)
		slices.Sort(v.minflt)
		b.ReportMetric(ms(v.wall[len(v.wall)/2]), v.name+"-ms")
		b.ReportMetric(ms(v.wall[len(v.wall)*9/10]), v.name+"-p90-ms")
		if len(v.minflt) > 0 {
			b.ReportMetric(float64(v.minflt[len(v.minflt)/2]), v.name+"-minflt")
		}
	}
	b.ReportMetric(float64(v.wall[len(v.wall)/2])/float64(base.wall[len(base.wall)/2]), ratio)
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// installed writes the binary src to dst with one write(2) and returns
// dst; with evict, fsynced and dropped from the page cache, for the first
// run to read back.
func installed(b *testing.B, src, dst string, evict bool) string {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		b.Fatal(err)
	}
	if evict {
		f, err := os.Open(dst)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
	}
	return dst
}

// havePostgres tells whether pgtest can start a cluster (as root, with
// PostgreSQL installed), so that the bbolt figures are had without it.
func havePostgres() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("not root")
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
		return fmt.Errorf("no /usr/lib/postgresql/*/bin/initdb")
	}
	return nil
}

// startupTime runs v once, timing the whole process from fork to wait.
func startupTime(b *testing.B, v *startupVariant) {
	cmd := exec.Command(v.argv[0], v.argv[1:]...)
	cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(v.argv, " "), err, errb.String())
	}
	v.wall = append(v.wall, wall)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		v.minflt = append(v.minflt, ru.Minflt)
	}
}

// startupRun runs binary on db for bookworm/arm64 and returns stdout.
func startupRun(b *testing.B, binary, db string, args ...string) string {
	b.Helper()
	cmd := exec.Command(binary, append([]string{"--db", db, "--dist=bookworm", "--arch=arm64"}, args...)...)
	cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		b.Fatalf("%s %s: %v\n%s", binary, strings.Join(args, " "), err, msg)
	}
	return string(out)
}

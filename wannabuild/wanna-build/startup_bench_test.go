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

// BenchmarkStartup: whole-process `--info gcc-12` and `--list=building`
// (read-only, nothing listed: the start-up and the store's opening) with
// the real bookworm merge in the queue, on a bbolt file and on PostgreSQL
// (after VACUUM ANALYZE), and, when $BUILDD_OLD_WANNA_BUILD names an older
// binary, that binary on the same bbolt file. The processes alternate, in
// a rotating order, so that every command line sees the same machine.
// Per command line it reports the median and p90 wall time (ms) and the
// median minor page faults; then the ratios of the medians: this binary
// over the old one on bbolt (old-ratio) and PostgreSQL over bbolt
// (pg-ratio). The bbolt file is merged by the old binary when one is
// given: this one reads the old records, the old one cannot read records
// this one writes. For the README's figure:
//
//	BUILDD_OLD_WANNA_BUILD=/path/wanna-build go test -run '^$' -bench Startup -benchtime 200x ./wannabuild/wanna-build/
func BenchmarkStartup(b *testing.B) {
	src, pkgs := plainData(b)
	old := os.Getenv(EnvOldBinary)
	bolt := filepath.Join(b.TempDir(), "wb.db")
	merger := bin
	if old != "" {
		merger = old
	}
	startupRun(b, merger, bolt, "--merge-v3", pkgs, ".", src)
	dbs := [][2]string{{"bolt", bolt}}
	if err := havePostgres(); err == nil {
		pgdb := storetest.NewOf(b, "postgres")
		startupRun(b, bin, pgdb, "--merge-v3", pkgs, ".", src)
		settle(b, pgdb)
		dbs = append(dbs, [2]string{"postgres", pgdb})
	} else {
		b.Logf("!!!!! no PostgreSQL figures: %v !!!!!", err)
	}
	for _, cmd := range [][]string{{"--info", "gcc-12"}, {"--list=building"}} {
		var vs []*startupVariant
		add := func(name, binary, db string) {
			vs = append(vs, &startupVariant{name: name, argv: append([]string{binary, "--db", db, "--dist=bookworm", "--arch=arm64"}, cmd...)})
		}
		if old != "" {
			add("old-bolt", old, bolt)
		}
		for _, db := range dbs {
			add(db[0], bin, db[1])
		}
		// The old binary must answer as this one does on the same file.
		if old != "" {
			if o, n := startupRun(b, old, bolt, cmd...), startupRun(b, bin, bolt, cmd...); o != n {
				b.Logf("%s: the old binary's output differs:\n%s\nthis one's:\n%s", cmd[0], o, n)
			}
		}
		name := strings.TrimLeft(strings.SplitN(cmd[0], "=", 2)[0], "-")
		b.Run(name, func(b *testing.B) {
			for _, v := range vs {
				v.wall, v.minflt = nil, nil
				for range 3 { // warm the page cache and the database
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
			med := map[string]float64{}
			for _, v := range vs {
				slices.Sort(v.wall)
				slices.Sort(v.minflt)
				med[v.name] = ms(v.wall[len(v.wall)/2])
				b.ReportMetric(med[v.name], v.name+"-ms")
				b.ReportMetric(ms(v.wall[len(v.wall)*9/10]), v.name+"-p90-ms")
				b.ReportMetric(float64(v.minflt[len(v.minflt)/2]), v.name+"-minflt")
			}
			if old != "" {
				b.ReportMetric(med["bolt"]/med["old-bolt"], "old-ratio")
			}
			if _, ok := med["postgres"]; ok {
				b.ReportMetric(med["postgres"]/med["bolt"], "pg-ratio")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
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

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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

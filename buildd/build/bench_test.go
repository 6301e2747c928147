package build_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// BenchmarkEnvironment measures the per-build environment overhead:
// working snapshot + namespaces + mounts + a no-op command + teardown +
// snapshot deletion, median of 25 runs; and, in the same run, unpacking the
// same machine from its tarball (what sbuild's unshare mode does for every
// build), median of 3 runs. Run with -benchtime=1x.
func BenchmarkEnvironment(b *testing.B) {
	e := machinetest.New(b)
	tar := machinetest.Tarball(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		var env []time.Duration
		for r := 0; r < 25; r++ {
			t0 := time.Now()
			w, err := e.Store.NewWorking(e.Machine, "bench_1.0")
			if err != nil {
				b.Fatal(err)
			}
			c := &sandbox.Cmd{Root: w.Path(), User: "buildd", Args: []string{"/bin/true"}}
			if err := c.Run(ctx); err != nil {
				b.Fatal(err)
			}
			if err := w.Delete(); err != nil {
				b.Fatal(err)
			}
			env = append(env, time.Since(t0))
		}
		var unpack []time.Duration
		for r := 0; r < 3; r++ {
			dir := filepath.Join(e.Dir, "unpack")
			t0 := time.Now()
			os.Mkdir(dir, 0o755)
			if out, err := exec.Command("tar", "-x", "--numeric-owner", "-f", tar, "-C", dir).CombinedOutput(); err != nil {
				b.Fatalf("tar: %v %s", err, out)
			}
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			unpack = append(unpack, time.Since(t0))
		}
		me, mu := median(env), median(unpack)
		b.ReportMetric(float64(me.Microseconds())/1000, "env-ms/median")
		b.ReportMetric(float64(mu.Microseconds())/1000, "tar-unpack-ms/median")
		b.ReportMetric(float64(mu)/float64(me), "unpack/env-ratio")
	}
}

// BenchmarkTrivialBuild is a package with no extra build dependencies, end
// to end (snapshot, copy .dsc, unpack, build-dep check, dpkg-buildpackage,
// collect, delete).
func BenchmarkTrivialBuild(b *testing.B) {
	e := machinetest.New(b)
	cfg := testConfig(b, e)
	dsc := sourcePackage(b, "tiny-ok")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: dsc, LogPath: filepath.Join(b.TempDir(), "log")})
		if err != nil || res.Status != build.Successful {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

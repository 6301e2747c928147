package build_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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

// layerDeps are small -dev packages of bookworm main: each makes tiny-dh's
// build-dependencies a distinct set.
var layerDeps = []string{
	"zlib1g-dev", "libbz2-dev", "liblzma-dev", "libzstd-dev", "libexpat1-dev",
	"libyaml-dev", "libffi-dev", "libpopt-dev", "libjansson-dev", "libpcre2-dev",
	"libgmp-dev", "uuid-dev", "libcap-dev", "libacl1-dev", "libseccomp-dev",
	"libsqlite3-dev", "libedit-dev", "libncurses-dev", "libreadline-dev", "liblz4-dev",
}

// tinyDHWith is tiny-dh's source package with dep (one relation or a
// comma-separated list) added to its Build-Depends.
func tinyDHWith(b testing.TB, dep string) string {
	dsc := sourcePackage(b, "tiny-dh")
	dir := filepath.Join(filepath.Dir(dsc), "tiny-dh")
	control := filepath.Join(dir, "debian/control")
	data, err := os.ReadFile(control)
	if err != nil {
		b.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "debhelper-compat (= 13)", "debhelper-compat (= 13), "+dep, 1))
	if err := os.WriteFile(control, data, 0o644); err != nil {
		b.Fatal(err)
	}
	os.Remove(dsc)
	cmd := exec.Command("dpkg-source", "-b", "tiny-dh")
	cmd.Dir = filepath.Dir(dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("dpkg-source -b: %v\n%s", err, out)
	}
	return dsc
}

// BenchmarkLayers builds tiny-dh with each of 20 build-dependencies added
// (20 distinct sets, 20 layers), then each again from its layer, on one
// machine revision, and reports: the disk the layers take (btrfs's
// exclusive bytes of the layer subvolumes, and the installed size of
// their packages), the median Install-Time and Job-Time of a miss and of
// a hit, and the bytes downloaded per build on a miss and on a hit (a
// miss downloads only what no earlier build fetched). Run with
// -benchtime=1x.
func BenchmarkLayers(b *testing.B) {
	e := machinetest.New(b)
	cfg := testConfig(b, e)
	dscs := make([]string, len(layerDeps))
	for i, dep := range layerDeps {
		dscs[i] = tinyDHWith(b, dep)
	}
	type run struct {
		install, job time.Duration
		download     int64
	}
	build1 := func(dsc string) run {
		t0 := time.Now()
		res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: dsc, LogPath: filepath.Join(b.TempDir(), "log")})
		if err != nil || res.Status != build.Successful {
			b.Fatalf("%s: %+v %v", dsc, res, err)
		}
		return run{res.InstallTime, time.Since(t0), res.Downloaded}
	}
	for i := 0; i < b.N; i++ {
		var miss, hit []run
		for _, dsc := range dscs {
			miss = append(miss, build1(dsc))
		}
		for _, dsc := range dscs {
			hit = append(hit, build1(dsc))
		}
		layers, err := e.Store.Layers(e.Machine)
		if err != nil {
			b.Fatal(err)
		}
		var installed int64
		args := []string{"filesystem", "du", "-s", "--raw"}
		for _, l := range layers {
			installed += l.SizeKiB
			args = append(args, l.Path)
		}
		out, err := exec.Command("btrfs", args...).Output()
		if err != nil {
			b.Fatalf("btrfs %v: %v", args, err)
		}
		var exclusive int64
		for _, l := range strings.Split(string(out), "\n")[1:] {
			if f := strings.Fields(l); len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				exclusive += n
			}
		}
		med := func(rs []run, f func(run) time.Duration) float64 {
			var d []time.Duration
			for _, r := range rs {
				d = append(d, f(r))
			}
			return median(d).Seconds()
		}
		dl := func(rs []run) float64 {
			var n int64
			for _, r := range rs {
				n += r.download
			}
			return float64(n) / float64(len(rs)) / (1 << 20)
		}
		b.ReportMetric(float64(len(layers)), "layers")
		b.ReportMetric(float64(exclusive)/(1<<20), "layers-exclusive-MiB")
		b.ReportMetric(float64(installed)/1024, "layers-installed-MiB")
		b.ReportMetric(med(miss, func(r run) time.Duration { return r.install }), "miss-install-s")
		b.ReportMetric(med(miss, func(r run) time.Duration { return r.job }), "miss-job-s")
		b.ReportMetric(med(hit, func(r run) time.Duration { return r.install }), "hit-install-s")
		b.ReportMetric(med(hit, func(r run) time.Duration { return r.job }), "hit-job-s")
		b.ReportMetric(dl(miss), "miss-download-MiB/build")
		b.ReportMetric(dl(hit), "hit-download-MiB/build")
	}
}

package build_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"

	"golang.org/x/sys/unix"
)

// BenchmarkNoSync: which way of installing without an fsync per file is
// fastest. It installs the same packages (debhelper and CMake: 49 .debs,
// already in apt's cache) into fresh working snapshots, three rounds of
// every way, alternating: dpkg as it is; dpkg --force-unsafe-io; eatmydata
// (LD_PRELOAD: no sync of any kind, dpkg's database included; it must be
// installed in the machine); the sandbox's seccomp filter (NoSync, the
// same without anything in the machine); and build's install script as builds
// run it (both of those, and man-db's index not kept). Each time includes the
// syncfs that makes the result durable, as a layer's is. It reports each
// way's median. Needs the mirror; run with -benchtime=1x.
func BenchmarkNoSync(b *testing.B) {
	e := machinetest.New(b)
	ctx := context.Background()
	const pkgs = "debhelper cmake"
	run := func(w *machine.Working, script string, noSync bool) {
		var out strings.Builder
		c := &sandbox.Cmd{Root: w.Path(), Args: []string{"/bin/sh", "-ec", script}, Network: true, Output: &out, NoSync: noSync,
			Env: []string{"DEBIAN_FRONTEND=noninteractive", "PATH=" + sandbox.DefaultPath}}
		if err := c.Run(ctx); err != nil {
			b.Fatalf("%s: %v\n%s", script, err, out.String())
		}
	}
	// The .debs, downloaded once and cloned into each snapshot.
	debs := filepath.Join(e.Dir, "nosync-debs")
	if err := os.Mkdir(debs, 0o755); err != nil {
		b.Fatal(err)
	}
	lists, err := e.Store.NewWorking(e.Machine, "nosync-download") // its package lists, copied into each snapshot
	if err != nil {
		b.Fatal(err)
	}
	defer lists.Delete()
	w := lists
	run(w, "apt-get -qq update && apt-get -qq -d install eatmydata "+pkgs, false)
	files, _ := filepath.Glob(filepath.Join(w.Path(), machine.TreeArchives, "*.deb"))
	for _, f := range files {
		if err := machine.CloneFile(f, filepath.Join(debs, filepath.Base(f))); err != nil {
			b.Fatal(err)
		}
	}
	ways := []struct {
		name   string
		script string
		noSync bool
	}{
		{"plain", "apt-get -qq install " + pkgs, false},
		{"unsafe-io", "apt-get -qq -o Dpkg::Options::=--force-unsafe-io install " + pkgs, false},
		{"eatmydata", "eatmydata apt-get -qq install " + pkgs, false},
		{"seccomp", "apt-get -qq install " + pkgs, true},
		{"builds", build.InstallScript("-qq install " + pkgs), true},
	}
	for i := 0; i < b.N; i++ {
		times := map[string][]time.Duration{}
		for r := 0; r < 3; r++ {
			for _, way := range ways {
				w, err := e.Store.NewWorking(e.Machine, "nosync-"+way.name)
				if err != nil {
					b.Fatal(err)
				}
				if err := machine.CopyLists(lists.Path(), w.Path()); err != nil {
					b.Fatal(err)
				}
				for _, f := range files {
					if err := machine.CloneNew(filepath.Join(debs, filepath.Base(f)), filepath.Join(w.Path(), machine.TreeArchives, filepath.Base(f))); err != nil {
						b.Fatal(err)
					}
				}
				run(w, "dpkg -i /"+machine.TreeArchives+"/eatmydata_*.deb /"+machine.TreeArchives+"/libeatmydata1_*.deb >/dev/null", false)
				syncDir(b, w.Path())
				t0 := time.Now()
				run(w, way.script, way.noSync)
				syncDir(b, w.Path())
				times[way.name] = append(times[way.name], time.Since(t0))
				if err := w.Delete(); err != nil {
					b.Fatal(err)
				}
			}
		}
		for _, way := range ways {
			b.ReportMetric(median(times[way.name]).Seconds(), way.name+"-s")
		}
	}
}

func syncDir(b *testing.B, dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		b.Fatal(err)
	}
}

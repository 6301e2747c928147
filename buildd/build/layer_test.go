package build_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/machine/machinetest"
	"buildd/internal/queue"
)

// TestLayerBuilds builds a debhelper package four times on one machine
// revision: the first installs its build-dependencies (downloading them)
// and keeps a layer; the second continues from that layer, installing and
// downloading nothing; with the layer gone, the third installs again from
// the machine's package cache, downloading nothing; with layers off, the
// fourth installs as before layers existed. Every build makes the same
// .deb, byte for byte: a build from a layer is indistinguishable in its
// result from one that installed.
func TestLayerBuilds(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	dsc := sourcePackage(t, "tiny-dh")
	deb := filepath.Join(cfg.Home, "build", "tiny-dh_1.0_"+e.Arch+".deb")
	var firstDeb, firstLayer string
	for _, tc := range []struct {
		name     string
		before   func()
		layer    func(string) bool
		summary  string // Install-Layer's form
		download bool   // some build-dependency was downloaded
		inLog    []string
	}{
		{name: "miss-keeps-a-layer", layer: func(l string) bool { return strings.HasPrefix(l, "layer-1-") }, summary: "(new)", download: true,
			inLog: []string{"0 bytes from the machine's package cache", "Setting up debhelper", "Kept as layer layer-1-"}},
		{name: "hit", layer: func(l string) bool { return l == firstLayer },
			inLog: []string{"Installed from layer " + firstLayer}},
		{name: "miss-from-package-cache", before: func() {
			if gone, err := e.Store.EvictLayers(e.Machine, 0); err != nil || len(gone) != 1 {
				t.Fatalf("EvictLayers: %v %v", gone, err)
			}
		}, layer: func(l string) bool { return l == firstLayer }, summary: "(new)",
			inLog: []string{" to download\n", "Setting up debhelper"}},
		{name: "layers-off", before: func() { cfg.LayerCacheSize = 0 }, layer: func(l string) bool { return l == "" }, summary: "none",
			inLog: []string{"Setting up debhelper"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			res, log := buildOK(t, e, cfg, dsc, tc.name)
			if !tc.layer(res.Layer) {
				t.Errorf("Layer = %q (first %q)", res.Layer, firstLayer)
			}
			if (res.Downloaded > 0) != tc.download {
				t.Errorf("Downloaded = %d bytes, want some: %v", res.Downloaded, tc.download)
			}
			kv := summary(t, res.LogPath)
			if want := strings.TrimSpace(res.Layer + " " + tc.summary); kv["Install-Layer"] != want {
				t.Errorf("Install-Layer: %q, want %q", kv["Install-Layer"], want)
			}
			for _, k := range []string{"Install-Time", "Package-Time", "Job-Time"} {
				if kv[k] == "" {
					t.Errorf("summary lacks %s: %v", k, kv)
				}
			}
			for _, s := range tc.inLog {
				if !strings.Contains(string(log), s) {
					t.Errorf("log lacks %q\n%s", s, log)
				}
			}
			data, err := os.ReadFile(deb)
			if err != nil {
				t.Fatal(err)
			}
			sum := fmt.Sprintf("%x", sha256.Sum256(data))
			if firstDeb == "" {
				firstDeb, firstLayer = sum, res.Layer
			} else if sum != firstDeb {
				t.Errorf("%s differs from the first build's", deb)
			}
		})
	}
	if ls, err := e.Store.Layers(e.Machine); err != nil || len(ls) != 1 || ls[0].SizeKiB == 0 {
		t.Errorf("Layers = %+v, %v", ls, err)
	}
}

// TestGrowLayers: misses grow layers from the layers they share packages
// with. tiny-dh with libyaml-dev installs on the bare revision; with
// zlib1g-dev it shares debhelper's toolchain with that layer, which is kept
// first as a step layer (from the revision), then grown; plain tiny-dh
// needs exactly that step and takes it; with both -dev packages it grows
// from one of the two layers holding all but one of its packages. The grown
// builds make the same .deb, byte for byte, as builds with layers off.
func TestGrowLayers(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	deb := filepath.Join(cfg.Home, "build", "tiny-dh_1.0_"+e.Arch+".deb")
	dsc := func(t *testing.T, deps string) string {
		if deps == "" {
			return sourcePackage(t, "tiny-dh")
		}
		return tinyDHWith(t, deps)
	}
	layers := map[string]string{} // by test name: the build's layer
	debs := map[string]string{}   // by test name: the .deb's sha256
	var step string
	for _, tc := range []struct {
		name    string
		deps    string
		noLayer bool
		check   func(res *build.Result, log string) string
	}{
		{name: "bare", deps: "libyaml-dev", check: func(res *build.Result, log string) string {
			if !res.LayerNew || res.LayerFrom != "" {
				return "not a new layer installed on the bare revision"
			}
			return ""
		}},
		{name: "step-then-grow", deps: "zlib1g-dev", check: func(res *build.Result, log string) string {
			ls, _ := e.Store.Layers(e.Machine)
			for _, l := range ls {
				if l.Name != layers["bare"] && l.Name != res.Layer {
					step = l.Name
				}
			}
			if len(ls) != 3 || !res.LayerNew || res.LayerFrom != step || !strings.Contains(log, "Step layer: ") {
				return fmt.Sprintf("not grown from a step layer: %d layers, from %q, step %q", len(ls), res.LayerFrom, step)
			}
			return ""
		}},
		{name: "hit-on-step", check: func(res *build.Result, log string) string {
			if res.LayerNew || res.Layer != step {
				return "not a hit on the step layer " + step
			}
			return ""
		}},
		{name: "grow-from-layer", deps: "libyaml-dev, zlib1g-dev", check: func(res *build.Result, log string) string {
			if !res.LayerNew || (res.LayerFrom != layers["bare"] && res.LayerFrom != layers["step-then-grow"]) || strings.Contains(log, "Step layer: ") {
				return "not grown from one of the two layers"
			}
			return ""
		}},
		{name: "off-zlib", deps: "zlib1g-dev", noLayer: true},
		{name: "off-both", deps: "libyaml-dev, zlib1g-dev", noLayer: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg.LayerCacheSize = 1 << 20
			if tc.noLayer {
				cfg.LayerCacheSize = 0
			}
			res, log := buildOK(t, e, cfg, dsc(t, tc.deps), tc.name)
			if tc.check != nil {
				if why := tc.check(res, string(log)); why != "" {
					t.Fatalf("%s: %+v\n%s", why, res, log)
				}
			}
			if want := "(new, grown from " + res.LayerFrom + ")"; res.LayerFrom != "" && !strings.HasSuffix(summary(t, res.LogPath)["Install-Layer"], want) {
				t.Errorf("Install-Layer %q, want ... %s", summary(t, res.LogPath)["Install-Layer"], want)
			}
			layers[tc.name] = res.Layer
			data, err := os.ReadFile(deb)
			if err != nil {
				t.Fatal(err)
			}
			debs[tc.name] = fmt.Sprintf("%x", sha256.Sum256(data))
		})
	}
	for grown, off := range map[string]string{"step-then-grow": "off-zlib", "grow-from-layer": "off-both"} {
		if debs[grown] == "" || debs[grown] != debs[off] {
			t.Errorf("%s's .deb differs from %s's", grown, off)
		}
	}
}

// buildOK builds dsc, which must succeed and leave no working snapshot,
// and returns the result and the log.
func buildOK(t *testing.T, e *machinetest.Env, cfg *config.Config, dsc, name string) (*build.Result, []byte) {
	t.Helper()
	res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: dsc, LogPath: logPath(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(res.LogPath)
	if res.Status != build.Successful {
		t.Fatalf("%+v\n%s", res, log)
	}
	noWorking(t, e)
	return res, log
}

// TestSharedLists: two archive builds on one machine; the second takes the
// package lists the first fetched instead of running apt-get update.
func TestSharedLists(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	archive := localArchive(t, e.Dist, e.Arch, "tiny-ok")
	cfg.Dists[0].AptSources = []string{"deb [trusted=yes] file:" + archive + " " + e.Dist + " main", "deb-src [trusted=yes] file:" + archive + " " + e.Dist + " main"}
	for i, want := range []string{"+ apt-get -q update\n", "Package lists of "} {
		res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], PkgVersion: "tiny-ok_1.0", LogPath: logPath(t, fmt.Sprint("build", i))})
		if err != nil {
			t.Fatal(err)
		}
		log, _ := os.ReadFile(res.LogPath)
		if res.Status != build.Successful || !strings.Contains(string(log), want) {
			t.Fatalf("build %d: %s, log lacks %q\n%s", i+1, res.Status, want, log)
		}
	}
}

// TestSharedListsStale: a package uploaded after the shared package lists
// were fetched (the queue merged it since) is not in them; the build
// refreshes them, for later builds too, and fetches it, instead of
// failing at fetch-src as if the mirror were broken. The archive is
// served over HTTP, as a mirror is (apt reads a file: archive's indexes
// in place, never from the lists).
func TestSharedListsStale(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	archive := localArchive(t, e.Dist, e.Arch, "tiny-ok")
	srv := httptest.NewServer(http.FileServer(http.Dir(archive)))
	defer srv.Close()
	cfg.Dists[0].AptSources = []string{"deb [trusted=yes] " + srv.URL + "/ " + e.Dist + " main", "deb-src [trusted=yes] " + srv.URL + "/ " + e.Dist + " main"}
	first, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], PkgVersion: "tiny-ok_1.0", LogPath: logPath(t, "first")})
	if err != nil || first.Status != build.Successful {
		t.Fatalf("first build: %+v, %v", first, err)
	}
	// The upload: the archive gains tiny-fail.
	newer := localArchive(t, e.Dist, e.Arch, "tiny-ok", "tiny-fail")
	if err := os.RemoveAll(archive); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", newer, archive).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], PkgVersion: "tiny-fail_1.0", LogPath: logPath(t, "second")})
	if err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(res.LogPath)
	if res.Status != build.Attempted || res.FailStage != build.StageBuild || res.Class != queue.ClassPackage ||
		!strings.Contains(string(log), "tiny-fail_1.0 is not in the shared package lists: refreshing them") {
		t.Fatalf("the upload after the shared lists: %s at %s (%s), want it fetched after a refresh and attempted at build\n%s", res.Status, res.FailStage, res.Class, log)
	}
}

package build_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"buildd/buildd/build"
	"buildd/internal/machine/machinetest"
	"buildd/internal/queue"
)

// TestForeignBuilds builds a C package for arm64 on this host both ways:
// in an emulated arm64 machine (qemu-user through binfmt_misc), where the
// package's test suite runs, and in a cross machine of the host's
// architecture (dpkg-buildpackage --host-arch, profiles cross and nocheck).
// Each .deb holds an AArch64 program; the summary says how it was built.
func TestForeignBuilds(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		env     func(*testing.T) *machinetest.Env
		inLog   []string
		notLog  []string
		elfKind string
	}{
		{mode: "emulated", env: func(t *testing.T) *machinetest.Env { return machinetest.NewArch(t, "arm64") },
			inLog: []string{"emulated build for arm64", "tiny-c: test suite passed"}},
		{mode: "cross", env: func(t *testing.T) *machinetest.Env { return machinetest.NewCross(t, "arm64") },
			inLog: []string{"cross build for arm64", "--host-arch=arm64", "aarch64-linux-gnu-gcc"}, notLog: []string{"test suite passed"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e := tc.env(t)
			cfg := testConfig(t, e)
			cfg.Dists[0].BuildMode = map[string]string{"emulated": "native", "cross": "cross"}[tc.mode]
			res, log := buildOK(t, e, cfg, sourcePackage(t, "tiny-c"), "tiny-c-"+tc.mode)
			if kv := summary(t, res.LogPath); kv["Build-Mode"] != tc.mode || kv["Architecture"] != "arm64" {
				t.Errorf("summary %v", kv)
			}
			for _, s := range tc.inLog {
				if !strings.Contains(string(log), s) {
					t.Errorf("log lacks %q\n%s", s, log)
				}
			}
			for _, s := range tc.notLog {
				if strings.Contains(string(log), s) {
					t.Errorf("log has %q\n%s", s, log)
				}
			}
			if _, err := os.Stat(filepath.Join(cfg.Home, "build", "tiny-c_1.0_arm64.changes")); err != nil {
				t.Error(err)
			}
			if m := machinetest.ELFMachine(t, filepath.Join(cfg.Home, "build", "tiny-c_1.0_arm64.deb"), "usr/bin/tiny-c"); m != "AArch64" {
				t.Errorf("usr/bin/tiny-c is for %q, not AArch64", m)
			}
		})
	}
}

// TestMachineKindChecked: a cross machine is not taken for a native
// build, nor a native machine for a cross one; the build is given back
// saying what to do.
func TestMachineKindChecked(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	cfg.Dists[0].BuildMode = "cross"
	res, err := build.Run(t.Context(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-ok"), LogPath: logPath(t, "kind")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != build.GivenBack || !strings.Contains(res.Message, "is not a cross machine for "+e.Arch) {
		t.Errorf("%s: %s", res.Status, res.Message)
	}
	noWorking(t, e)
}

// TestCrossUnmet: a package whose build-dependencies cannot be satisfied
// for a cross build fails saying it cannot be cross-built, or, with
// cross_give_back, is given back for a native or emulated builder.
func TestCrossUnmet(t *testing.T) {
	e := machinetest.NewCross(t, "arm64")
	for _, giveBack := range []bool{false, true} {
		cfg := testConfig(t, e)
		cfg.Dists[0].BuildMode, cfg.Dists[0].CrossGiveBack = "cross", giveBack
		res, err := build.Run(t.Context(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-missing"), LogPath: logPath(t, "unmet")})
		if err != nil {
			t.Fatal(err)
		}
		want, class := build.Attempted, queue.ClassDeps
		if giveBack {
			want, class = build.GivenBack, queue.ClassInfra
		}
		if res.Status != want || res.FailStage != build.StageDeps || res.Class != class || !strings.Contains(res.Message, "cannot be cross-built for arm64") {
			t.Errorf("cross_give_back %v: %s at %s class %s: %s", giveBack, res.Status, res.FailStage, res.Class, res.Message)
		}
	}
	noWorking(t, e)
}

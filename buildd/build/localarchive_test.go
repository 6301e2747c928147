package build_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/machine/machinetest"
)

// localArchive makes an unsigned apt archive in a new directory, the way an
// admin's local archive looks: pool/main/ holding the sources of the
// testdata packages pkgs and the binary libbuildd-local-dev (testdata tree
// built with dpkg-deb), indexes written by dpkg-scansources and
// dpkg-scanpackages under dists/DIST/main/, and a Release file.
func localArchive(t testing.TB, dist, arch string, pkgs ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "archive")
	pool := filepath.Join(dir, "pool", "main")
	srcIdx := filepath.Join(dir, "dists", dist, "main", "source")
	binIdx := filepath.Join(dir, "dists", dist, "main", "binary-"+arch)
	for _, d := range []string{pool, srcIdx, binIdx} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(out string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		data, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
		}
		if out != "" {
			if err := os.WriteFile(out, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range pkgs {
		dsc := sourcePackage(t, p)
		files, _ := filepath.Glob(strings.TrimSuffix(dsc, ".dsc") + ".*")
		run("", "cp", append(files, pool)...)
	}
	run("", "dpkg-deb", "--root-owner-group", "--build", filepath.Join(mustAbs(t, "testdata"), "libbuildd-local-dev"),
		filepath.Join(pool, "libbuildd-local-dev_2.0-1_all.deb"))
	run(filepath.Join(srcIdx, "Sources"), "dpkg-scansources", "pool")
	run(filepath.Join(binIdx, "Packages"), "dpkg-scanpackages", "pool")
	release := fmt.Sprintf("Origin: buildd-test\nLabel: buildd-test\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: %s\nComponents: main\nSHA256:\n",
		dist, dist, time.Now().UTC().Format(time.RFC1123), arch)
	for _, idx := range []string{"main/source/Sources", "main/binary-" + arch + "/Packages"} {
		data, err := os.ReadFile(filepath.Join(dir, "dists", dist, idx))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		release += fmt.Sprintf(" %s %d %s\n", hex.EncodeToString(sum[:]), len(data), idx)
	}
	if err := os.WriteFile(filepath.Join(dir, "dists", dist, "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	run("", "chmod", "-R", "a+rX", dir)
	return dir
}

func mustAbs(t testing.TB, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// treeDigest is every entry under dir: path → mode and content hash.
func treeDigest(t testing.TB, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			v += " " + hex.EncodeToString(sum[:])
		}
		m[p] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// logPath is where a test build writes its log: $BUILDD_TEST_LOG_DIR/NAME.log
// when set (to keep real logs, e.g. as the Emacs tests' fixtures), else a
// temporary directory.
func logPath(t testing.TB, name string) string {
	dir := os.Getenv("BUILDD_TEST_LOG_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	return filepath.Join(dir, name+".log")
}

// TestLocalArchive builds with a dist's apt_sources naming a local archive
// made by the test: sources fetched from it with apt-get source, a
// build-dependency only it provides installed from it, unsatisfiable
// build-dependencies (attempted, install-deps, "Unmet build dependencies:"),
// and bad apt_sources lines (given back, fetch-src, naming the line). The
// archive is bound read-only and must come out of every build untouched,
// and mounted nowhere on the host.
func TestLocalArchive(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	// Each case must install: a layer from an earlier case would stand in
	// for the install (layer_test.go tests layers).
	cfg.LayerCacheSize = 0
	archive := localArchive(t, e.Dist, e.Arch, "tiny-ok", "tiny-local")
	before := treeDigest(t, archive)
	good := []string{
		"deb [trusted=yes] file:" + archive + " " + e.Dist + " main",
		"deb-src [ trusted=yes ] file://" + archive + "/ " + e.Dist + " main",
	}
	brokenDir := localArchive(t, e.Dist, e.Arch)
	if err := os.Remove(filepath.Join(brokenDir, "pool", "main", "libbuildd-local-dev_2.0-1_all.deb")); err != nil {
		t.Fatal(err)
	}
	broken := []string{"deb [trusted=yes] file:" + brokenDir + " " + e.Dist + " main"}
	for _, tc := range []struct {
		name    string
		sources []string
		pkgv    string // from the archives
		dsc     string // testdata package
		status  build.Status
		stage   string
		unmet   string
		inLog   []string
		inMsg   []string
	}{
		{name: "source-from-local-archive", sources: good, pkgv: "tiny-ok_1.0", status: build.Successful,
			inLog: []string{"Bound read-only for the apt steps: " + archive + "\n", "file:" + archive + " " + e.Dist + "/main Sources",
				"tiny-ok_1.0_" + e.Arch + ".changes:\n"}},
		{name: "build-dep-from-local-archive", sources: good, pkgv: "tiny-local_1.0", status: build.Successful,
			inLog: []string{"Setting up libbuildd-local-dev (2.0-1)", "libbuildd-local-dev 2.0-1 from the local archive\n",
				"tiny-local_1.0_" + e.Arch + ".changes:\n"}},
		{name: "dsc-build-dep-from-local-archive", sources: good, dsc: "tiny-local", status: build.Successful,
			inLog: []string{"Dir::Etc::SourceList=/etc/apt/sources.list.d/buildd-extra.list", "Setting up libbuildd-local-dev (2.0-1)",
				"libbuildd-local-dev 2.0-1 from the local archive\n", "tiny-local_1.0_" + e.Arch + ".changes:\n"}},
		{name: "dsc-build-deps-from-both", sources: good, dsc: "tiny-both", status: build.Successful,
			inLog: []string{"Setting up libbuildd-local-dev (2.0-1)", "Setting up hello ", "tiny-both_1.0_" + e.Arch + ".changes:\n"}},
		{name: "local-build-dep-too-old", sources: good, dsc: "tiny-toonew", status: build.Attempted, stage: build.StageDeps,
			unmet: "libbuildd-local-dev (>= 3)", inLog: []string{"\nUnmet build dependencies: libbuildd-local-dev (>= 3)\n"}},
		{name: "unmet-alternatives", sources: good, dsc: "tiny-alt", status: build.Attempted, stage: build.StageDeps,
			unmet: "libbuildd-missing-dev (>= 2) | libbuildd-other-dev, libbuildd-local-dev (>= 3)",
			inLog: []string{"\nUnmet build dependencies: libbuildd-missing-dev (>= 2) | libbuildd-other-dev, libbuildd-local-dev (>= 3)\n"}},
		{name: "local-archive-lacks-the-deb", sources: broken, dsc: "tiny-local", status: build.GivenBack, stage: build.StageDeps,
			inLog: []string{"Failed to fetch"}},
		{name: "unmet-build-deps", dsc: "tiny-missing", status: build.Attempted, stage: build.StageDeps,
			unmet: "libbuildd-missing-dev (>= 2)", inLog: []string{
				"The following packages have unmet dependencies:",
				"\nUnmet build dependencies: libbuildd-missing-dev (>= 2)\n",
				"Fail-Stage: install-deps\n"}},
		{name: "not-deb-line", sources: append(good[:1:1], "rpm file:"+archive+" "+e.Dist+" main"), pkgv: "tiny-ok_1.0",
			status: build.GivenBack, stage: build.StageFetch,
			inMsg: []string{"apt_sources[2]", `"rpm file:` + archive, `not a "deb" or "deb-src" line`}},
		{name: "missing-directory", sources: []string{"deb [trusted=yes] file:/nonexistent/buildd-archive " + e.Dist + " main"}, pkgv: "tiny-ok_1.0",
			status: build.GivenBack, stage: build.StageFetch,
			inMsg: []string{"apt_sources[1]", "/nonexistent/buildd-archive", "no such file or directory"}},
		{name: "would-hide-machine-files", sources: []string{"deb [trusted=yes] file:///etc " + e.Dist + " main"}, dsc: "tiny-ok",
			status: build.GivenBack, stage: build.StageFetch,
			inMsg: []string{"apt_sources[1]", "file:///etc", "not empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *cfg
			d := c.Dists[0]
			d.AptSources = tc.sources
			job := build.Job{Dist: &d, PkgVersion: tc.pkgv, LogPath: logPath(t, tc.name)}
			if tc.dsc != "" {
				job.DSC = sourcePackage(t, tc.dsc)
			}
			res, err := build.Run(context.Background(), &c, e.Store, job)
			if err != nil {
				t.Fatal(err)
			}
			noWorking(t, e)
			log, _ := os.ReadFile(res.LogPath)
			if res.Status != tc.status || res.FailStage != tc.stage || res.UnmetDeps != tc.unmet {
				t.Fatalf("got %s/%s unmet %q (%s), want %s/%s unmet %q\n%s", res.Status, res.FailStage, res.UnmetDeps, res.Message,
					tc.status, tc.stage, tc.unmet, log)
			}
			for _, s := range tc.inLog {
				if !strings.Contains(string(log), s) {
					t.Errorf("log lacks %q\n%s", s, log)
				}
			}
			for _, s := range tc.inMsg {
				if !strings.Contains(res.Message, s) {
					t.Errorf("message %q lacks %q", res.Message, s)
				}
			}
			kv := summary(t, res.LogPath)
			if kv["Status"] != string(tc.status) || kv["Fail-Stage"] != tc.stage {
				t.Errorf("summary %v", kv)
			}
		})
	}
	after := treeDigest(t, archive)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the local archive changed:\nbefore %v\nafter  %v", before, after)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), archive) {
		t.Errorf("the local archive is mounted on the host:\n%s", mi)
	}
}

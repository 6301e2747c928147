package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDepsFailure classifies apt-get build-dep outputs (testdata/apt/: the
// first four captured from real builds, the others in apt's wording).
func TestDepsFailure(t *testing.T) {
	for _, tc := range []struct {
		file          string
		unsatisfiable bool
		unmet         string
	}{
		{"not-installable.out", true, "libbuildd-missing-dev (>= 2)"},
		{"not-going-to-be-installed.out", true, "libbuildd-local-dev (>= 3)"},
		{"alternatives.out", true, "libbuildd-missing-dev (>= 2) | libbuildd-other-dev, libbuildd-local-dev (>= 3)"},
		{"file-not-found.out", false, ""},
		{"resolve-failure.out", false, ""},
		{"no-candidate.out", true, "libwidget-dev, libzork-dev"},
		{"transitive.out", true, "libgizmo1 (= 0.9-1), libc6 (>= 2.99)"},
		{"dpkg-error.out", false, ""},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".out"), func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", "apt", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			unsat, unmet := depsFailure(string(out))
			if unsat != tc.unsatisfiable || unmet != tc.unmet {
				t.Errorf("got %v %q, want %v %q", unsat, unmet, tc.unsatisfiable, tc.unmet)
			}
		})
	}
}

func TestAptSourceDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		line, dir, err string
	}{
		{line: "deb [trusted=yes] file:" + dir + " bookworm main", dir: dir},
		{line: "deb-src [ trusted=yes arch=amd64 ] file://" + dir + "/ bookworm main contrib", dir: dir},
		{line: "deb [trusted=yes] file:" + dir + " ./", dir: dir},
		{line: "deb http://mirror.example.org/debian bookworm main"},
		{line: "deb-src [signed-by=/k.gpg] https://mirror.example.org/debian bookworm main"},
		{line: "rpm file:" + dir + " bookworm main", err: `not a "deb" or "deb-src" line`},
		{line: "", err: `not a "deb" or "deb-src" line`},
		{line: "deb [trusted=yes file:" + dir + " bookworm main", err: "options not closed"},
		{line: "deb file:" + dir, err: "no URI and suite"},
		{line: "deb file:" + dir + " bookworm", err: "no component after suite bookworm"},
		{line: "deb file://host" + dir + " bookworm main", err: "file: URI with a host"},
		{line: "deb file:relative/dir bookworm main", err: "not an absolute"},
		{line: "deb file:" + dir + "/../x bookworm main", err: "not an absolute, clean"},
		{line: "deb file:/ bookworm main", err: "other than /"},
		{line: "deb file:" + dir + "/missing bookworm main", err: "no such file or directory"},
		{line: "deb file:" + file + " bookworm main", err: "is not a directory"},
		{line: "deb file:" + dir + " bookworm main # comment", err: "not a single source line"},
	} {
		got, err := aptSourceDir(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.dir {
			t.Errorf("%q: got %q %v, want %q", tc.line, got, err, tc.dir)
		}
	}
}

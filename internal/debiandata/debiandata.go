// Package debiandata finds, for tests and benchmarks, the real Debian
// indexes the project keeps beside the repository (../shared/data, holding
// debian-bookworm-main/), or where $BUILDD_SHARED_DATA says.
package debiandata

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the path of name (e.g. "debian-bookworm-main/Sources.xz")
// in the shared data, and skips t loudly when it is not there.
func Path(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("BUILDD_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join(ModuleRoot(t), "..", "shared", "data")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("SKIPPING: the real Debian data is missing (%v); set BUILDD_SHARED_DATA to the directory holding debian-bookworm-main/", err)
	}
	return path
}

// ModuleRoot is the repository's root, beside which the shared data lives:
// the nearest directory above the working directory (a test's package
// directory) holding go.mod. It fails t when there is none.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

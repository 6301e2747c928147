package control

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedData finds a file of the shared Debian data: $BUILDD_SHARED_DATA
// (the directory holding debian-bookworm-main/), else ../../../shared/data.
func sharedData(t testing.TB, name string) string {
	dir := os.Getenv("BUILDD_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "data")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("SKIPPING: the real Debian data is missing (%v); set BUILDD_SHARED_DATA to the directory holding debian-bookworm-main/", err)
	}
	return path
}

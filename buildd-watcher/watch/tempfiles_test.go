package watch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/hosttest"
)

// TestRunCleansTemp: a watcher run removes the temporary files that
// killed writers (real atomicfile.Create files, never committed) left in
// build/ and in every dist's upload queue, once they are an hour old, and
// logs each; a write in progress, a symlink with such a name, other names
// and other directories are left alone.
func TestRunCleansTemp(t *testing.T) {
	h, w := newWatcher(t, `
[[dist]]
dist_name = "bookworm"
built_architecture = "amd64"

[[dist]]
dist_name = "bookworm-security"
built_architecture = "amd64"
dupload_local_queue_dir = "@HOME@/upload-security"
`)
	security := h.Home.Path("upload-security")
	for _, d := range []string{h.Home.UploadDir("upload"), security} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	killed := func(target string, age time.Duration) string {
		a, err := atomicfile.Create(target, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		a.WriteString("half written")
		a.Close()
		hosttest.Age(t, a.Name(), age)
		return a.Name()
	}
	stale := []string{
		killed(h.Home.Path("build", "REDO"), 2*time.Hour),
		killed(h.Home.Path("build", "hello_1.0-1_amd64.deb"), 3*time.Hour),
		killed(h.Home.Path("upload", "hello_1.0-1_amd64.changes"), 2*time.Hour),
		killed(filepath.Join(security, "hello_1.0-1+deb12u1_amd64.changes"), 25*time.Hour),
	}
	kept := []string{
		killed(h.Home.Path("upload", "fresh_1_amd64.changes"), 10*time.Minute),
		killed(h.Home.Path("logs", "hello_1.0-1_amd64-20250101-0000.build"), 2*time.Hour),
		h.Write(t, "upload/.hello.changes.tmp123", "", 2*time.Hour),
		h.Write(t, "build/hello_1.0-1_amd64.changes", "", 2*time.Hour),
	}
	outside := h.Write(t, "secret", "not the watcher's", 2*time.Hour)
	link := h.Home.Path("build", ".x.buildd-tmp1")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, link, outside)

	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Errorf("errors: %v", r.Errors)
	}
	got := slices.Sorted(slices.Values(r.TempFiles))
	if want := slices.Sorted(slices.Values(stale)); !slices.Equal(got, want) {
		t.Errorf("removed %q, want %q", got, want)
	}
	log, _ := os.ReadFile(h.Cfg.DaemonLogFile)
	for _, p := range stale {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there", p)
		}
		if !strings.Contains(string(log), "buildd-watcher["+strconv.Itoa(os.Getpid())+"]: Removed stale temporary file "+p+"\n") {
			t.Errorf("removal of %s not logged:\n%s", p, log)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

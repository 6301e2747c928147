package machine_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
)

// TestDedupe: of the paths given, only regular files holding the same
// bytes in both trees come to share their data; a file that differs, one
// of another size, a symlink (even to the same bytes, or out of the tree),
// a FIFO and a path that climbs out of the tree are left as they are.
func TestDedupe(t *testing.T) {
	dir := machinetest.NewDir(t)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	same := bytes.Repeat([]byte("buildd layer data 0123456789abcdef\n"), 40000) // 1.4 MB
	big := bytes.Repeat([]byte{7}, 20<<20)                                      // more than one call
	other := append(append([]byte(nil), same[:len(same)-1]...), 'X')
	outside := filepath.Join(dir, "outside")
	files := []struct {
		path     string
		src, dst []byte
	}{
		{"usr/lib/same", same, same},
		{"usr/lib/big", big, big},
		{"usr/lib/differs", same, other},
		{"usr/lib/shorter", same, same[:len(same)/2]},
		{"usr/lib/only-src", same, nil},
	}
	for _, root := range []string{src, dst} {
		if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(root, "usr/lib/link-out")); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(root, "usr/lib/fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(outside, same, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		for root, data := range map[string][]byte{src: f.src, dst: f.dst} {
			if data != nil {
				if err := os.WriteFile(filepath.Join(root, f.path), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := os.Symlink("same", filepath.Join(dst, "usr/lib/link-same")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "usr/lib/link-same"), same, 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/usr/lib/same", "/usr/lib/big", "/usr/lib/differs", "/usr/lib/shorter", "/usr/lib/only-src",
		"/usr/lib/link-out", "/usr/lib/link-same", "/usr/lib/fifo", "/../outside", "/usr/lib/missing"}
	shared, err := machine.Dedupe(dst, src, paths)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(same) + len(big)); shared != want {
		t.Errorf("shared %d bytes, want %d (same and big)", shared, want)
	}
	for _, f := range files {
		if f.dst == nil {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dst, f.path)); err != nil || !bytes.Equal(data, f.dst) {
			t.Errorf("%s changed: %v", f.path, err)
		}
	}
	if _, err := machine.Dedupe(dst, filepath.Join(dir, "nowhere"), paths); err == nil {
		t.Error("no error for a missing source tree")
	}
}

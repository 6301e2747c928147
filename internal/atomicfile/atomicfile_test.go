package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFile: the target keeps its old contents until Commit, which gives it
// the new contents and mode; Abort leaves nothing behind; CopyFile copies.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("old"), 0o644)
	a, err := Create(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	a.WriteString("new")
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("target changed before Commit: %q", b)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	a.Abort()
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("after Commit: %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := Create(p, 0o644)
	b.WriteString("dropped")
	b.Abort()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("Abort left files: %v", ents)
	}
	if err := CopyFile(p, filepath.Join(dir, "g"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "g")); string(b) != "new" {
		t.Errorf("copy = %q", b)
	}
}

// TestCopyFileRefusesNonRegular: the source must be a regular file
// itself; a symlink (to a secret, or to a regular file), a directory, a
// FIFO (without blocking on it) and a device are refused with an error
// naming the source, and nothing is written at the destination.
func TestCopyFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "build")
	dst := filepath.Join(dir, "upload")
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := func(name string) string { return filepath.Join(src, name) }
	if err := os.WriteFile(in("hello_1.0_amd64.deb"), []byte("a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range [][2]string{{"/etc/passwd", "passwd.deb"}, {in("hello_1.0_amd64.deb"), "same.deb"}, {"/etc", "etc.deb"}} {
		if err := os.Symlink(link[0], in(link[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(in("fifo.deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(in("dir.deb"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		src, want string // want "": copied
	}{
		{in("hello_1.0_amd64.deb"), ""},
		{in("passwd.deb"), "is a symbolic link, not a regular file"},
		{in("same.deb"), "is a symbolic link, not a regular file"},
		{in("etc.deb"), "is a symbolic link, not a regular file"},
		{in("fifo.deb"), "is a FIFO, not a regular file"},
		{in("dir.deb"), "is a directory, not a regular file"},
		{"/dev/null", "is a character device, not a regular file"},
		{in("missing.deb"), "no such file or directory"},
	} {
		t.Run(filepath.Base(tt.src), func(t *testing.T) {
			out := filepath.Join(dst, filepath.Base(tt.src))
			done := make(chan error, 1)
			go func() { done <- CopyFile(tt.src, out, 0o644) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("CopyFile blocked")
			}
			if tt.want == "" {
				if b, _ := os.ReadFile(out); err != nil || string(b) != "a deb" {
					t.Errorf("copy: %v, %q", err, b)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "copy "+tt.src+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want \"copy %s: ...%s\"", err, tt.src, tt.want)
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("%s written: %v", out, err)
			}
		})
	}
	ents, _ := os.ReadDir(dst)
	if len(ents) != 1 {
		t.Errorf("upload holds %d files, want the one copy: %v", len(ents), ents)
	}
}

// TestCleanTemp: only File's temporary files (the name a real
// Create gives) that are regular files older than the age are
// removed; younger ones, symlinks, directories and other names stay.
func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	killed, err := Create(filepath.Join(dir, "hello_1.0_amd64.changes"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	killed.WriteString("half a .changes")
	killed.Close() // never committed: as if the writer was killed
	writing, err := Create(filepath.Join(dir, "hello_1.0_amd64.deb"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer writing.Abort()
	outside := filepath.Join(t.TempDir(), "target")
	os.WriteFile(outside, []byte("not ours"), 0o644)

	files := map[string]time.Time{
		".REDO.buildd-tmp123":      old,
		"hello_1.0_amd64.changes":  old,
		".REDO.tmp123":             old, // not our pattern
		"REDO.buildd-tmp123":       old, // not hidden
		".REDO.buildd-tmp12x":      old,
		".REDO.buildd-tmp":         old,
		".sent-mails.buildd-tmp77": time.Now().Add(-50 * time.Minute),
	}
	for name, mtime := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	os.Chtimes(killed.Name(), old, old)
	os.Chtimes(outside, old, old)
	if err := os.Symlink(outside, filepath.Join(dir, ".link.buildd-tmp1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, ".dir.buildd-tmp2"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, ".dir.buildd-tmp2"), old, old)

	removed, err := CleanTemp(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, ".REDO.buildd-tmp123"), killed.Name()}
	slices.Sort(want)
	slices.Sort(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, p := range append(removed, outside, writing.Name(), filepath.Join(dir, ".link.buildd-tmp1"), filepath.Join(dir, ".dir.buildd-tmp2")) {
		_, err := os.Lstat(p)
		if gone := os.IsNotExist(err); gone != slices.Contains(removed, p) {
			t.Errorf("%s: gone %v", p, gone)
		}
	}
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil && !slices.Contains(removed, filepath.Join(dir, name)) {
			t.Errorf("%s removed", name)
		}
	}
	if removed, err := CleanTemp(filepath.Join(dir, "missing"), time.Hour); removed != nil || err != nil {
		t.Errorf("missing directory: %v, %v", removed, err)
	}
}

package home

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestUploadQueue follows an upload through its queue: added from build/,
// pending, marked, unmarked, removed with both its markers.
func TestUploadQueue(t *testing.T) {
	h := New(t.TempDir())
	os.MkdirAll(h.BuildDir(), 0o755)
	for _, f := range []string{"hello_1_amd64.deb", "hello_1.dsc"} {
		os.WriteFile(filepath.Join(h.BuildDir(), f), []byte(f), 0o644)
	}
	q := h.UploadQueue("upload")
	if q.Dir() != h.Path("upload") || h.UploadQueue("/srv/up").Dir() != "/srv/up" {
		t.Fatalf("Dir %q, %q", q.Dir(), h.UploadQueue("/srv/up").Dir())
	}
	if _, err := q.Pending(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Pending of a missing queue: %v", err)
	}
	if _, err := os.Stat(q.Dir() + ".lock"); err == nil {
		t.Error("Pending of a missing queue took its lock")
	}
	const changes = "hello_1_amd64.changes"
	files := []string{"hello_1_amd64.deb", "hello_1.dsc"}
	if err := q.Add(h.BuildDir(), files, changes, []byte("signed")); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(q.Dir()); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("queue directory: %v %v", st.Mode(), err)
	}
	if !q.Has(changes) || !q.Holds(changes, []byte("signed")) || q.Holds(changes, []byte("other")) {
		t.Error("Has/Holds after Add")
	}
	if b, err := q.ReadChanges(changes); err != nil || string(b) != "signed" {
		t.Errorf("ReadChanges: %q %v", b, err)
	}
	if b, _ := os.ReadFile(q.Path("hello_1.dsc")); string(b) != "hello_1.dsc" {
		t.Errorf("copied file: %q", b)
	}
	if p, err := q.Pending(); err != nil || !slices.Equal(p, []string{changes}) || q.Uploaded(changes) {
		t.Fatalf("Pending after Add: %q %v", p, err)
	}
	if err := q.Mark(changes, "log\n"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(q.Path("hello_1_amd64.upload")); string(b) != "log\n" || !q.Uploaded(changes) {
		t.Errorf("marker %q", b)
	}
	if p, err := q.Pending(); err != nil || len(p) != 0 {
		t.Errorf("Pending after Mark: %q %v", p, err)
	}
	if err := q.Unmark(changes); err != nil || q.Uploaded(changes) {
		t.Errorf("Unmark: %v", err)
	}
	q.Mark(changes, "log\n")
	if err := q.SetUntold(changes, []string{"bookworm"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(q.Path("other_2_amd64.changes"), nil, 0o644)
	failed, err := q.Remove(changes, append(files, "gone_1_all.deb"))
	if err != nil || len(failed) != 0 {
		t.Fatalf("Remove: %v %v", failed, err)
	}
	ents, _ := os.ReadDir(q.Dir())
	if len(ents) != 1 || ents[0].Name() != "other_2_amd64.changes" {
		t.Errorf("left after Remove: %v", ents)
	}
}

func TestUploadQueueRefusesNames(t *testing.T) {
	tests := []struct {
		name    string
		changes string
		files   []string
	}{
		{"not a .changes", "hello_1_amd64.dsc", nil},
		{"changes in a subdirectory", "sub/hello_1_amd64.changes", nil},
		{"file out of the queue", "hello_1_amd64.changes", []string{"../hello_1_amd64.deb"}},
		{"dot dot", "hello_1_amd64.changes", []string{".."}},
		{"empty file name", "hello_1_amd64.changes", []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			q := h.UploadQueue("upload")
			if err := q.Add(h.BuildDir(), tt.files, tt.changes, nil); err == nil {
				t.Error("Add took it")
			}
			if _, err := q.Remove(tt.changes, tt.files); err == nil {
				t.Error("Remove took it")
			}
			if _, err := os.Stat(q.Dir()); err == nil {
				t.Error("the queue was made")
			}
		})
	}
}

// TestUploadQueueLists: Pending lists the uploads without their .upload
// marker, Untold those with an .untold marker; both only regular, not
// hidden files, sorted.
func TestUploadQueueLists(t *testing.T) {
	pending := func(q *UploadQueue) ([]string, error) { return q.Pending() }
	untold := func(q *UploadQueue) ([]string, error) { return q.Untold() }
	tests := []struct {
		name  string
		list  func(q *UploadQueue) ([]string, error)
		setup func(q *UploadQueue)
		want  []string
	}{
		{"not uploaded", pending, func(q *UploadQueue) { os.WriteFile(q.Path("b_1_amd64.changes"), nil, 0o644) }, []string{"b_1_amd64.changes"}},
		{"uploaded", pending, func(q *UploadQueue) {
			os.WriteFile(q.Path("b_1_amd64.changes"), nil, 0o644)
			os.WriteFile(q.Path("b_1_amd64.upload"), nil, 0o644)
		}, nil},
		{"hidden", pending, func(q *UploadQueue) { os.WriteFile(q.Path(".b_1_amd64.changes"), nil, 0o644) }, nil},
		{"symlink", pending, func(q *UploadQueue) { os.Symlink("/etc/passwd", q.Path("b_1_amd64.changes")) }, nil},
		{"directory", pending, func(q *UploadQueue) { os.Mkdir(q.Path("b_1_amd64.changes"), 0o755) }, nil},
		{"not a .changes", pending, func(q *UploadQueue) { os.WriteFile(q.Path("b_1_amd64.deb"), nil, 0o644) }, nil},
		{"sorted", pending, func(q *UploadQueue) {
			os.WriteFile(q.Path("c_1_amd64.changes"), nil, 0o644)
			os.WriteFile(q.Path("a_1_amd64.changes"), nil, 0o644)
		}, []string{"a_1_amd64.changes", "c_1_amd64.changes"}},
		{"untold", untold, func(q *UploadQueue) { os.WriteFile(q.Path("b_1_amd64.untold"), []byte("sid\n"), 0o644) }, []string{"b_1_amd64.changes"}},
		{"untold hidden", untold, func(q *UploadQueue) { os.WriteFile(q.Path(".b_1_amd64.untold"), []byte("sid\n"), 0o644) }, nil},
		{"untold symlink", untold, func(q *UploadQueue) { os.Symlink("/etc/passwd", q.Path("b_1_amd64.untold")) }, nil},
		{"untold directory", untold, func(q *UploadQueue) { os.Mkdir(q.Path("b_1_amd64.untold"), 0o755) }, nil},
		{"untold, other markers", untold, func(q *UploadQueue) {
			os.WriteFile(q.Path("b_1_amd64.changes"), nil, 0o644)
			os.WriteFile(q.Path("b_1_amd64.upload"), nil, 0o644)
		}, nil},
		{"untold sorted", untold, func(q *UploadQueue) {
			os.WriteFile(q.Path("c_1_amd64.untold"), []byte("sid\n"), 0o644)
			os.WriteFile(q.Path("a_1_amd64.untold"), []byte("sid\n"), 0o644)
		}, []string{"a_1_amd64.changes", "c_1_amd64.changes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(t.TempDir()).UploadQueue("upload")
			os.MkdirAll(q.Dir(), 0o755)
			tt.setup(q)
			if got, err := tt.list(q); err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestAdoptToolLog(t *testing.T) {
	const changes = "hello_1_amd64.changes"
	tests := []struct {
		name     string
		files    []string
		target   string
		wantMark string // the marker's contents, "" for none
	}{
		{"the target's log", []string{"hello_1_amd64.ftp.upload", "hello_1_amd64.local.upload"}, "local", "hello_1_amd64.local.upload"},
		{"any host for the default", []string{"hello_1_amd64.local.upload"}, "", "hello_1_amd64.local.upload"},
		{"another target's log", []string{"hello_1_amd64.ftp.upload"}, "local", ""},
		{"another upload's log", []string{"hello_2_amd64.local.upload"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(t.TempDir()).UploadQueue("upload")
			os.MkdirAll(q.Dir(), 0o755)
			for _, f := range tt.files {
				os.WriteFile(q.Path(f), []byte(f), 0o644)
			}
			if err := q.AdoptToolLog(changes, tt.target); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(q.Path(UploadMarker(changes)))
			if string(b) != tt.wantMark {
				t.Errorf("marker %q, want %q", b, tt.wantMark)
			}
		})
	}
}

// TestUntoldMarker follows an upload's "queue not yet told" marker: set,
// read, rewritten with the dists left, listed, removed by an empty set and
// by RemoveUntold; a name that cannot be a line of it is refused.
func TestUntoldMarker(t *testing.T) {
	q := New(t.TempDir()).UploadQueue("upload")
	if _, err := q.Untold(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Untold of a missing queue: %v", err)
	}
	os.MkdirAll(q.Dir(), 0o755)
	const changes = "hello_1_amd64.changes"
	if UntoldMarker(changes) != "hello_1_amd64.untold" {
		t.Errorf("UntoldMarker = %q", UntoldMarker(changes))
	}
	if _, err := q.ReadUntold(changes); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadUntold of a missing marker: %v", err)
	}
	if err := q.SetUntold(changes, []string{"bookworm", "bookworm-security"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(q.Path("hello_1_amd64.untold")); string(b) != "bookworm\nbookworm-security\n" {
		t.Errorf("marker %q", b)
	}
	if err := q.SetUntold(changes, []string{"bookworm-security"}); err != nil {
		t.Fatal(err)
	}
	if d, err := q.ReadUntold(changes); err != nil || !slices.Equal(d, []string{"bookworm-security"}) {
		t.Errorf("ReadUntold = %q, %v", d, err)
	}
	if l, err := q.Untold(); err != nil || !slices.Equal(l, []string{changes}) {
		t.Errorf("Untold = %q, %v", l, err)
	}
	if err := q.SetUntold(changes, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(q.Path("hello_1_amd64.untold")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker left by SetUntold of no dist: %v", err)
	}
	q.SetUntold(changes, []string{"bookworm"})
	if err := q.RemoveUntold(changes); err != nil {
		t.Fatal(err)
	}
	if err := q.RemoveUntold(changes); err != nil {
		t.Errorf("RemoveUntold of a removed marker: %v", err)
	}
	if l, err := q.Untold(); err != nil || len(l) != 0 {
		t.Errorf("Untold after RemoveUntold = %q, %v", l, err)
	}
	for _, bad := range []string{"", "book worm", "bookworm\nsid", "\xff"} {
		if err := q.SetUntold(changes, []string{"sid", bad}); err == nil || !strings.Contains(err.Error(), q.Path("hello_1_amd64.untold")) {
			t.Errorf("SetUntold of %q: %v", bad, err)
		}
	}
	if ents, _ := os.ReadDir(q.Dir()); len(ents) != 0 {
		t.Errorf("left in the queue: %v", ents)
	}
}

// TestReadUntoldDamaged reads markers no SetUntold writes: each is an
// error naming the marker, which is left as it was.
func TestReadUntoldDamaged(t *testing.T) {
	const changes = "hello_1_amd64.changes"
	tests := []struct {
		name  string
		setup func(path string)
	}{
		{"empty", func(p string) { os.WriteFile(p, nil, 0o644) }},
		{"truncated", func(p string) { os.WriteFile(p, []byte("bookworm\nsi"), 0o644) }},
		{"empty line", func(p string) { os.WriteFile(p, []byte("bookworm\n\nsid\n"), 0o644) }},
		{"blank in a name", func(p string) { os.WriteFile(p, []byte("bookworm sid\n"), 0o644) }},
		{"carriage return", func(p string) { os.WriteFile(p, []byte("bookworm\r\n"), 0o644) }},
		{"not UTF-8", func(p string) { os.WriteFile(p, []byte("\x00\xff\xfe\n"), 0o644) }},
		{"directory", func(p string) { os.Mkdir(p, 0o755) }},
		{"symlink", func(p string) { os.Symlink("/etc/hostname", p) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(t.TempDir()).UploadQueue("upload")
			os.MkdirAll(q.Dir(), 0o755)
			path := q.Path(UntoldMarker(changes))
			tt.setup(path)
			before, _ := os.Lstat(path)
			beforeData, _ := os.ReadFile(path)
			d, err := q.ReadUntold(changes)
			if err == nil || !strings.Contains(err.Error(), path) || errors.Is(err, os.ErrNotExist) {
				t.Fatalf("ReadUntold = %q, %v; want an error naming %s", d, err, path)
			}
			after, _ := os.Lstat(path)
			afterData, _ := os.ReadFile(path)
			if after == nil || after.Mode() != before.Mode() || after.ModTime() != before.ModTime() || string(afterData) != string(beforeData) {
				t.Errorf("marker changed: %v -> %v", before, after)
			}
			if ents, _ := os.ReadDir(q.Dir()); len(ents) != 1 {
				t.Errorf("queue holds %v", ents)
			}
		})
	}
}

package home

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/flock"
)

func TestParseRedoLine(t *testing.T) {
	tests := []struct {
		line string
		want RedoEntry
		bad  bool
	}{
		{line: "hello_1.0-1 bookworm", want: RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm"}},
		{line: "foo_2.0 sid 3 Rebuild for libbar2", want: RedoEntry{"foo_2.0", "sid", 3, "Rebuild for libbar2"}},
		{line: "hello bookworm", bad: true},
		{line: "hello_1.0", bad: true},
		{line: "_1.0 sid", bad: true},
		{line: "foo_1 sid x text", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseRedoLine(tt.line)
		if (err != nil) != tt.bad {
			t.Errorf("ParseRedoLine(%q) error = %v, want bad=%v", tt.line, err, tt.bad)
			continue
		}
		if !tt.bad && got != tt.want {
			t.Errorf("ParseRedoLine(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
		if !tt.bad && got.String() != tt.line {
			t.Errorf("String() = %q, want %q", got.String(), tt.line)
		}
	}
}

func TestREDOFile(t *testing.T) {
	h := New(t.TempDir())
	b, _ := os.ReadFile("testdata/REDO")
	os.MkdirAll(h.BuildDir(), 0o755)
	os.WriteFile(h.REDO().Path(), b, 0o644)
	es, bad, err := h.REDO().Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || len(bad) != 3 {
		t.Fatalf("Read: %d entries, %d bad; want 2, 3: %v", len(es), len(bad), bad)
	}
	if got := bad[0].Error(); got != `REDO:2: bad line "bad line here"` {
		t.Errorf("bad line error = %q", got)
	}
	if err := h.REDO().Add(RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm"}, RedoEntry{PkgVersion: "new_1", Dist: "sid"}); err != nil {
		t.Fatal(err)
	}
	if err := h.REDO().Remove(func(e RedoEntry) bool { return e.PkgVersion == "foo_2.0" }); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(h.REDO().Path())
	if want := "hello_1.0-1 bookworm\nbad line here\n_1.0 sid\nbar_1 sid x y\nnew_1 sid\n"; string(got) != want {
		t.Errorf("REDO = %q, want %q", got, want)
	}
}

// TestREDOEditKeepsBadLines: a rewrite keeps the lines it cannot parse,
// verbatim, after the entry they followed (or the nearest earlier kept
// one), and reports them with their line numbers.
func TestREDOEditKeepsBadLines(t *testing.T) {
	fixture, err := os.ReadFile("testdata/REDO")
	if err != nil {
		t.Fatal(err)
	}
	hello := RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm"}
	foo := RedoEntry{"foo_2.0", "bookworm", 1, "Rebuild against libbar2"}
	added := RedoEntry{PkgVersion: "new_1", Dist: "sid"}
	for _, tt := range []struct {
		name string
		f    func([]RedoEntry) []RedoEntry
		want string
	}{
		{"unchanged", func(es []RedoEntry) []RedoEntry { return es },
			"hello_1.0-1 bookworm\nbad line here\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\n"},
		{"add", func(es []RedoEntry) []RedoEntry { return append(es, added) },
			"hello_1.0-1 bookworm\nbad line here\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\nnew_1 sid\n"},
		{"remove the entry before bad lines", func([]RedoEntry) []RedoEntry { return []RedoEntry{hello} },
			"hello_1.0-1 bookworm\nbad line here\n_1.0 sid\nbar_1 sid x y\n"},
		{"remove the first entry", func([]RedoEntry) []RedoEntry { return []RedoEntry{foo, added} },
			"bad line here\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\nnew_1 sid\n"},
		{"remove all", func([]RedoEntry) []RedoEntry { return nil },
			"bad line here\n_1.0 sid\nbar_1 sid x y\n"},
		{"reorder", func([]RedoEntry) []RedoEntry { return []RedoEntry{foo, hello} },
			"foo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\nhello_1.0-1 bookworm\nbad line here\n"},
		{"duplicate", func(es []RedoEntry) []RedoEntry { return []RedoEntry{hello, hello, foo} },
			"hello_1.0-1 bookworm\nbad line here\nhello_1.0-1 bookworm\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			os.MkdirAll(h.BuildDir(), 0o755)
			if err := os.WriteFile(h.REDO().Path(), fixture, 0o644); err != nil {
				t.Fatal(err)
			}
			bad, err := h.REDO().Edit(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bad {
				var le *LineError
				if !errors.As(b, &le) {
					t.Errorf("%v is not a *LineError", b)
				}
				got = append(got, b.Error())
			}
			want := []string{`REDO:2: bad line "bad line here"`, `REDO:5: bad line "_1.0 sid"`, `REDO:6: bad binNMU number in line "bar_1 sid x y"`}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("reported %q, want %q", got, want)
			}
			if b, _ := os.ReadFile(h.REDO().Path()); string(b) != tt.want {
				t.Errorf("REDO =\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "REDO")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p); !errors.Is(err, flock.ErrLocked) {
		t.Fatalf("second TryLock = %v, want ErrLocked", err)
	}
	if _, err := LockFile(p, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "held by") {
		t.Errorf("LockFile with timeout = %v, want a 'held by' error", err)
	}
	l.Unlock()
	// The waiter LockFile gave up on still sleeps in flock (it cannot be
	// called back): the release hands it the lock, which it lets go at
	// once (internal/flock's take). Until then TryLock finds it held.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l2, err := TryLock(p)
		if err == nil {
			l2.Unlock()
			return
		}
		if !errors.Is(err, flock.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("TryLock after Unlock: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGivenBackAndOutdated(t *testing.T) {
	h := New(t.TempDir())
	now := time.Unix(1_800_000_000, 0)
	gb := h.GivenBack()
	gb.Add("old_1", now.Add(-9*time.Hour))
	gb.Add("new_1", now.Add(-time.Hour))
	recent, err := gb.Recent(now, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := recent["new_1"]; !ok || len(recent) != 1 {
		t.Errorf("Recent = %v, want only new_1", recent)
	}
	o := h.Outdated()
	o.Add("a_1", "a_2", "sid", now.Add(-22*24*time.Hour))
	o.Add("b_1", "b_2", "sid", now)
	if _, ok, _ := o.IsOutdated("a_1", "sid"); ok {
		t.Error("entry older than 21 days kept")
	}
	if nv, ok, _ := o.IsOutdated("b_1", "sid"); !ok || nv != "b_2" {
		t.Errorf("IsOutdated(b_1) = %q, %v", nv, ok)
	}
}

func TestPID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "buildd.pid")
	if pid, err := ReadPID(p); pid != 0 || err != nil {
		t.Errorf("missing pid file: %d, %v", pid, err)
	}
	WritePID(p, 42)
	if b, _ := os.ReadFile(p); string(b) != "   42\n" {
		t.Errorf("pid file = %q", b)
	}
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := ReadPID(p); err == nil || !strings.Contains(err.Error(), `"garbage"`) {
		t.Errorf("corrupt pid file error = %v", err)
	}
	if !Alive(os.Getpid()) || Alive(0) {
		t.Error("Alive wrong")
	}
}

func TestSent(t *testing.T) {
	h := New(t.TempDir())
	at := time.Unix(1_800_000_000, 0)
	s := h.Sent()
	if err := s.Add(SentMail{MessageID: "<abc@host>", Time: at, Dist: "bookworm", PkgVersion: "hello_1.0-1", Kind: "log"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(SentMail{MessageID: "bad id", Time: at}); err == nil {
		t.Error("record with a space accepted")
	}
	m, ok, err := s.Lookup("abc@host")
	if err != nil || !ok || m.PkgVersion != "hello_1.0-1" || !m.Time.Equal(at) {
		t.Errorf("Lookup = %+v, %v, %v", m, ok, err)
	}
	if _, ok, _ := s.Latest("bookworm", "hello_1.0-1", "log"); !ok {
		t.Error("Latest did not find the log mail")
	}
}

// TestSkip: a "PKG_VERSION DIST" line names that build in its dist only,
// a classic "PKG_VERSION" line names it in every dist; Take consumes what
// it matches and keeps every other line, junk included, as it was.
func TestSkip(t *testing.T) {
	fixture, err := os.ReadFile("testdata/SKIP")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		pkgv, dist string
		found      bool
		gone       []string // fixture lines Take removes
	}{
		{name: "own dist", pkgv: "hello_1.0-1", dist: "bookworm", found: true, gone: []string{"hello_1.0-1 bookworm"}},
		{name: "other dist's line", pkgv: "barsep_1.0-1", dist: "trixie"},
		{name: "epoch differs", pkgv: "barsep_1:1.0-1", dist: "bookworm"},
		{name: "classic line, any dist", pkgv: "classic_2.0-1", dist: "trixie", found: true, gone: []string{"classic_2.0-1"}},
		{name: "blanks around", pkgv: "spaced_1.0-1", dist: "trixie", found: true, gone: []string{"  spaced_1.0-1   trixie  "}},
		{name: "junk names nothing", pkgv: "junk", dist: "line"},
		{name: "not listed", pkgv: "nosuch_1", dist: "bookworm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			os.MkdirAll(h.BuildDir(), 0o755)
			path := h.Path("build", "SKIP")
			if err := os.WriteFile(path, fixture, 0o644); err != nil {
				t.Fatal(err)
			}
			found, err := h.Skip().Take(tt.pkgv, tt.dist)
			if err != nil || found != tt.found {
				t.Fatalf("Take(%q, %q) = %v, %v; want %v", tt.pkgv, tt.dist, found, err, tt.found)
			}
			var want []string
			for _, l := range strings.SplitAfter(string(fixture), "\n") {
				if l != "" && !slices.Contains(tt.gone, strings.TrimSuffix(l, "\n")) {
					want = append(want, l)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != strings.Join(want, "") {
				t.Errorf("SKIP after Take:\n%s\nwant:\n%s", b, strings.Join(want, ""))
			}
		})
	}
}

func TestSkipAdd(t *testing.T) {
	h := New(t.TempDir())
	s := h.Skip()
	if found, err := s.Take("a_1", "bookworm"); found || err != nil {
		t.Fatalf("Take on a missing SKIP = %v, %v", found, err)
	}
	if _, err := os.Stat(h.Path("build", "SKIP")); !os.IsNotExist(err) {
		t.Error("Take created SKIP")
	}
	for _, a := range [][2]string{{"a_1", "bookworm"}, {"a_1", "trixie"}, {"b_2", ""}, {"a_1", "bookworm"}, {"b_2", ""}} {
		if err := s.Add(a[0], a[1]); err != nil {
			t.Fatalf("Add(%q, %q): %v", a[0], a[1], err)
		}
	}
	for _, bad := range [][2]string{{"", "bookworm"}, {"a_1 x", "bookworm"}, {"a_1", "book worm"}, {"a_1", "sid\n"}} {
		if err := s.Add(bad[0], bad[1]); err == nil || !strings.Contains(err.Error(), "SKIP") {
			t.Errorf("Add(%q, %q) = %v, want an error naming the file", bad[0], bad[1], err)
		}
	}
	if b, _ := os.ReadFile(h.Path("build", "SKIP")); string(b) != "a_1 bookworm\na_1 trixie\nb_2\n" {
		t.Errorf("SKIP = %q, want each line once", b)
	}
	if found, _ := s.Take("a_1", "bookworm"); !found {
		t.Error("a_1 bookworm not found")
	}
	if found, _ := s.Take("a_1", "bookworm"); found {
		t.Error("a_1 bookworm found twice: Take should consume it")
	}
	if found, _ := s.Take("a_1", "trixie"); !found {
		t.Error("a_1 trixie consumed with a_1 bookworm")
	}
}

package home

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFinished: a record is put, replaced in place by the next Put of the
// same package version and dist, and removed; another dist's record of
// the same version is its own; a line that does not parse is kept through
// every rewrite and comes back as a LineError naming the file and line.
func TestFinished(t *testing.T) {
	h := New(t.TempDir())
	f := h.Finished()
	if err := os.MkdirAll(h.BuildDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Path(), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ended := time.Unix(1796535639, 0)
	a := Finished{RedoEntry: RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm", BinNMU: 2, Changelog: "Rebuild against libfoo2."},
		Status: "successful", LogPath: "/home/buildd/logs/hello.build", Ended: ended}
	b := a
	b.Dist = "trixie"
	marked := a
	marked.Reported, marked.Spooled = true, true
	steps := []struct {
		name string
		do   func() error
		want []Finished
	}{
		{"put", func() error { return f.Put(a) }, []Finished{a}},
		{"another dist", func() error { return f.Put(b) }, []Finished{a, b}},
		{"marked", func() error { return f.Put(marked) }, []Finished{marked, b}},
		{"removed", func() error { return f.Remove(a.RedoEntry) }, []Finished{b}},
		{"removed again", func() error { return f.Remove(a.RedoEntry) }, []Finished{b}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, bad, err := f.Read()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(got) != len(s.want) {
			t.Fatalf("%s: read %+v, want %+v", s.name, got, s.want)
		}
		for i := range got {
			if !got[i].Ended.Equal(s.want[i].Ended) {
				t.Errorf("%s: record %d ended %v, want %v", s.name, i, got[i].Ended, s.want[i].Ended)
			}
			got[i].Ended = s.want[i].Ended
			if got[i] != s.want[i] {
				t.Errorf("%s: record %d is %+v, want %+v", s.name, i, got[i], s.want[i])
			}
		}
		var le *LineError
		if len(bad) != 1 || !errors.As(bad[0], &le) || !strings.HasPrefix(bad[0].Error(), "FINISHED:1: bad line") {
			t.Errorf("%s: bad lines %v, want the first line kept and named", s.name, bad)
		}
	}
}

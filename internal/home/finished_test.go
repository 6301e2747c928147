package home

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFinished: a record is put, replaced in place by the next Put of the
// same package version, dist and arch, and removed; another dist's or
// arch's record of the same version is its own; a line that does not parse is kept through
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
	a := Finished{RedoEntry: RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm", Arch: "amd64", BinNMU: 2, Changelog: "Rebuild against libfoo2."},
		Status: "successful", LogPath: "/home/buildd/logs/hello.build", Ended: ended}
	b := a
	b.Dist = "trixie"
	arm := a
	arm.Arch = "arm64"
	marked := a
	marked.Reported, marked.Spooled = true, true
	steps := []struct {
		name string
		do   func() error
		want []Finished
	}{
		{"put", func() error { return f.Put(a) }, []Finished{a}},
		{"another dist", func() error { return f.Put(b) }, []Finished{a, b}},
		{"another arch", func() error { return f.Put(arm) }, []Finished{a, b, arm}},
		{"marked", func() error { return f.Put(marked) }, []Finished{marked, b, arm}},
		{"removed", func() error { return f.Remove(a.RedoEntry) }, []Finished{b, arm}},
		{"removed again", func() error { return f.Remove(a.RedoEntry) }, []Finished{b, arm}},
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

// TestFinishedFillArch: records written before records carried the
// architecture (no "arch") are read with none, and FillArch gives each
// the architecture of its dist when the host builds the dist for one; a
// dist built for two leaves its record as it was, and so are bad lines.
func TestFinishedFillArch(t *testing.T) {
	h := New(t.TempDir())
	f := h.Finished()
	os.MkdirAll(h.BuildDir(), 0o755)
	fixture, err := os.ReadFile("testdata/FINISHED")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f.Path(), fixture, 0o644)
	rs, bad, err := f.Read()
	if err != nil || len(rs) != 3 || len(bad) != 1 || rs[0].Arch != "" || rs[1].Arch != "" || rs[2].Arch != "arm64" {
		t.Fatalf("Read = %+v, %v, %v", rs, bad, err)
	}
	c := twoArches(t)
	if err := f.FillArch(func(dist string) string {
		d, err := c.Resolve(dist, "")
		if err != nil {
			return ""
		}
		return d.BuiltArchitecture
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(must(os.ReadFile(f.Path()))), "\n")
	old := strings.Split(string(fixture), "\n")
	if want := `{"pkgv":"old_1.0","dist":"trixie","arch":"amd64","status":"successful","log":"/l/old.build","ended":"2026-11-21T07:30:12Z"}`; lines[0] != want {
		t.Errorf("trixie's record is %s, want %s", lines[0], want)
	}
	for i := 1; i < len(old); i++ {
		if lines[i] != old[i] {
			t.Errorf("line %d changed: %s, was %s", i+1, lines[i], old[i])
		}
	}
}

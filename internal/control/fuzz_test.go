package control

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReader checks that any input gives paragraphs or a *ParseError, never
// a panic, and that Keep stores the same values as reading everything.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("testdata/bad/*")
	files = append(files, "testdata/Sources.good", "testdata/hello_2.10-3_amd64.changes")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, in string) {
		all, err := readAll(NewReader(strings.NewReader(in), "fuzz"))
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v is not a *ParseError", err)
		}
		kept, err2 := readAll(NewReader(strings.NewReader(in), "fuzz").Keep("Package", "version"))
		if (err == nil) != (err2 == nil) || len(kept) != len(all) {
			t.Fatalf("Keep changes the outcome: %d/%v vs %d/%v", len(all), err, len(kept), err2)
		}
		for i := range all {
			for _, n := range []string{"package", "Version"} {
				if all[i].Get(n) != kept[i].Get(n) {
					t.Errorf("paragraph %d: %s = %q, kept %q", i, n, all[i].Get(n), kept[i].Get(n))
				}
			}
		}
	})
}

// FuzzParseChanges checks that ParseChanges never panics and never accepts a
// file name that is not a plain base name.
func FuzzParseChanges(f *testing.F) {
	for _, p := range []string{"hello_2.10-3_amd64.changes", "hello_2.10-3_amd64.signed.changes", "hello_2.10-3_amd64.dash-escaped.changes"} {
		data, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseChanges("fuzz.changes", data)
		if err != nil {
			return
		}
		for _, file := range c.Files {
			if filepath.Base(file.Name) != file.Name || file.Name == "." || file.Name == ".." {
				t.Errorf("accepted file name %q", file.Name)
			}
		}
	})
}

// FuzzParseRelations checks that ParseRelations never panics and that its
// canonical output parses to the same relations.
func FuzzParseRelations(f *testing.F) {
	for _, s := range []string{"a (>= 1), b | c [amd64] <!nocheck>", "python3:any (>> 3.9) [!hurd-any] <stage1 !cross> <nodoc>", "a, , b |"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rels, err := ParseRelations(s)
		if err != nil {
			return
		}
		var ands []string
		for _, alts := range rels {
			var ors []string
			for _, r := range alts {
				ors = append(ors, r.String())
			}
			ands = append(ands, strings.Join(ors, " | "))
		}
		again, err := ParseRelations(strings.Join(ands, ", "))
		if err != nil || len(again) != len(rels) {
			t.Errorf("%q: canonical form %q does not parse back: %v", s, strings.Join(ands, ", "), err)
		}
	})
}

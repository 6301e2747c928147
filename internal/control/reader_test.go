package control

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readAll reads every paragraph of r.
func readAll(r *Reader) ([]*Paragraph, error) {
	var ps []*Paragraph
	for {
		p, err := r.Next()
		if err == io.EOF {
			return ps, nil
		}
		if err != nil {
			return ps, err
		}
		ps = append(ps, p)
	}
}

func TestReaderGood(t *testing.T) {
	f, err := os.Open("testdata/Sources.good")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps, err := readAll(NewReader(f, "Sources.good"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("got %d paragraphs, want 2", len(ps))
	}
	tests := []struct {
		para        int
		field, want string
		line        int
	}{
		{0, "Package", "0ad", 3},
		{0, "package", "0ad", 3},
		{0, "VERSION", "0.0.26-3", 5},
		{0, "Architecture", "amd64 arm64 armhf i386 kfreebsd-amd64 kfreebsd-i386", 9},
		{0, "Files", "\n 4d5f452a06bcdba6907f3350219a63db 2565 0ad_0.0.26-3.dsc\n 11b79970197c19241708e2a6cadb416d 78065537 0ad_0.0.26.orig.tar.gz\n ef7590961dc6e47d913d9bcec038f52e 5078552 0ad_0.0.26-3.debian.tar.xz", 12},
		{0, "Package-List", "\n 0ad deb games optional arch=amd64,arm64,armhf,i386,kfreebsd-amd64,kfreebsd-i386", 23},
		{0, "Section", "games", 27},
		{1, "Package", "hello", 30},
		{1, "Section", "devel", 56},
		{1, "Missing", "", 0},
	}
	for _, tt := range tests {
		p := ps[tt.para]
		if got := p.Get(tt.field); got != tt.want {
			t.Errorf("paragraph %d: Get(%q) = %q, want %q", tt.para, tt.field, got, tt.want)
		}
		f, ok := p.Lookup(tt.field)
		if ok != (tt.line != 0) || f.Line != tt.line {
			t.Errorf("paragraph %d: Lookup(%q) = line %d, %v; want line %d", tt.para, tt.field, f.Line, ok, tt.line)
		}
	}
	if ps[0].Line != 3 || ps[1].Line != 30 {
		t.Errorf("paragraph lines %d, %d; want 3, 30", ps[0].Line, ps[1].Line)
	}
	var names []string
	for _, f := range ps[1].Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "Package,Binary,Version,Maintainer,Build-Depends,Architecture,Standards-Version,Format,Files,Vcs-Browser,Vcs-Git,Checksums-Sha256,Homepage,Package-List,Testsuite,Directory,Priority,Section" {
		t.Errorf("Fields() in order: %s", got)
	}
}

func TestReaderKeep(t *testing.T) {
	f, err := os.Open("testdata/Sources.good")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps, err := readAll(NewReader(f, "Sources.good").Keep("package", "Version", "Files"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		var names []string
		for _, f := range p.Fields() {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, ","); got != "package,Version,Files" {
			t.Errorf("kept fields %s", got)
		}
		if p.Get("Architecture") != "" || p.Get("PACKAGE") == "" {
			t.Errorf("paragraph %d: Keep stored the wrong fields", p.Line)
		}
	}
	if got := ps[1].Get("Files"); !strings.HasSuffix(got, "\n 27ab798c1d8d9048ffc8127e9b8dbfca 12684 hello_2.10-3.debian.tar.xz") {
		t.Errorf("kept Files = %q", got)
	}
}

func TestReaderBad(t *testing.T) {
	tests := []struct{ file, want string }{
		{"no-colon", `no-colon:5: line is neither "Field: value" nor a continuation: "Version 1.0-1"`},
		{"continuation-first", "continuation-first:5: continuation line before any field"},
		{"duplicate-field", "duplicate-field:4: duplicate field version"},
		{"comment", "comment:2: comment lines are not allowed here"},
		{"empty-name", `empty-name:2: bad field name ""`},
		{"dash-name", `dash-name:4: bad field name "-Foo"`},
		{"space-in-name", `space-in-name:2: bad field name "Bad Name"`},
	}
	for _, tt := range tests {
		for _, keep := range [][]string{nil, {"Package"}} {
			f, err := os.Open(filepath.Join("testdata/bad", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			r := NewReader(f, tt.file)
			if keep != nil {
				r.Keep(keep...)
			}
			_, err = readAll(r)
			f.Close()
			var pe *ParseError
			if err == nil || err.Error() != tt.want || !errors.As(err, &pe) {
				t.Errorf("%s (keep %v): error %v, want %s", tt.file, keep, err, tt.want)
			}
			if _, again := r.Next(); again != err {
				t.Errorf("%s: the error is not sticky: %v", tt.file, again)
			}
		}
	}
}

func TestReaderEdges(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // Package of each paragraph
		err      string
	}{
		{"empty", "", nil, ""},
		{"blank only", "\n \n\t\n", nil, ""},
		{"no final newline", "Package: a\nVersion: 1", []string{"a"}, ""},
		{"crlf", "Package: a\r\nVersion: 1\r\n\r\nPackage: b\r\n", []string{"a", "b"}, ""},
		{"value without space", "Package:a\n", []string{"a"}, ""},
		{"empty value", "Package: a\nDescription:\n", []string{"a"}, ""},
		{"tab continuation", "Package: a\nDescription: x\n\tmore\n", []string{"a"}, ""},
		{"long line", "Package: a\nDepends: " + strings.Repeat("x", 3<<20) + "\n\nPackage: b\n", []string{"a", "b"}, ""},
		{"duplicate across paragraphs", "Package: a\n\nPackage: b\n", []string{"a", "b"}, ""},
		{"continuation after blank", "Package: a\n\n more\n", []string{"a"}, "edge:3: continuation line before any field"},
	}
	for _, tt := range tests {
		ps, err := readAll(NewReader(strings.NewReader(tt.in), "edge"))
		var got []string
		for _, p := range ps {
			got = append(got, p.Get("Package"))
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: paragraphs %q, want %q", tt.name, got, tt.want)
		}
		if (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
	ps, _ := readAll(NewReader(strings.NewReader("Package: a\nDescription: x  \n more \n .\n"), "d"))
	if got := ps[0].Get("Description"); got != "x\n more\n ." {
		t.Errorf("Description = %q", got)
	}
}

func TestReaderReadError(t *testing.T) {
	r := NewReader(io.MultiReader(strings.NewReader("Package: a\nVersion: 1\n"), errReader{}), "broken")
	_, err := readAll(r)
	if err == nil || err.Error() != "broken:2: disk on fire" {
		t.Errorf("error %v, want broken:2: disk on fire", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

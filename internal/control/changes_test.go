package control

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseChangesGood(t *testing.T) {
	for _, tt := range []struct {
		file   string
		signed bool
	}{
		{"hello_2.10-3_amd64.changes", false},
		{"hello_2.10-3_amd64.signed.changes", true},
		{"hello_2.10-3_amd64.dash-escaped.changes", true},
	} {
		data, err := os.ReadFile("testdata/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseChanges(tt.file, data)
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if c.Signed != tt.signed || c.Source != "hello" || c.Version != "2.10-3" || c.Distribution != "unstable" ||
			strings.Join(c.Architecture, " ") != "amd64" || strings.Join(c.Binary, " ") != "hello hello-dbgsym" {
			t.Errorf("%s: %+v", tt.file, c)
		}
		if !strings.Contains(c.Changes, "\n   * Add some autopkgtests. Closes: #871622.") {
			t.Errorf("%s: Changes = %q", tt.file, c.Changes)
		}
		want := []ChangesFile{
			{"hello_2.10-3_amd64.deb", 53548, "2c8f4ba6a1e0c2a7d3b1f0e9d8c7b6a5", "5a1e9f0c7d0d4a44c8ab2a2f1f6e0d63f7b0f5a8a1cf1c8f34c6b52d0e7c1a90", "devel", "optional"},
			{"hello-dbgsym_2.10-3_amd64.deb", 26136, "9d8c7b6a5f4e3d2c1b0a998877665544", "c0ffee3b1d4e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192", "debug", "optional"},
			{"hello_2.10-3_amd64.buildinfo", 6321, "11223344556677889900aabbccddeeff", "0badc0de5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e", "devel", "optional"},
		}
		if len(c.Files) != len(want) {
			t.Fatalf("%s: %d files", tt.file, len(c.Files))
		}
		for i := range want {
			if c.Files[i] != want[i] {
				t.Errorf("%s: file %d = %+v, want %+v", tt.file, i, c.Files[i], want[i])
			}
		}
	}
}

func TestParseChangesBinNMUSource(t *testing.T) {
	data, _ := os.ReadFile("testdata/hello_2.10-3_amd64.changes")
	s := strings.Replace(string(data), "Source: hello\n", "Source: hello (2.10-3)\n", 1)
	s = strings.Replace(s, "Version: 2.10-3\n", "Version: 2.10-3+b1\n", 1)
	c, err := ParseChanges("x.changes", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "hello" || c.SourceVersion != "2.10-3" || c.Version != "2.10-3+b1" {
		t.Errorf("Source %q SourceVersion %q Version %q", c.Source, c.SourceVersion, c.Version)
	}
}

func TestParseChangesBadFileNames(t *testing.T) {
	unsigned, _ := os.ReadFile("testdata/hello_2.10-3_amd64.changes")
	signed, _ := os.ReadFile("testdata/hello_2.10-3_amd64.signed.changes")
	// The .buildinfo is on line 29 of Files (32 when signed) and line 25
	// of Checksums-Sha256 (28 when signed).
	for _, bad := range []string{"../x", "/etc/passwd", "a/b", ".", "..", "x/", "../../hello_2.10-3_amd64.buildinfo"} {
		for _, tt := range []struct {
			data         []byte
			line, shaLin string
		}{{unsigned, "29", "25"}, {signed, "32", "28"}} {
			files := strings.Replace(string(tt.data), "devel optional hello_2.10-3_amd64.buildinfo", "devel optional "+bad, 1)
			_, err := ParseChanges("up.changes", []byte(files))
			want := "up.changes:" + tt.line + `: file name "` + bad + `" is not a plain file name`
			if err == nil || err.Error() != want {
				t.Errorf("Files %q: error %v, want %s", bad, err, want)
			}
			sums := strings.Replace(string(tt.data), "6321 hello_2.10-3_amd64.buildinfo\nFiles", "6321 "+bad+"\nFiles", 1)
			_, err = ParseChanges("up.changes", []byte(sums))
			want = "up.changes:" + tt.shaLin + `: file name "` + bad + `" is not a plain file name`
			if err == nil || err.Error() != want {
				t.Errorf("Checksums-Sha256 %q: error %v, want %s", bad, err, want)
			}
		}
	}
}

func TestParseChangesBad(t *testing.T) {
	unsigned, _ := os.ReadFile("testdata/hello_2.10-3_amd64.changes")
	signed, _ := os.ReadFile("testdata/hello_2.10-3_amd64.signed.changes")
	u, s := string(unsigned), string(signed)
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "c: no paragraph"},
		{"no Files", strings.Split(u, "Files:")[0], "c:1: missing field Files"},
		{"no Source", strings.Replace(u, "Source: hello\n", "", 1), "c:1: missing field Source"},
		{"bad version", strings.Replace(u, "Version: 2.10-3\n", "Version: 2.10-\n", 1), `c:6: version "2.10-" has bad syntax: revision number is empty`},
		{"bad md5", strings.Replace(u, "2c8f4ba6a1e0c2a7d3b1f0e9d8c7b6a5", "2c8f", 1), `c:27: bad MD5 sum "2c8f" for hello_2.10-3_amd64.deb`},
		{"bad size", strings.Replace(u, "2c8f4ba6a1e0c2a7d3b1f0e9d8c7b6a5 53548", "2c8f4ba6a1e0c2a7d3b1f0e9d8c7b6a5 -1", 1), `c:27: bad size "-1" for hello_2.10-3_amd64.deb`},
		{"short Files line", strings.Replace(u, "53548 devel optional", "53548 devel", 1), `c:27: Files entry needs "md5sum size section priority name", got 4 fields`},
		{"size mismatch", strings.Replace(u, "a90 53548", "a90 53549", 1), "c:23: size 53549 of hello_2.10-3_amd64.deb differs from Files (53548)"},
		{"sha256 only", strings.Replace(u, "0badc0de5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e 6321 hello_2.10-3_amd64.buildinfo", "0badc0de5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e 6321 other.buildinfo", 1), "c:25: other.buildinfo is in Checksums-Sha256 but not in Files"},
		{"two paragraphs", u + "\nSource: evil\n", "c:31: more than one paragraph"},
		{"text after signature", s + "Source: evil\n", "c:" + strconv.Itoa(strings.Count(s, "\n")+1) + ": text after the signature"},
		{"unsigned tail appended", s + "\n-----BEGIN PGP SIGNED MESSAGE-----\n", "c:" + strconv.Itoa(strings.Count(s, "\n")+2) + ": text after the signature"},
		{"no signature", strings.Split(s, "-----BEGIN PGP SIGNATURE-----")[0], "c:" + strconv.Itoa(strings.Count(strings.Split(s, "-----BEGIN PGP SIGNATURE-----")[0], "\n")) + ": clearsigned message without signature"},
		{"undashed line", strings.Replace(s, "Format: 1.8", "-Format: 1.8", 1), `c:4: line starting with "-" is not dash-escaped: "-Format: 1.8"`},
		{"bad armor header", strings.Replace(s, "Hash: SHA256", "Hash SHA256", 1), `c:2: bad armor header "Hash SHA256"`},
	}
	for _, tt := range tests {
		_, err := ParseChanges("c", []byte(tt.data))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %s", tt.name, err, tt.want)
		}
	}
}

func TestStripSignatureDsc(t *testing.T) {
	data, err := os.ReadFile("testdata/hello_2.10-3.dsc")
	if err != nil {
		t.Fatal(err)
	}
	body, signed, err := StripSignature("hello_2.10-3.dsc", data)
	if err != nil || !signed {
		t.Fatalf("signed %v, %v", signed, err)
	}
	ps, err := readAll(NewReader(bytes.NewReader(body), "hello_2.10-3.dsc"))
	if err != nil || len(ps) != 1 {
		t.Fatalf("%d paragraphs, %v", len(ps), err)
	}
	src, _ := ps[0].Lookup("Source")
	files, _ := ps[0].Lookup("Files")
	if src.Value != "hello" || src.Line != 5 || files.Line != 26 || ps[0].Line != 4 {
		t.Errorf("Source %+v, Files at line %d, paragraph at line %d", src, files.Line, ps[0].Line)
	}
	same, signed, err := StripSignature("plain", []byte("Source: x\n"))
	if err != nil || signed || string(same) != "Source: x\n" {
		t.Errorf("unsigned data: %q, %v, %v", same, signed, err)
	}
}

func TestSplitSource(t *testing.T) {
	tests := []struct {
		in, name, version string
		ok                bool
	}{
		{"hello", "hello", "", true},
		{"glibc (2.36-9+deb12u4)", "glibc", "2.36-9+deb12u4", true},
		{" glibc  ( 2.36-9 ) ", "glibc", "2.36-9", true},
		{"", "", "", false},
		{"glibc 2.36", "", "", false},
		{"glibc ()", "", "", false},
		{"glibc (2.36 1)", "", "", false},
		{"glibc (2.36", "", "", false},
	}
	for _, tt := range tests {
		n, v, ok := SplitSource(tt.in)
		if n != tt.name || v != tt.version || ok != tt.ok {
			t.Errorf("SplitSource(%q) = %q, %q, %v; want %q, %q, %v", tt.in, n, v, ok, tt.name, tt.version, tt.ok)
		}
	}
}

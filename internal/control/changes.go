package control

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"buildd/internal/debversion"
)

// Changes is a parsed .changes file.
type Changes struct {
	Format string
	Date   string
	// Source is the source package name; SourceVersion is the version in
	// "Source: name (version)" (binNMUs), else "".
	Source        string
	SourceVersion string
	Binary        []string
	Architecture  []string
	Version       string
	Distribution  string
	Urgency       string
	Maintainer    string
	ChangedBy     string
	Changes       string
	Files         []ChangesFile
	// Signed tells whether the file was OpenPGP clearsigned; the signature
	// is stripped, not verified.
	Signed    bool
	Paragraph *Paragraph
}

// ChangesFile is one file listed in a .changes. SHA256 is "" if the .changes
// has no Checksums-Sha256 field.
type ChangesFile struct {
	Name     string
	Size     int64
	MD5      string
	SHA256   string
	Section  string
	Priority string
}

const (
	pgpSignedHeader = "-----BEGIN PGP SIGNED MESSAGE-----"
	pgpSigBegin     = "-----BEGIN PGP SIGNATURE-----"
	pgpSigEnd       = "-----END PGP SIGNATURE-----"
)

// ParseChanges parses the .changes file data; name is used in errors, which
// read NAME:LINE: message. A clearsigned file has its armor header, dash
// escaping and signature block removed (the signature is not verified) and
// Signed set. Every file name in Files and Checksums-Sha256 must be a plain
// base name (no "/", not "", "." or ".."); sizes and checksums must be well
// formed and agree between the two fields.
func ParseChanges(name string, data []byte) (*Changes, error) {
	body, signed, err := StripSignature(name, data)
	if err != nil {
		return nil, err
	}
	r := NewReader(bytes.NewReader(body), name)
	p, err := r.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: no paragraph", name)
	}
	if err != nil {
		return nil, err
	}
	if q, err := r.Next(); err != io.EOF {
		if err != nil {
			return nil, err
		}
		return nil, &ParseError{Name: name, Line: q.Line, Msg: "more than one paragraph"}
	}
	c := &Changes{
		Format:       p.Get("Format"),
		Date:         p.Get("Date"),
		Binary:       strings.Fields(p.Get("Binary")),
		Architecture: strings.Fields(p.Get("Architecture")),
		Version:      p.Get("Version"),
		Distribution: p.Get("Distribution"),
		Urgency:      p.Get("Urgency"),
		Maintainer:   p.Get("Maintainer"),
		ChangedBy:    p.Get("Changed-By"),
		Changes:      p.Get("Changes"),
		Signed:       signed,
		Paragraph:    p,
	}
	for _, f := range []string{"Source", "Version", "Architecture", "Files"} {
		if _, ok := p.Lookup(f); !ok {
			return nil, &ParseError{Name: name, Line: p.Line, Msg: "missing field " + f}
		}
	}
	src, _ := p.Lookup("Source")
	var ok bool
	if c.Source, c.SourceVersion, ok = SplitSource(src.Value); !ok {
		return nil, &ParseError{Name: name, Line: src.Line, Msg: fmt.Sprintf("bad Source %q", src.Value)}
	}
	ver, _ := p.Lookup("Version")
	if _, err := debversion.Parse(ver.Value); err != nil {
		return nil, &ParseError{Name: name, Line: ver.Line, Msg: err.Error()}
	}
	if c.SourceVersion != "" {
		if _, err := debversion.Parse(c.SourceVersion); err != nil {
			return nil, &ParseError{Name: name, Line: src.Line, Msg: err.Error()}
		}
	}
	if err := c.parseFiles(name, p); err != nil {
		return nil, err
	}
	return c, nil
}

// parseFiles fills c.Files from Files and Checksums-Sha256.
func (c *Changes) parseFiles(name string, p *Paragraph) error {
	files, _ := p.Lookup("Files")
	index := map[string]int{}
	err := eachEntry(files, func(line int, f []string) error {
		if len(f) != 5 {
			return fmt.Errorf("Files entry needs \"md5sum size section priority name\", got %d fields", len(f))
		}
		if err := checkBaseName(f[4]); err != nil {
			return err
		}
		if !isHex(f[0], 32) {
			return fmt.Errorf("bad MD5 sum %q for %s", f[0], f[4])
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad size %q for %s", f[1], f[4])
		}
		if _, dup := index[f[4]]; dup {
			return fmt.Errorf("file %s listed twice", f[4])
		}
		index[f[4]] = len(c.Files)
		c.Files = append(c.Files, ChangesFile{Name: f[4], Size: size, MD5: f[0], Section: f[2], Priority: f[3]})
		return nil
	}, name)
	if err != nil {
		return err
	}
	if len(c.Files) == 0 {
		return &ParseError{Name: name, Line: files.Line, Msg: "Files lists no file"}
	}
	sums, ok := p.Lookup("Checksums-Sha256")
	if !ok {
		return nil
	}
	err = eachEntry(sums, func(line int, f []string) error {
		if len(f) != 3 {
			return fmt.Errorf("Checksums-Sha256 entry needs \"sha256 size name\", got %d fields", len(f))
		}
		if err := checkBaseName(f[2]); err != nil {
			return err
		}
		if !isHex(f[0], 64) {
			return fmt.Errorf("bad SHA256 sum %q for %s", f[0], f[2])
		}
		i, ok := index[f[2]]
		if !ok {
			return fmt.Errorf("%s is in Checksums-Sha256 but not in Files", f[2])
		}
		if f[1] != strconv.FormatInt(c.Files[i].Size, 10) {
			return fmt.Errorf("size %s of %s differs from Files (%d)", f[1], f[2], c.Files[i].Size)
		}
		if c.Files[i].SHA256 != "" {
			return fmt.Errorf("file %s listed twice", f[2])
		}
		c.Files[i].SHA256 = f[0]
		return nil
	}, name)
	if err != nil {
		return err
	}
	for _, f := range c.Files {
		if f.SHA256 == "" {
			return &ParseError{Name: name, Line: sums.Line, Msg: f.Name + " is in Files but not in Checksums-Sha256"}
		}
	}
	return nil
}

// eachEntry calls fn with the words of every non-empty line of a multi-line
// field; an error from fn is placed on that line.
func eachEntry(f Field, fn func(line int, words []string) error, name string) error {
	for i, l := range strings.Split(f.Value, "\n") {
		w := strings.Fields(l)
		if len(w) == 0 {
			continue
		}
		if err := fn(f.Line+i, w); err != nil {
			return &ParseError{Name: name, Line: f.Line + i, Msg: err.Error()}
		}
	}
	return nil
}

// checkBaseName refuses a file name that is not a plain name in the
// directory of the .changes.
func checkBaseName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("file name %q is not a plain file name", n)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// StripSignature returns the signed text of an OpenPGP clearsigned message
// (a signed .dsc or .changes), with the armor header lines blanked so that
// line numbers stay those of the file, dash escaping removed, and the
// signature block cut off; signed tells whether data was clearsigned. The
// signature is not verified. Unsigned data is returned as it is. Text after
// the signature block is an error, as is a malformed armor. Read a signed
// .dsc with NewReader(bytes.NewReader(body), name).
func StripSignature(name string, data []byte) ([]byte, bool, error) {
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	first := 0
	for first < len(lines) && strings.TrimSpace(lines[first]) == "" {
		first++
	}
	if first == len(lines) || strings.TrimRight(lines[first], " \t\r\n") != pgpSignedHeader {
		return data, false, nil
	}
	errAt := func(i int, msg string) error { return &ParseError{Name: name, Line: i + 1, Msg: msg} }
	var out bytes.Buffer
	for range first + 1 {
		out.WriteByte('\n')
	}
	i := first + 1
	for ; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		out.WriteByte('\n')
		if l == "" {
			break
		}
		if !strings.Contains(l, ": ") {
			return nil, true, errAt(i, fmt.Sprintf("bad armor header %q", l))
		}
	}
	if i == len(lines) {
		return nil, true, errAt(i-1, "clearsigned message without text")
	}
	i++
	for ; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		if l == pgpSigBegin {
			break
		}
		switch {
		case strings.HasPrefix(l, "- "):
			l = l[2:]
		case strings.HasPrefix(l, "-"):
			return nil, true, errAt(i, fmt.Sprintf("line starting with \"-\" is not dash-escaped: %q", l))
		}
		out.WriteString(l)
		out.WriteByte('\n')
	}
	if i == len(lines) {
		return nil, true, errAt(i-1, "clearsigned message without signature")
	}
	end := i + 1
	for end < len(lines) && strings.TrimRight(lines[end], " \t\r\n") != pgpSigEnd {
		end++
	}
	if end == len(lines) {
		return nil, true, errAt(len(lines)-1, "signature block has no "+pgpSigEnd)
	}
	for j := end + 1; j < len(lines); j++ {
		if strings.TrimSpace(lines[j]) != "" {
			return nil, true, errAt(j, "text after the signature")
		}
	}
	return out.Bytes(), true, nil
}

// SplitSource splits a Source field as found in Packages and .changes,
// "name" or "name (version)", into the name and the version ("" when
// absent); ok is false when the field has another shape.
func SplitSource(v string) (name, version string, ok bool) {
	name, rest, found := strings.Cut(strings.TrimSpace(v), " ")
	if !found {
		return name, "", name != ""
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 3 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return "", "", false
	}
	version = strings.TrimSpace(rest[1 : len(rest)-1])
	if version == "" || strings.ContainsAny(version, " \t()") {
		return "", "", false
	}
	return name, version, true
}

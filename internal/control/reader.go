// Package control owns Debian control files (deb822): the streaming reader
// for archive indexes (Sources, Packages), .dsc and .changes files, opening
// plain, gzip and xz compressed indexes, .changes parsing (clearsigned or
// not), dependency relations (Build-Depends syntax) and architecture
// wildcards.
package control

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Field is one field of a paragraph. Value is the text after the colon with
// surrounding blanks removed; each continuation line follows a "\n", as it
// stands in the file (leading blanks kept, trailing blanks removed). Line is
// the line of the field name; continuation line k of the value is on Line+k.
type Field struct {
	Name  string
	Value string
	Line  int
}

// Paragraph is one stanza of a control file.
type Paragraph struct {
	Line   int // line of its first field
	fields []Field
}

// Get returns the value of the field (case-insensitive), or "" if absent.
func (p *Paragraph) Get(name string) string {
	f, _ := p.Lookup(name)
	return f.Value
}

// Lookup returns the field (case-insensitive) and whether it is present.
func (p *Paragraph) Lookup(name string) (Field, bool) {
	for _, f := range p.fields {
		if len(f.Name) == len(name) && strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return Field{}, false
}

// Fields returns the paragraph's fields in file order. The slice belongs to
// the paragraph.
func (p *Paragraph) Fields() []Field { return p.fields }

// ParseError is a syntax error in a control file: NAME:LINE: message.
type ParseError struct {
	Name string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg) }

// readerBufferSize is large so that ReadSlice hands out almost every line
// straight from the buffer, without copying.
const readerBufferSize = 1 << 20

// Reader reads paragraphs from a deb822 stream one at a time. Paragraphs are
// separated by lines that are empty or blank; comments are not allowed (as in
// archive indexes). Field names are case-insensitive; a field repeated in a
// paragraph is an error.
type Reader struct {
	name string
	br   *bufio.Reader
	line int
	err  error

	keep  []string          // if not nil, only these fields are stored
	names map[string]string // interned field names

	// Per paragraph, reused: the names seen (for duplicates), the stored
	// values and where each stored field lies in vals.
	seen  []seenName
	arena []byte
	vals  []byte
	spans []span
	cur   int // index in spans of the field continuation lines extend, or -1
	start int // line of the paragraph's first field, 0 outside a paragraph
	long  []byte
}

type seenName struct {
	hash     uint64
	off, len int
}

type span struct {
	name       string
	line       int
	start, end int
}

// NewReader returns a Reader of r; name is used in error messages.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{
		name:  name,
		br:    bufio.NewReaderSize(r, readerBufferSize),
		names: make(map[string]string),
		cur:   -1,
	}
}

// Keep makes the Reader store only the named fields (case-insensitive);
// every other field is still checked for syntax and duplicates but its value
// is not copied. Stored fields are named as given here. It returns r.
func (r *Reader) Keep(names ...string) *Reader {
	r.keep = append([]string{}, names...)
	return r
}

// Next returns the next paragraph, or io.EOF after the last one. A syntax
// error is a *ParseError; a read error is returned wrapped with NAME:LINE.
// After an error every call returns the same error.
func (r *Reader) Next() (*Paragraph, error) {
	if r.err != nil {
		return nil, r.err
	}
	p, err := r.next()
	if err != nil {
		r.err = err
	}
	return p, err
}

func (r *Reader) next() (*Paragraph, error) {
	r.reset()
	for {
		line, err := r.readLine()
		if err != nil {
			if err != io.EOF {
				return nil, fmt.Errorf("%s:%d: %w", r.name, r.line, err)
			}
			if len(line) == 0 {
				if r.start != 0 {
					return r.paragraph(), nil
				}
				return nil, io.EOF
			}
		}
		r.line++
		if len(line) == 0 || isBlankLine(line) {
			if r.start != 0 {
				return r.paragraph(), nil
			}
			continue
		}
		switch c := line[0]; {
		case c == ' ' || c == '\t':
			if r.start == 0 {
				return nil, r.errorf("continuation line before any field")
			}
			if r.cur >= 0 {
				r.vals = append(r.vals, '\n')
				r.vals = append(r.vals, trimRight(line)...)
				r.spans[r.cur].end = len(r.vals)
			}
		case c == '#':
			return nil, r.errorf("comment lines are not allowed here")
		default:
			if err := r.field(line); err != nil {
				return nil, err
			}
		}
	}
}

// field handles a "Name: value" line.
func (r *Reader) field(line []byte) error {
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return r.errorf("line is neither \"Field: value\" nor a continuation: %q", clip(line))
	}
	name := line[:colon]
	if colon == 0 || name[0] == '-' {
		return r.errorf("bad field name %q", clip(name))
	}
	// FNV-1a of the lower-cased name, for the duplicate check.
	h := uint64(14695981039346656037)
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return r.errorf("bad field name %q", clip(name))
		}
		h = (h ^ uint64(lower(c))) * 1099511628211
	}
	for _, s := range r.seen {
		if s.hash == h && equalFoldBytes(r.arena[s.off:s.off+s.len], name) {
			return r.errorf("duplicate field %s", name)
		}
	}
	r.seen = append(r.seen, seenName{hash: h, off: len(r.arena), len: len(name)})
	r.arena = append(r.arena, name...)
	if r.start == 0 {
		r.start = r.line
	}
	r.cur = -1
	stored := ""
	if r.keep == nil {
		stored = r.names[string(name)]
		if stored == "" {
			stored = string(name)
			r.names[stored] = stored
		}
	} else {
		for _, k := range r.keep {
			if equalFold(k, name) {
				stored = k
				break
			}
		}
		if stored == "" {
			return nil
		}
	}
	v := trimRight(trimLeft(line[colon+1:]))
	start := len(r.vals)
	r.vals = append(r.vals, v...)
	r.spans = append(r.spans, span{name: stored, line: r.line, start: start, end: len(r.vals)})
	r.cur = len(r.spans) - 1
	return nil
}

// paragraph builds the finished paragraph: one string holds all its values.
func (r *Reader) paragraph() *Paragraph {
	all := string(r.vals)
	p := &Paragraph{Line: r.start, fields: make([]Field, len(r.spans))}
	for i, s := range r.spans {
		p.fields[i] = Field{Name: s.name, Value: all[s.start:s.end], Line: s.line}
	}
	return p
}

func (r *Reader) reset() {
	r.seen = r.seen[:0]
	r.arena = r.arena[:0]
	r.vals = r.vals[:0]
	r.spans = r.spans[:0]
	r.cur = -1
	r.start = 0
}

// readLine returns the next line without its "\n". The slice is valid until
// the next call. At the end of input it returns io.EOF with the last,
// unterminated line if there is one.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.long = append(r.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	return line, err
}

func (r *Reader) errorf(format string, args ...any) error {
	return &ParseError{Name: r.name, Line: r.line, Msg: fmt.Sprintf(format, args...)}
}

func isBlankLine(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

func trimLeft(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func trimRight(b []byte) []byte {
	for n := len(b); n > 0 && (b[n-1] == ' ' || b[n-1] == '\t' || b[n-1] == '\r'); n-- {
		b = b[:n-1]
	}
	return b
}

// clip shortens a line quoted in an error message.
func clip(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// equalFold compares an ASCII field name case-insensitively.
func equalFold(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(s[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

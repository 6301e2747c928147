package message

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzing reports whether the test binary runs with -fuzz: only then is the
// time of one Parse checked (the seeds also run as plain tests, which
// assert no time).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// parseTimed is Parse, failing the fuzz run when it takes more than a
// second.
func parseTimed(t *testing.T, raw []byte) (*Mail, error) {
	start := time.Now()
	m, err := Parse(raw)
	if d := time.Since(start); fuzzing() && d > time.Second {
		t.Fatalf("Parse of %d bytes took %v", len(raw), d)
	}
	return m, err
}

// FuzzParse checks what Parse promises on any input: no panic, every error
// an *Error, the header within its bounds, HeaderText and RawBody the mail
// as given, Body valid UTF-8, a PGP/MIME signed part in canonical CRLF form.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{
		"testdata/mail/*.eml",
		"testdata/limits/*.eml",
		// The replies made with real gpg by dispatch's TestReplies -update.
		"../dispatch/testdata/corpus/*.eml",
	} {
		files, _ := filepath.Glob(filepath.FromSlash(glob))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add(nested(MaxDepth+4, 1, dotted("=_deep"), true, "x"))
	f.Add(nested(MaxDepth, 2, dotted("b"), false, "retry\nhello_1.0-1"))
	f.Add(withHeader("Message-ID", strings.Repeat("(a)", 1<<16)+" <a@b>"))
	f.Add(withHeader("In-Reply-To", "("+strings.Repeat("(", 1<<14)))
	f.Add(bytes.Repeat([]byte("X: y\r\n"), MaxHeaderFields+1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parseTimed(t, raw)
		var pe *Error
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not an *Error", err, err)
		}
		if m == nil {
			if err == nil {
				t.Fatal("neither a mail nor an error")
			}
			return
		}
		mail := raw
		if bytes.HasPrefix(mail, []byte("From ")) {
			_, mail, _ = bytes.Cut(mail, []byte("\n"))
		}
		if !bytes.Equal(append(append([]byte{}, m.HeaderText...), m.RawBody...), mail) {
			t.Fatalf("HeaderText %q + RawBody %q is not the mail", m.HeaderText, m.RawBody)
		}
		if len(m.HeaderText) > MaxHeaderSize {
			t.Fatalf("header of %d bytes read", len(m.HeaderText))
		}
		if n := m.Header.Len(); n > MaxHeaderFields {
			t.Fatalf("header of %d fields read", n)
		}
		if !utf8.ValidString(m.Body) {
			t.Fatalf("Body %q is not UTF-8", m.Body)
		}
		if m.PGPMIME {
			if i := bytes.IndexByte(bytes.ReplaceAll(m.SignedPart, []byte("\r\n"), nil), '\n'); i >= 0 {
				t.Fatalf("SignedPart %q has a bare LF", m.SignedPart)
			}
			if err == nil && !bytes.Contains(mail, m.Signature) {
				t.Fatalf("signature %q is not in the mail", m.Signature)
			}
		}
		m.FromMailerDaemon()
	})
}

// FuzzNesting builds multiparts nested depth deep, width parts beside each
// nested one, with fuzzed boundaries and text, and checks that Parse finds
// the text at the bottom or refuses the mail for the bound it passes first.
func FuzzNesting(f *testing.F) {
	f.Add(uint16(0), uint8(0), "b", "retry\nhello_1.0-1\n", false)
	f.Add(uint16(MaxDepth-1), uint8(0), "=_Part_0_1234.5678", "x", true)
	f.Add(uint16(MaxDepth), uint8(0), "b", "x", false)
	f.Add(uint16(MaxDepth-1), uint8(15), "----=_NextPart_000", "a\n\nb", true)
	f.Add(uint16(MaxDepth-1), uint8(16), "b", "", false)
	f.Add(uint16(63), uint8(0), "b'()+_,-./:=? c", "x", false)
	f.Add(uint16(2), uint8(1), "=?utf-8?q?x?=", "x", false)
	f.Fuzz(func(t *testing.T, d uint16, w uint8, bseed, text string, crlf bool) {
		depth, width := int(d)%64+1, int(w)%20
		b := keep(bseed, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ", 60)
		if b == "" {
			b = "b"
		}
		text = keep(text, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .\n", 1000)
		want, parts := "", 0
		for k := 1; k <= depth && want == ""; k++ {
			if parts += width + 1; k > MaxDepth {
				want = "mail multipart body: nesting deeper than 16"
			} else if parts > MaxParts {
				want = "mail multipart body: more than 256 parts"
			}
		}
		m, err := parseTimed(t, nested(depth, width, dotted(b), crlf, text))
		if want != "" {
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("depth %d width %d boundary %q: err %v, want %q", depth, width, b, err, want)
			}
			return
		}
		if err != nil || m.Body != text {
			t.Fatalf("depth %d width %d boundary %q: err %v body %q, want %q", depth, width, b, err, m.Body, text)
		}
	})
}

// keep returns the first max bytes of s that are in set.
func keep(s, set string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if strings.IndexByte(set, s[i]) >= 0 {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

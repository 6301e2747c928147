package message

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nested builds a mail of depth multipart/mixed bodies, each one the last
// part of the one above, with width application/octet-stream parts before
// it at every level and text as the text/plain part at the bottom. The
// boundary of level k (from 1) is boundary(k); crlf makes every line end
// CRLF.
func nested(depth, width int, boundary func(int) string, crlf bool, text string) []byte {
	var w bytes.Buffer
	w.WriteString("From: deep@example.org\nTo: buildd@example.org\nSubject: nested\nMIME-Version: 1.0\n")
	fmt.Fprintf(&w, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", boundary(1))
	for k := 1; k <= depth; k++ {
		for range width {
			fmt.Fprintf(&w, "--%s\nContent-Type: application/octet-stream\n\nx\n", boundary(k))
		}
		fmt.Fprintf(&w, "--%s\n", boundary(k))
		if k < depth {
			fmt.Fprintf(&w, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", boundary(k+1))
		} else {
			fmt.Fprintf(&w, "Content-Type: text/plain; charset=us-ascii\n\n%s\n", text)
		}
	}
	for k := depth; k >= 1; k-- {
		fmt.Fprintf(&w, "--%s--\n", boundary(k))
	}
	if crlf {
		return bytes.ReplaceAll(w.Bytes(), []byte("\n"), []byte("\r\n"))
	}
	return w.Bytes()
}

// dotted names the boundaries b.1, b.2, ...
func dotted(b string) func(int) string {
	return func(k int) string { return fmt.Sprintf("%s.%d", b, k) }
}

// deepMail is the red team's mail: 20,000 multiparts nested, 1.3 MB.
func deepMail() []byte { return nested(20000, 0, dotted("b"), false, "x") }

// withHeader is a small mail whose header has the field k: v.
func withHeader(k, v string) []byte {
	return []byte("From: a@example.org\nSubject: x\n" + k + ": " + v + "\n\nbody\n")
}

// headerOfSize is a mail whose header block, blank line included, is n
// bytes long.
func headerOfSize(n int) []byte {
	const head, tail = "From: a@example.org\nX-Long: ", "\n\n"
	return []byte(head + strings.Repeat("a", n-len(head)-len(tail)) + tail + "body\n")
}

func TestParseLimits(t *testing.T) {
	file := func(name string) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			b, err := os.ReadFile(filepath.Join("testdata", "limits", name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	gen := func(b []byte) func(*testing.T) []byte { return func(*testing.T) []byte { return b } }
	signed := []byte("Content-Type: multipart/signed; boundary=s; protocol=\"application/pgp-signature\"\n\n" +
		strings.Repeat("--s\n\nx\n", MaxParts+1) + "--s--\n")
	for _, c := range []struct {
		name string
		raw  func(*testing.T) []byte
		body string // when the mail is read
		err  string // else
		nilM bool   // the error comes before the header is read
	}{
		{"16 deep is read", file("depth-16.eml"), "the text at the bottom", "", false},
		{"17 deep", file("depth-17.eml"), "", "mail multipart body: nesting deeper than 16 (part 1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1 is multipart/mixed)", false},
		{"20,000 deep, 1.3 MB", gen(deepMail()), "", "mail multipart body: nesting deeper than 16", false},
		{"256 parts are read", file("parts-256.eml"), "first", "", false},
		{"257 parts", file("parts-257.eml"), "", "mail multipart body: more than 256 parts", false},
		{"257 parts, nested", gen(nested(16, 16, dotted("n"), true, "x")), "", "mail multipart body: more than 256 parts", false},
		{"257 parts, signed", gen(signed), "", "mail multipart/signed body: more than 256 parts", false},
		{"1000 fields are read", file("fields-1000.eml"), "text\n", "", false},
		{"1001 fields", file("fields-1001.eml"), "", "mail header: more than 1000 fields", true},
		{"1001 fields in a part", file("part-fields-1001.eml"), "", "mail part 1 header: more than 1000 fields", false},
		{"header of MaxHeaderSize is read", gen(headerOfSize(MaxHeaderSize)), "body\n", "", false},
		{"header over MaxHeaderSize", gen(headerOfSize(MaxHeaderSize + 1)), "", "mail header: header larger than 1048576 bytes", true},
		{"header without end over MaxHeaderSize", gen([]byte("X: " + strings.Repeat("y", MaxHeaderSize))), "", "mail header: header larger than", true},
		{"MaxSize, one line, is read", gen([]byte("Subject: x\n\n" + strings.Repeat("x", MaxSize-12))), strings.Repeat("x", MaxSize-12), "", false},
		{"mail of MaxSize+1", gen([]byte("Subject: x\n\n" + strings.Repeat("x", MaxSize-11))), "", "mail size: 16777217 bytes, more than 16777216", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.raw(t))
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if m.Body != c.body {
					t.Errorf("body %q, want %q", m.Body, c.body)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err %v, want *Error %q", err, c.err)
			}
			if (m == nil) != c.nilM {
				t.Errorf("mail %v returned with the error, want nil: %v", m != nil, c.nilM)
			}
		})
	}
}

// TestParseMultipart is the walk through unsigned multiparts: the first
// text/plain part at any depth is the body.
func TestParseMultipart(t *testing.T) {
	for _, c := range []struct {
		file, body, bodyBytes, charset, err string
	}{
		{"multipart-mixed.eml", "just text", "just text", "", ""},
		{"multipart-alternative-latin1.eml", "retry\nGrüße\nhello_1.0-1\n", "retry\nGr\xfc\xdfe\nhello_1.0-1\n", "iso-8859-1", ""},
		{"multipart-no-content-type.eml", "plain by default\n", "plain by default\n", "", ""},
		{"multipart-encoded-word-boundary.eml", "retry\n", "retry\n", "utf-8", ""},
		{"multipart-unknown-charset.eml", "", "", "", "mail part 1.1 body: "},
		{"multipart-unclosed-inner.eml", "", "", "", "mail multipart body: part 2 (multipart/alternative): no closing boundary \"--inner--\""},
		{"multipart-no-boundary.eml", "", "", "", "mail multipart body: no boundary parameter in Content-Type"},
	} {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "mail", c.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Body != c.body || string(m.BodyBytes) != c.bodyBytes || m.Charset != c.charset {
				t.Errorf("body %q bytes %q charset %q, want %q %q %q", m.Body, m.BodyBytes, m.Charset, c.body, c.bodyBytes, c.charset)
			}
		})
	}
}

func TestFirstMsgID(t *testing.T) {
	for _, c := range []struct {
		v, id string
		ok    bool
	}{
		{"<a.1@example.org>", "a.1@example.org", true},
		{"  (a comment (nested) \\) ) <a@b> <c@d>", "a@b", true},
		{"<a@[192.0.2.1]>", "a@[192.0.2.1]", true},
		{"<jörg.1@example.org>", "jörg.1@example.org", true},
		{"", "", false},
		{"a@b", "", false},
		{"<a@b", "", false},
		{"<ab>", "", false},
		{"<a@b@c>", "", false},
		{"<a b@c>", "", false},
		{"<a@[x]y]>", "", false},
		{"(unclosed <a@b>", "", false},
		{"<\xff@b>", "", false},
		{"(" + strings.Repeat("(", 1<<20) + ")", "", false},
	} {
		if id, ok := firstMsgID(c.v); id != c.id || ok != c.ok {
			t.Errorf("%.40q: %q %v, want %q %v", c.v, id, ok, c.id, c.ok)
		}
	}
}

// TestParseLongFields: header fields of MaxHeaderSize that go-message's own
// parsers take long over (a comment in a msg-id is quadratic there) are
// read; BenchmarkParseLongField times them.
func TestParseLongFields(t *testing.T) {
	for _, f := range longFields() {
		t.Run(f.name, func(t *testing.T) {
			m, err := Parse(f.raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.MessageID != f.id {
				t.Errorf("Message-ID %.40q, want %q", m.MessageID, f.id)
			}
		})
	}
}

type longField struct {
	name string
	raw  []byte
	id   string
}

func longFields() []longField {
	n := MaxHeaderSize - 200
	return []longField{
		{"comment in Message-ID", withHeader("Message-ID", "("+strings.Repeat("a", n)+") <a@b>"), "a@b"},
		{"nested comments in In-Reply-To", withHeader("In-Reply-To", strings.Repeat("(", n/2)+strings.Repeat(")", n/2)+" <a@b>"), ""},
		{"comments in From", withHeader("From", strings.Repeat("(a) ", n/4)+"a@b"), ""},
		{"encoded words in Subject", withHeader("Subject", strings.Repeat("=?utf-8?q?a?= ", n/14)), ""},
		{"parameters in Content-Type", withHeader("Content-Type", "text/plain"+strings.Repeat("; a*1*=b", n/8)), ""},
		{"one long line", withHeader("X-Long", strings.Repeat("x", n)), ""},
	}
}

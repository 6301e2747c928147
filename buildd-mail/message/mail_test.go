package message

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		file, subject, from, inReplyTo, body string
		pgpmime                              bool
		signedPrefix                         string
	}{
		{"qp-latin1.eml", "Re: Log for failed build of hello_1.0-1 (dist=bookworm)", "jörg@example.org", "log.1@buildd", "fail\nGrüße: compiler = broken\nhello_1.0-1\n", false, ""},
		{"base64-utf8.eml", "Re: Log for failed build of hello_1.0-1 (dist=bookworm)", "admin@example.org", "", "retry\nhello_1.0-1\n", false, ""},
		{"encoded-subject.eml", "Re: Should I build hello_1.0-1 (dist=bookworm)?", "admin@example.org", "q.7@buildd", "ok\nhello_1.0-1\n", false, ""},
		{"pgpmime-crlf.eml", "Re: Log for successful build of hello_1.0-1 (dist=bookworm)", "admin@example.org", "", "retry\nhello_1.0-1\n", true, "Content-Type: text/plain; charset=us-ascii\r\n\r\nretry\r\n"},
		{"multipart-mixed.eml", "hello", "friend@example.org", "", "just text", false, ""},
	} {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "mail", c.file))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != c.subject || m.FromAddr != c.from || m.InReplyTo != c.inReplyTo || m.Body != c.body || m.PGPMIME != c.pgpmime {
				t.Errorf("got subject %q from %q irt %q body %q pgpmime %v", m.Subject, m.FromAddr, m.InReplyTo, m.Body, m.PGPMIME)
			}
			if c.pgpmime && (!strings.HasPrefix(string(m.SignedPart), c.signedPrefix) || !strings.Contains(string(m.Signature), "BEGIN PGP SIGNATURE")) {
				t.Errorf("signed part %q signature %q", m.SignedPart, m.Signature)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, raw, want string }{
		{"no closing boundary", "Content-Type: multipart/signed; boundary=b; protocol=\"application/pgp-signature\"\n\n--b\n\nx\n--b\n\nsig\n", "no closing boundary"},
		{"wrong protocol", "Content-Type: multipart/signed; boundary=b; protocol=\"application/pkcs7-signature\"\n\n--b\n\nx\n--b--\n", "not application/pgp-signature"},
		{"three parts", "Content-Type: multipart/signed; boundary=b; protocol=\"application/pgp-signature\"\n\n--b\n\nx\n--b\n\ny\n--b\n\nz\n--b--\n", "3 parts"},
		{"charset", "Content-Type: text/plain; charset=koi8-r\n\nx\n", "unsupported charset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.raw))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}

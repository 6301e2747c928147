package message

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkParseDeep is the red team's mail, 20,000 multiparts nested in
// 1.3 MB: refused at depth 17 (it took go-message's Walk about 330 s).
func BenchmarkParseDeep(b *testing.B) {
	raw := deepMail()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err == nil {
			b.Fatal("read")
		}
	}
}

// BenchmarkParseSigned reads admins' replies signed by gpg, each quoting a
// build log: PGP/MIME and clearsigned, quoted-printable, CRLF.
func BenchmarkParseSigned(b *testing.B) {
	for _, c := range []struct {
		file    string
		pgpmime bool
	}{
		{"pgpmime-gpg-qp-quoted-log.eml", true},
		{"clearsigned-gpg-qp-quoted-log.eml", false},
	} {
		b.Run(c.file, func(b *testing.B) {
			raw, err := os.ReadFile(filepath.Join("testdata", "mail", c.file))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				m, err := Parse(raw)
				if err != nil || m.PGPMIME != c.pgpmime || !strings.Contains(m.Body, "hello_1.0-1") {
					b.Fatalf("%v pgpmime %v body %q", err, m.PGPMIME, m.Body)
				}
			}
		})
	}
}

// BenchmarkParseTooBig refuses a 50 MB mail for its size.
func BenchmarkParseTooBig(b *testing.B) {
	raw := append(headerOfSize(200), make([]byte, 50<<20)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err == nil {
			b.Fatal("read")
		}
	}
}

// BenchmarkParseWorst is the most a mail within the bounds makes Parse
// do: MaxSize bytes, and
//   - MaxDepth deep, all of it at the bottom in short lines that start with
//     every level's delimiter (the boundaries are b, bb, bbb, ...), so that
//     every level's scan looks at every line;
//   - MaxDepth deep, all of it one line;
//   - one quoted-printable text of soft line breaks ("a=\n"), the slowest
//     transfer decoding.
func BenchmarkParseWorst(b *testing.B) {
	prefixes := func(k int) string { return strings.Repeat("b", k) }
	fill := func(line string) []byte {
		raw := nested(MaxDepth, 0, prefixes, false, "")
		return nested(MaxDepth, 0, prefixes, false, strings.Repeat(line, (MaxSize-len(raw))/len(line)))
	}
	const qpHead = "From: a@example.org\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
	for _, c := range []struct {
		name string
		raw  []byte
	}{
		{"delimiter-like lines", fill("--" + prefixes(MaxDepth) + "x\n")},
		{"one line", fill(strings.Repeat("x", MaxSize-2048))},
		{"quoted-printable soft breaks", []byte(qpHead + strings.Repeat("a=\n", (MaxSize-len(qpHead))/3))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(c.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseLongField reads header fields of about MaxHeaderSize that
// some parsers take quadratic time over.
func BenchmarkParseLongField(b *testing.B) {
	for _, f := range longFields() {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(int64(len(f.raw)))
			for b.Loop() {
				if _, err := Parse(f.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

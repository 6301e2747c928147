// Command gen is the Go half of the hostile corpus generator; run it only
// through ../make-corpus.sh, which makes the keys and the clearsigned texts
// with real GnuPG and calls this program twice:
//
//	go run ./testdata/hostile/gen texts WORK DIR
//	go run ./testdata/hostile/gen mails WORK DIR
//
// "texts" writes every text gpg is to sign into WORK/text/NAME.txt and the
// fixed build results (the .deb the signed .changes describes) into DIR.
// "mails" reads what gpg made (WORK/sig/NAME.asc, the exported secret keys
// WORK/encronly.sec and WORK/certonly.sec), makes what gpg cannot (a
// signature by an encryption-only RSA subkey and by a certification-only
// primary key; re-encoded copies of an accepted signature), and writes every
// mail of the corpus into DIR as NAME.eml.
//
// Everything it writes is deterministic except key material and signature
// bytes: fixed dates, fixed Message-IDs, fixed contents.
package main

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Signed texts (the last line names PKG_VERSION and the dist).
var texts = map[string]string{
	"giveback-hello":           "giveback\nhello_1.0-1 (dist=bookworm)\n",
	"retry-hello":              "retry\nhello_1.0-1 (dist=bookworm)\n",
	"retry-oldkey":             "retry\noldkey_1.0-1 (dist=bookworm)\n",
	"giveback-shared-bookworm": "giveback\nshared_1.0-1 (dist=bookworm)\n",
	"giveback-shared-nodist":   "giveback\nshared_1.0-1\n",
	"fail-utf8":                "fail\nnaïve façade\nhello_1.0-1 (dist=bookworm)\n",
	"changes-hello":            changesText(),
}

// debName and debContent are the build result the signed .changes
// describes; the test writes debContent into build/.
const (
	debName    = "hello_1.0-1_amd64.deb"
	debContent = "hostile corpus: the built hello 1.0-1 for amd64\n"
)

// changesText is hello's .changes. One line of its Changes field is the
// armor's END line after a leading space: a parser that cuts the
// clearsigned block at the first END it finds cuts the .changes in two.
func changesText() string {
	sum := sha256.Sum256([]byte(debContent))
	m5 := md5.Sum([]byte(debContent))
	n := len(debContent)
	return fmt.Sprintf(`Format: 1.8
Date: Mon, 01 Jun 2026 00:00:00 +0000
Source: hello
Binary: hello
Architecture: amd64
Version: 1.0-1
Distribution: bookworm
Urgency: medium
Maintainer: Hostile Corpus <corpus@example.org>
Changed-By: Hostile Corpus <corpus@example.org>
Description:
 hello - hostile corpus test package
Changes:
 hello (1.0-1) bookworm; urgency=medium
 .
   * The next line of this field is an armor line, and not the end of
     the signature:
 -----END PGP SIGNATURE-----
Checksums-Sha256:
 %s %d %s
Files:
 %s %d misc optional %s
`, hex.EncodeToString(sum[:]), n, debName, hex.EncodeToString(m5[:]), n, debName)
}

// Times of the corpus (UTC).
var (
	mailDate = "Tue, 02 Jun 2026 00:00:00 +0000"
	signTime = time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)
)

func main() {
	if len(os.Args) != 4 || (os.Args[1] != "texts" && os.Args[1] != "mails") {
		fmt.Fprintln(os.Stderr, "usage: gen texts|mails WORK DIR   (run ../make-corpus.sh instead)")
		os.Exit(2)
	}
	work, dir := os.Args[2], os.Args[3]
	var err error
	if os.Args[1] == "texts" {
		err = writeTexts(work, dir)
	} else {
		err = writeMails(work, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func writeTexts(work, dir string) error {
	for name, text := range texts {
		if err := writeFile(filepath.Join(work, "text", name+".txt"), []byte(text)); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, "upload", debName), []byte(debContent))
}

// mail is one .eml of the corpus.
type mail struct {
	file      string // under DIR
	from      string
	replyTo   string
	subject   string // as written in the header (encode it yourself)
	messageID string
	inReplyTo string
	charset   string // default us-ascii
	body      string
}

func (m mail) compose() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\n", m.from)
	b.WriteString("To: buildd@example.org\n")
	fmt.Fprintf(&b, "Subject: %s\n", m.subject)
	fmt.Fprintf(&b, "Date: %s\n", mailDate)
	fmt.Fprintf(&b, "Message-ID: <%s>\n", m.messageID)
	if m.inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\n", m.inReplyTo)
	}
	if m.replyTo != "" {
		fmt.Fprintf(&b, "Reply-To: %s\n", m.replyTo)
	}
	cs := m.charset
	if cs == "" {
		cs = "us-ascii"
	}
	enc := "7bit"
	for i := 0; i < len(m.body); i++ {
		if m.body[i] >= 0x80 {
			enc = "8bit"
		}
	}
	b.WriteString("MIME-Version: 1.0\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=%s\n", cs)
	fmt.Fprintf(&b, "Content-Transfer-Encoding: %s\n\n", enc)
	b.WriteString(m.body)
	return []byte(b.String())
}

const (
	admin   = "Admin <admin@example.org>"
	admin2  = "Second Admin <second@example.org>"
	mallory = "Mallory <mallory@example.net>"
)

func logSubject(pkgv, dist string) string {
	return "Re: Log for failed build of " + pkgv + " (dist=" + dist + ")"
}

func logID(pkgv, dist string) string { return "log." + pkgv + "." + dist + "@buildd" }

// reply is a reply to pkgv's log mail in dist carrying body.
func reply(file, from, pkgv, dist, body string) mail {
	return mail{
		file: file, from: from, subject: logSubject(pkgv, dist),
		messageID: "hostile." + strings.ReplaceAll(strings.TrimSuffix(file, ".eml"), "/", ".") + "@example.org",
		inReplyTo: logID(pkgv, dist), body: body,
	}
}

func writeMails(work, dir string) error {
	var missing []string
	need := func(name string) string {
		b, err := os.ReadFile(filepath.Join(work, "sig", name+".asc"))
		if err != nil {
			missing = append(missing, err.Error())
		}
		return string(b)
	}

	giveback := need("giveback-hello")
	retry := need("retry-hello")
	changes := need("changes-hello")
	encronly, err := signWith(filepath.Join(work, "encronly.sec"), true, texts["retry-hello"])
	if err != nil {
		return fmt.Errorf("encronly: %w", err)
	}
	certonly, err := signWith(filepath.Join(work, "certonly.sec"), false, texts["retry-hello"])
	if err != nil {
		return fmt.Errorf("certonly: %w", err)
	}
	variants, err := reencode(giveback)
	if err != nil {
		return fmt.Errorf("re-encoding: %w", err)
	}

	const hello, bookworm = "hello_1.0-1", "bookworm"
	mails := []mail{
		reply("common/retry-hello.eml", admin, hello, bookworm, retry),

		// replay/: one accepted giveback, then copies of its signature.
		reply("replay/accepted.eml", admin, hello, bookworm, giveback),
		reply("replay/old-format-header.eml", admin, hello, bookworm, variants["old-format-header"]),
		reply("replay/new-format-header.eml", admin, hello, bookworm, variants["new-format-header"]),
		reply("replay/extra-unhashed-subpacket.eml", admin, hello, bookworm, variants["extra-unhashed-subpacket"]),
		reply("replay/trailing-marker-packet.eml", admin, hello, bookworm, variants["trailing-marker-packet"]),
		reply("replay/signature-twice.eml", admin, hello, bookworm, variants["signature-twice"]),
		// The admin's signed giveback for hello, sent first by somebody
		// else as a reply to other's log.
		reply("replay/reaimed-copy.eml", mallory, "other_1.0-1", bookworm, giveback),

		// dist/: a giveback signed for bookworm, sent as a reply to the
		// trixie log, then to the bookworm log; one naming no dist.
		reply("dist/giveback-trixie-subject.eml", admin2, "shared_1.0-1", "trixie", need("giveback-shared-bookworm")),
		reply("dist/giveback-bookworm-subject.eml", admin2, "shared_1.0-1", bookworm, need("giveback-shared-bookworm")),
		reply("dist/no-dist.eml", admin2, "shared_1.0-1", bookworm, need("giveback-shared-nodist")),

		// upload/: the signed .changes below quoted text that holds a
		// BEGIN line of its own; the same signed .changes alone.
		withSubject(reply("upload/quoted-begin.eml", admin, hello, bookworm,
			"Buildd wrote:\n> -----BEGIN PGP SIGNED MESSAGE-----\n> Hash: SHA256\n>\n> Format: 1.8\n> Source: hello\n> Version: 1.0-1\n\n"+changes),
			"Re: Log for successful build of hello_1.0-1 (dist=bookworm)"),
		withSubject(reply("upload/plain.eml", admin, hello, bookworm, changes),
			"Re: Log for successful build of hello_1.0-1 (dist=bookworm)"),

		// charset/: a UTF-8 signed text sent as ISO-8859-1.
		withCharset(reply("charset/utf8-text-latin1-header.eml", admin, hello, bookworm, need("fail-utf8")), "iso-8859-1"),

		// log/: a subject that decodes to a line break and an escape.
		{file: "log/encoded-subject.eml", from: "Someone <someone@example.net>",
			subject:   "=?UTF-8?B?" + base64.StdEncoding.EncodeToString([]byte("x\r\nFAKE: injected\x1b[31m")) + "?=",
			messageID: "hostile.log.encoded-subject@example.net", body: "hello\n"},

		// keys/: one signed retry each, all to be refused.
		reply("keys/stranger.eml", admin, hello, bookworm, need("retry-hello.stranger")),
		reply("keys/expired.eml", admin, "oldkey_1.0-1", bookworm, need("retry-oldkey.expired")),
		reply("keys/revoked.eml", admin, hello, bookworm, need("retry-hello.revoked")),
		reply("keys/subrevoked.eml", admin, hello, bookworm, need("retry-hello.subrevoked")),
		reply("keys/encronly.eml", admin, hello, bookworm, encronly),
		reply("keys/certonly.eml", admin, hello, bookworm, certonly),
		reply("keys/sha1.eml", admin, hello, bookworm, need("retry-hello.sha1")),
		reply("keys/future.eml", admin, hello, bookworm, need("retry-hello.future")),
		withReplyTo(reply("keys/unsigned.eml", admin, hello, bookworm, texts["retry-hello"]), "Build Admins <admins@example.org>"),
		reply("keys/tampered.eml", admin, hello, bookworm, strings.Replace(retry, "\nretry\n", "\ngiveback\n", 1)),
		reply("keys/text-outside.eml", admin, hello, bookworm, "giveback\n\n"+retry),
	}

	// notice/: unsigned notices as wanna-build and the archive send them.
	wbBody := func(pkg, old, newv string) string {
		return fmt.Sprintf("As far as I'm informed, you're currently building the package %s\n"+
			"in version %s.\n\n"+
			"Now there's a new source version %s. If you haven't finished\n"+
			"compiling %s yet, you can stop it to save some work.\n"+
			"Just to inform you...\n"+
			"(This is an automated message)\n", pkg, old, newv, pkg)
	}
	wb := "wanna-build <wanna-build@example.org>"
	mails = append(mails,
		mail{file: "notice/new-version-upload-path.eml", from: wb, subject: "new version of ../upload/hello (dist=bookworm)",
			messageID: "hostile.notice.upload-path@example.org", body: wbBody("hello", "1.0-1", "1.0-2")},
		mail{file: "notice/new-version-outside-home.eml", from: wb, subject: "new version of ../../victim (dist=bookworm)",
			messageID: "hostile.notice.outside-home@example.org", body: wbBody("victim", "1.0-1", "1.0-2")},
		mail{file: "notice/new-version.eml", from: wb, subject: "new version of hello_1.0-1 (dist=bookworm)",
			messageID: "hostile.notice.new-version@example.org", body: wbBody("hello", "1.0-1", "1.0-2")},
		mail{file: "notice/installed.eml", from: "Archive Installer <installer@ftp-master.example.org>",
			subject: "hello_1.0-1_amd64.changes INSTALLED", messageID: "hostile.notice.installed@example.org",
			body: "Installing:\nhello_1.0-1_amd64.deb\n  to pool/main/h/hello/hello_1.0-1_amd64.deb\n"},
	)
	if len(missing) > 0 {
		return fmt.Errorf("signatures missing (make-corpus.sh signs them):\n%s", strings.Join(missing, "\n"))
	}
	for _, m := range mails {
		if err := writeFile(filepath.Join(dir, m.file), m.compose()); err != nil {
			return err
		}
	}
	// The signed .changes exactly as gpg wrote it: what upload/ must hold.
	return writeFile(filepath.Join(dir, "upload", "hello_1.0-1_amd64.changes.asc"), []byte(changes))
}

func withSubject(m mail, s string) mail  { m.subject = s; return m }
func withCharset(m mail, cs string) mail { m.charset = cs; return m }
func withReplyTo(m mail, r string) mail  { m.replyTo = r; return m }

// signWith clearsigns text with a key gpg will not sign with: the RSA
// encryption-only subkey (sub) or the certification-only primary key.
func signWith(secFile string, sub bool, text string) (string, error) {
	f, err := os.Open(secFile)
	if err != nil {
		return "", err
	}
	defer f.Close()
	el, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil {
		return "", err
	}
	if len(el) != 1 {
		return "", fmt.Errorf("%s: %d keys, want 1", secFile, len(el))
	}
	e := el[0]
	key := e.PrivateKey
	if sub {
		key = nil
		for _, s := range e.Subkeys {
			if s.PrivateKey != nil && s.PublicKey.PubKeyAlgo == packet.PubKeyAlgoRSA {
				key = s.PrivateKey
			}
		}
	}
	if key == nil || key.Encrypted {
		return "", fmt.Errorf("%s: no usable secret key", secFile)
	}
	no := false
	cfg := &packet.Config{
		DefaultHash:                           crypto.SHA256,
		Time:                                  func() time.Time { return signTime },
		NonDeterministicSignaturesViaNotation: &no,
	}
	var out bytes.Buffer
	w, err := clearsign.Encode(&out, key, cfg)
	if err != nil {
		return "", err
	}
	// As gpg does: the final line end belongs to the armor, not the text.
	if _, err := io.WriteString(w, strings.TrimSuffix(text, "\n")); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	return out.String(), nil
}

const sigBegin = "-----BEGIN PGP SIGNATURE-----"

// reencode returns copies of the clearsigned block cs whose signature
// packet is re-encoded without touching what it signs.
func reencode(cs string) (map[string]string, error) {
	i := strings.Index(cs, "\n"+sigBegin)
	if i < 0 {
		return nil, fmt.Errorf("no signature armor")
	}
	head := cs[:i+1]
	blk, err := armor.Decode(strings.NewReader(cs[i+1:]))
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(blk.Body)
	if err != nil {
		return nil, err
	}
	tag, body, rest, err := splitPacket(raw)
	if err != nil {
		return nil, err
	}
	if tag != 2 || len(rest) != 0 {
		return nil, fmt.Errorf("want one signature packet, got tag %d and %d more bytes", tag, len(rest))
	}
	extra, err := addUnhashedNotation(body, "hostile@buildd.test", "replayed")
	if err != nil {
		return nil, err
	}
	marker := newHeader(10, 3)
	marker = append(marker, "PGP"...)
	out := map[string][]byte{
		// gpg writes an old-format header with a one-byte length: the
		// same packet with an old-format header with a four-byte length.
		"old-format-header": append(oldHeader4(2, len(body)), body...),
		"new-format-header": append(newHeader(2, len(body)), body...),
		// The same hashed area and MPIs, one more unhashed subpacket.
		"extra-unhashed-subpacket": append(oldHeader4(2, len(extra)), extra...),
		"trailing-marker-packet":   append(append([]byte{}, raw...), marker...),
		"signature-twice":          append(append([]byte{}, raw...), raw...),
	}
	res := map[string]string{}
	for name, pkt := range out {
		var b bytes.Buffer
		b.WriteString(head)
		w, err := armor.Encode(&b, "PGP SIGNATURE", nil)
		if err != nil {
			return nil, err
		}
		w.Write(pkt)
		if err := w.Close(); err != nil {
			return nil, err
		}
		b.WriteByte('\n')
		res[name] = b.String()
	}
	return res, nil
}

// splitPacket reads one packet (old or new format, definite length).
func splitPacket(b []byte) (tag int, body, rest []byte, err error) {
	if len(b) < 2 || b[0]&0x80 == 0 {
		return 0, nil, nil, fmt.Errorf("not a packet")
	}
	var n, hl int
	if b[0]&0x40 == 0 { // old format
		tag = int(b[0]>>2) & 0xf
		switch b[0] & 3 {
		case 0:
			n, hl = int(b[1]), 2
		case 1:
			n, hl = int(b[1])<<8|int(b[2]), 3
		case 2:
			n, hl = int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4]), 5
		default:
			return 0, nil, nil, fmt.Errorf("indeterminate length")
		}
	} else {
		tag = int(b[0] & 0x3f)
		switch {
		case b[1] < 192:
			n, hl = int(b[1]), 2
		case b[1] < 224:
			n, hl = (int(b[1])-192)<<8+int(b[2])+192, 3
		case b[1] == 255:
			n, hl = int(b[2])<<24|int(b[3])<<16|int(b[4])<<8|int(b[5]), 6
		default:
			return 0, nil, nil, fmt.Errorf("partial length")
		}
	}
	if hl+n > len(b) {
		return 0, nil, nil, fmt.Errorf("short packet")
	}
	return tag, b[hl : hl+n], b[hl+n:], nil
}

func oldHeader4(tag, n int) []byte {
	return []byte{0x80 | byte(tag)<<2 | 2, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func newHeader(tag, n int) []byte {
	h := []byte{0xc0 | byte(tag)}
	switch {
	case n < 192:
		return append(h, byte(n))
	case n < 8384:
		n -= 192
		return append(h, byte(n>>8)+192, byte(n))
	}
	return append(h, 255, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// addUnhashedNotation adds a non-critical notation subpacket to the
// unhashed area of a v4 signature packet body, leaving the hashed area
// and the signature MPIs as they are.
func addUnhashedNotation(body []byte, name, value string) ([]byte, error) {
	if len(body) < 6 || body[0] != 4 {
		return nil, fmt.Errorf("not a v4 signature")
	}
	hashedEnd := 6 + (int(body[4])<<8 | int(body[5]))
	if hashedEnd+2 > len(body) {
		return nil, fmt.Errorf("short signature")
	}
	ulen := int(body[hashedEnd])<<8 | int(body[hashedEnd+1])
	uEnd := hashedEnd + 2 + ulen
	if uEnd > len(body) {
		return nil, fmt.Errorf("short signature")
	}
	sp := []byte{20, 0x80, 0, 0, 0, byte(len(name) >> 8), byte(len(name)), byte(len(value) >> 8), byte(len(value))}
	sp = append(sp, name...)
	sp = append(sp, value...)
	if len(sp) >= 192 {
		return nil, fmt.Errorf("notation too long")
	}
	sp = append([]byte{byte(len(sp))}, sp...)
	nlen := ulen + len(sp)
	out := append([]byte{}, body[:hashedEnd]...)
	out = append(out, byte(nlen>>8), byte(nlen))
	out = append(out, body[hashedEnd+2:uEnd]...)
	out = append(out, sp...)
	out = append(out, body[uEnd:]...)
	return out, nil
}

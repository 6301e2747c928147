// Package message owns the reading of mail that reaches buildd-mail: the
// header fields (encoded words decoded), the text body (quoted-printable,
// base64 and charsets decoded) and the two signed forms (an inline
// clearsigned body, RFC 3156 PGP/MIME with the signed part kept byte for
// byte in its canonical CRLF form). It reads every mail within fixed
// bounds (limits.go): size, header size and fields, multipart depth and
// parts. What a mail says (its subject, an admin's keywords) is reply's.
package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Mail is one parsed incoming mail.
type Mail struct {
	Header    mail.Header
	From      string // as written (encoded words decoded)
	FromAddr  string // the bare address
	ReplyTo   string
	To, Cc    string
	Subject   string // encoded words decoded
	MessageID string // without <>
	InReplyTo string // without <>
	Date      string

	// Body is the text a person reads: the text/plain body (for PGP/MIME the
	// signed part's text, for other multiparts the first text/plain part),
	// transfer encoding and charset decoded, LF line ends, valid UTF-8
	// (what is not is replaced by U+FFFD).
	Body string
	// BodyBytes is the text/plain body with only the transfer encoding
	// decoded: the bytes an inline clearsigned signature covers.
	BodyBytes []byte
	Charset   string

	// PGPMIME is set for multipart/signed mail: SignedPart is the first part
	// exactly as it was sent, headers included, in canonical CRLF form;
	// Signature the second part's body.
	PGPMIME    bool
	SignedPart []byte
	Signature  []byte
	Micalg     string

	// HeaderText is the raw header block, for forwarding.
	HeaderText []byte
	// RawBody is the body exactly as received.
	RawBody []byte
}

// Error is a mail that cannot be read; Part says where.
type Error struct {
	Part string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("mail %s: %v", e.Part, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Parse reads a mail as the MTA delivered it (an mbox "From " line first is
// skipped; LF or CRLF line ends). Every error is an *Error. A mail whose
// header is read but not its body is returned with the error.
func Parse(raw []byte) (*Mail, error) {
	if len(raw) > MaxSize {
		return nil, &Error{"size", fmt.Errorf("%d bytes, more than %d", len(raw), MaxSize)}
	}
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		} else {
			raw = nil
		}
	}
	h, n, err := readHeader(raw)
	if err != nil {
		return nil, &Error{"header", err}
	}
	m := &Mail{Header: mail.Header{Header: h}, HeaderText: raw[:n], RawBody: raw[n:]}

	text := func(k string) string {
		v, err := m.Header.Text(k)
		if err != nil {
			return m.Header.Get(k)
		}
		return strings.TrimSpace(v)
	}
	m.From = text("From")
	m.ReplyTo = text("Reply-To")
	m.To = text("To")
	m.Cc = text("Cc")
	m.Subject = text("Subject")
	m.Date = m.Header.Get("Date")
	m.FromAddr = bareAddress(m.From)
	if id, ok := firstMsgID(m.Header.Get("Message-Id")); ok {
		m.MessageID = id
	} else {
		m.MessageID = strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>")
	}
	if id, ok := firstMsgID(m.Header.Get("In-Reply-To")); ok {
		m.InReplyTo = id
	} else if v := strings.Fields(m.Header.Get("In-Reply-To")); len(v) > 0 {
		m.InReplyTo = strings.Trim(v[0], "<>")
	}

	mt, params, err := contentType(m.Header.Header)
	if err != nil && m.Header.Get("Content-Type") != "" {
		return m, &Error{"Content-Type", err}
	}
	if mt == "" {
		mt = "text/plain"
	}
	switch {
	case mt == "multipart/signed":
		return m, m.parseSigned(params)
	case strings.HasPrefix(mt, "multipart/"):
		w := walker{m: m}
		return m, w.multipart(m.RawBody, mt, params["boundary"], "", 1)
	}
	return m, m.setText("body", m.Header.Header, m.RawBody, mt, params)
}

// contentType parses the Content-Type field as go-message does (text/plain
// when there is none, the whole value as the type when it cannot be
// parsed), but keeps the parameters as written: go-message decodes RFC 2047
// encoded words in them, and a boundary such as "=?utf-8?q?x?=" would then
// not be the one the delimiter lines use.
func contentType(h message.Header) (string, map[string]string, error) {
	v := h.Get("Content-Type")
	if v == "" {
		return "text/plain", nil, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return v, nil, err
	}
	return mt, params, nil
}

// readHeader reads the header block that starts b, within MaxHeaderSize
// and MaxHeaderFields, and returns it and its length.
func readHeader(b []byte) (message.Header, int, error) {
	n, err := headerEnd(b)
	if err != nil {
		return message.Header{}, 0, err
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b[:n])))
	if err != nil {
		return message.Header{}, 0, err
	}
	return message.Header{Header: h}, n, nil
}

// firstMsgID returns the first msg-id (RFC 5322 3.6.4) of a Message-ID,
// In-Reply-To or References field, without <>, comments before it skipped;
// ok is false when the field does not start with one. (go-message's
// MsgIDList takes time quadratic in the length of a comment.)
func firstMsgID(v string) (id string, ok bool) {
	s, ok := skipCFWS(v)
	if !ok || !strings.HasPrefix(s, "<") {
		return "", false
	}
	end := strings.IndexByte(s, '>')
	if end < 0 {
		return "", false
	}
	left, right, _ := strings.Cut(s[1:end], "@")
	if lit, isLit := strings.CutPrefix(right, "["); isLit {
		lit, ok = strings.CutSuffix(lit, "]")
		ok = ok && validText(lit, func(r rune) bool { return r != '[' && r != ']' && r != '\\' })
	} else {
		ok = dotAtomText(right)
	}
	if !ok || !dotAtomText(left) {
		return "", false
	}
	return s[1:end], true
}

// skipCFWS skips the white space and (nested) comments that start s; ok is
// false when a comment is not closed.
func skipCFWS(s string) (rest string, ok bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && c != ' ' && c != '\t':
			return s[i:], true
		}
	}
	return "", depth == 0
}

// dotAtomText reports whether s is a non-empty run of RFC 5322 atext and
// dots (UTF-8 allowed, RFC 6532).
func dotAtomText(s string) bool {
	return s != "" && validText(s, func(r rune) bool { return !strings.ContainsRune("()[];@\\,<>\":", r) })
}

// validText reports whether s is valid UTF-8 of visible characters that ok
// accepts.
func validText(s string, ok func(rune) bool) bool {
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 || r < '!' || r == 0x7f || !ok(r) {
			return false
		}
		s = s[n:]
	}
	return true
}

// bareAddress returns the address of a From-like field; what cannot be
// parsed is taken from <...> or as written.
func bareAddress(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return strings.TrimSpace(s)
}

// setText decodes a text body: transfer encoding into BodyBytes, then the
// charset into Body. where names the body in errors.
func (m *Mail) setText(where string, h message.Header, body []byte, mt string, params map[string]string) error {
	dh := message.Header{}
	dh.Set("Content-Transfer-Encoding", h.Get("Content-Transfer-Encoding"))
	e, err := message.New(dh, bytes.NewReader(body))
	if err != nil {
		return &Error{where, err}
	}
	b, err := io.ReadAll(e.Body)
	if err != nil {
		return &Error{where, fmt.Errorf("%s: %w", h.Get("Content-Transfer-Encoding"), err)}
	}
	m.BodyBytes = b
	m.Charset = params["charset"]
	if !strings.HasPrefix(mt, "text/") {
		m.Body = strings.ToValidUTF8(string(b), "\uFFFD")
		return nil
	}
	s, err := Decode(b, m.Charset)
	if err != nil {
		m.Body = strings.ToValidUTF8(string(b), "\uFFFD")
		return &Error{where, err}
	}
	m.Body = strings.ToValidUTF8(strings.ReplaceAll(s, "\r\n", "\n"), "\uFFFD")
	return nil
}

var errNoBoundary = errors.New("no boundary parameter in Content-Type")

// parseSigned splits an RFC 3156 multipart/signed body into its signed
// part, kept byte for byte, and its signature.
func (m *Mail) parseSigned(params map[string]string) error {
	m.PGPMIME = true
	m.Micalg = strings.ToLower(params["micalg"])
	if p := strings.ToLower(params["protocol"]); p != "application/pgp-signature" {
		return &Error{"Content-Type", fmt.Errorf("multipart/signed protocol %q is not application/pgp-signature", p)}
	}
	parts, err := splitMultipart(m.RawBody, params["boundary"], MaxParts)
	if err != nil {
		return &Error{"multipart/signed body", err}
	}
	if len(parts) != 2 {
		return &Error{"multipart/signed body", fmt.Errorf("%d parts, want 2 (the text and the signature)", len(parts))}
	}
	m.SignedPart = canonicalCRLF(parts[0])
	sh, sbody, err := readPart(parts[1])
	if err != nil {
		return &Error{"signature part", err}
	}
	if t, _, _ := contentType(sh); t != "application/pgp-signature" {
		return &Error{"signature part", fmt.Errorf("Content-Type %q, want application/pgp-signature", t)}
	}
	m.Signature = sbody
	h, body, err := readPart(parts[0])
	if err != nil {
		return &Error{"signed part", err}
	}
	mt, p, _ := contentType(h)
	if mt == "" {
		mt = "text/plain"
	}
	if mt != "text/plain" {
		return &Error{"signed part", fmt.Errorf("Content-Type %q: the signed part must be text/plain", mt)}
	}
	return m.setText("body", h, body, mt, p)
}

// readPart splits a body part into its header and its body.
func readPart(b []byte) (message.Header, []byte, error) {
	h, n, err := readHeader(b)
	if err != nil {
		return message.Header{}, nil, err
	}
	return h, b[n:], nil
}

// splitMultipart returns the parts of a multipart body as sent: each from
// after its delimiter line to before the line end preceding the next
// delimiter (RFC 2046 5.1.1: that line end belongs to the delimiter). More
// than max parts is errTooManyParts. It takes one pass over body, looking
// at the lines that start with the delimiter only.
func splitMultipart(body []byte, boundary string, max int) ([][]byte, error) {
	if boundary == "" {
		return nil, errNoBoundary
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	for pos := 0; ; {
		i := bytes.Index(body[pos:], delim)
		if i < 0 {
			break
		}
		at := pos + i
		if pos = at + len(delim); at > 0 && body[at-1] != '\n' {
			continue
		}
		// The delimiter is the line: "--" may close it, white space end it.
		next := pos
		closing := bytes.HasPrefix(body[next:], []byte("--"))
		if closing {
			next += 2
		}
		for next < len(body) && (body[next] == ' ' || body[next] == '\t' || body[next] == '\r') {
			next++
		}
		if next < len(body) {
			if body[next] != '\n' {
				continue
			}
			next++
		}
		if start >= 0 {
			if len(parts) == max {
				return nil, errTooManyParts
			}
			stop := at
			if stop > start && body[stop-1] == '\n' {
				stop--
				if stop > start && body[stop-1] == '\r' {
					stop--
				}
			}
			parts = append(parts, body[start:stop])
		}
		if closing {
			return parts, nil
		}
		start, pos = next, next
	}
	return nil, fmt.Errorf("no closing boundary %q", "--"+boundary+"--")
}

// canonicalCRLF gives every line a CRLF end, as RFC 3156 signs it.
func canonicalCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

var mailerDaemonRE = regexp.MustCompile(`(?i)mail\s+delivery\s+(sub)?system|mailer.\s*daemon`)

// FromMailerDaemon reports whether the mail is an error mail from a mailer
// daemon, by the classic pattern on From.
func (m *Mail) FromMailerDaemon() bool { return mailerDaemonRE.MatchString(m.From) }

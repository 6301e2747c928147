// Package reply owns the reading of mail that reaches buildd-mail: the
// header fields (encoded words decoded), the text body (quoted-printable,
// base64 and charsets decoded), the two signed forms (an inline clearsigned
// body, RFC 3156 PGP/MIME with the signed part kept byte for byte in its
// canonical CRLF form), the subjects buildd-mail recognises and the keywords
// of an admin's reply.
package reply

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

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
	// signed part's text), transfer encoding and charset decoded, LF line ends.
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
// skipped; LF or CRLF line ends).
func Parse(raw []byte) (*Mail, error) {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		} else {
			raw = nil
		}
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, &Error{"header", err}
	}
	m := &Mail{Header: mail.Header{Header: message.Header{Header: th}}}
	m.RawBody, _ = io.ReadAll(br)
	m.HeaderText = raw[:len(raw)-len(m.RawBody)]

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
	if id, err := m.Header.MessageID(); err == nil {
		m.MessageID = id
	} else {
		m.MessageID = strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>")
	}
	if ids, err := m.Header.MsgIDList("In-Reply-To"); err == nil && len(ids) > 0 {
		m.InReplyTo = ids[0]
	} else if v := strings.Fields(m.Header.Get("In-Reply-To")); len(v) > 0 {
		m.InReplyTo = strings.Trim(v[0], "<>")
	}

	mt, params, err := m.Header.ContentType()
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
		return m, m.firstText()
	}
	return m, m.setText(m.Header.Header, m.RawBody, mt, params)
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
// charset into Body.
func (m *Mail) setText(h message.Header, body []byte, mt string, params map[string]string) error {
	dh := message.Header{}
	dh.Set("Content-Transfer-Encoding", h.Get("Content-Transfer-Encoding"))
	e, err := message.New(dh, bytes.NewReader(body))
	if err != nil {
		return &Error{"body", err}
	}
	b, err := io.ReadAll(e.Body)
	if err != nil {
		return &Error{"body", fmt.Errorf("%s: %w", h.Get("Content-Transfer-Encoding"), err)}
	}
	m.BodyBytes = b
	m.Charset = params["charset"]
	if !strings.HasPrefix(mt, "text/") {
		m.Body = string(b)
		return nil
	}
	s, err := Decode(b, m.Charset)
	if err != nil {
		m.Body = string(b)
		return &Error{"body", err}
	}
	m.Body = strings.ReplaceAll(s, "\r\n", "\n")
	return nil
}

// firstText finds the first text/plain part of an unsigned multipart mail.
func (m *Mail) firstText() error {
	e, err := message.Read(bytes.NewReader(append(append([]byte{}, m.HeaderText...), m.RawBody...)))
	if err != nil && e == nil {
		return &Error{"body", err}
	}
	var found bool
	walkErr := e.Walk(func(path []int, part *message.Entity, err error) error {
		if err != nil || found {
			return nil
		}
		if t, params, _ := part.Header.ContentType(); t == "text/plain" {
			b, err := io.ReadAll(part.Body)
			if err != nil {
				return err
			}
			found = true
			m.Charset = params["charset"]
			m.BodyBytes = b
			m.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
		}
		return nil
	})
	if walkErr != nil {
		return &Error{"multipart body", walkErr}
	}
	return nil
}

var errNoBoundary = errors.New("multipart/signed without a boundary")

// parseSigned splits an RFC 3156 multipart/signed body into its signed
// part, kept byte for byte, and its signature.
func (m *Mail) parseSigned(params map[string]string) error {
	m.PGPMIME = true
	m.Micalg = strings.ToLower(params["micalg"])
	if p := strings.ToLower(params["protocol"]); p != "application/pgp-signature" {
		return &Error{"Content-Type", fmt.Errorf("multipart/signed protocol %q is not application/pgp-signature", p)}
	}
	parts, err := splitMultipart(m.RawBody, params["boundary"])
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
	if t, _, _ := sh.ContentType(); t != "application/pgp-signature" {
		return &Error{"signature part", fmt.Errorf("Content-Type %q, want application/pgp-signature", t)}
	}
	m.Signature = sbody
	h, body, err := readPart(parts[0])
	if err != nil {
		return &Error{"signed part", err}
	}
	mt, p, _ := h.ContentType()
	if mt == "" {
		mt = "text/plain"
	}
	if mt != "text/plain" {
		return &Error{"signed part", fmt.Errorf("Content-Type %q: the signed part must be text/plain", mt)}
	}
	return m.setText(h, body, mt, p)
}

func readPart(b []byte) (message.Header, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(b))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return message.Header{}, nil, err
	}
	rest, _ := io.ReadAll(br)
	return message.Header{Header: th}, rest, nil
}

// splitMultipart returns the parts of a multipart body as sent: each from
// after its delimiter line to before the line end preceding the next
// delimiter (RFC 2046 5.1.1: that line end belongs to the delimiter).
func splitMultipart(body []byte, boundary string) ([][]byte, error) {
	if boundary == "" {
		return nil, errNoBoundary
	}
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	pos := 0
	for pos <= len(body) {
		end := bytes.IndexByte(body[pos:], '\n')
		lineEnd := len(body)
		next := len(body) + 1
		if end >= 0 {
			lineEnd = pos + end
			next = lineEnd + 1
		}
		line := bytes.TrimRight(body[pos:lineEnd], " \t\r")
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			closing := bytes.Equal(rest, []byte("--"))
			if len(rest) == 0 || closing {
				if start >= 0 {
					stop := pos
					if stop > start && body[stop-1] == '\n' {
						stop--
						if stop > start && body[stop-1] == '\r' {
							stop--
						}
					}
					if stop < start {
						stop = start
					}
					parts = append(parts, body[start:stop])
				}
				if closing {
					return parts, nil
				}
				start = next
				if start > len(body) {
					start = len(body)
				}
			}
		}
		pos = next
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

// Package mailer composes the suite's outgoing mail (log mails, questions,
// error replies, reports) with go-message and delivers it one of three ways:
// SMTP through go-smtp (config key smtp = "host:port"), a sendmail-compatible
// program (sendmail), or the Maildir outbox (outbox, the default), so a fresh
// host works with no MTA at all.
//
// A mail that cannot be delivered is never dropped: it is written to the
// spool directory and delivered again by Flush, which every program calls at
// the start of its run.
package mailer

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"buildd/internal/atomicfile"
	"buildd/internal/config"
)

// Message is an outgoing plain-text mail.
type Message struct {
	From      string
	To        []string
	Subject   string
	InReplyTo string // a Message-ID, with or without <>
	// MessageID is set by Compose when empty; read it back afterwards to
	// record it.
	MessageID string
	// Header holds further fields (X-Buildd-*, References, Auto-Submitted).
	Header map[string]string
	Body   string
	Date   time.Time
}

// Compose renders m as an RFC 5322 message: UTF-8 text/plain, the subject as
// encoded words when needed, the body quoted-printable when it is not plain
// 7-bit text with short lines.
func (m *Message) Compose() ([]byte, error) {
	var h mail.Header
	if m.Date.IsZero() {
		m.Date = time.Now()
	}
	h.SetDate(m.Date)
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		from = &mail.Address{Address: m.From}
	}
	from.Address = envelopeAddr(from.Address)
	h.SetAddressList("From", []*mail.Address{from})
	var to []*mail.Address
	for _, t := range m.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			a = &mail.Address{Address: t}
		}
		a.Address = envelopeAddr(a.Address)
		to = append(to, a)
	}
	h.SetAddressList("To", to)
	h.SetSubject(m.Subject)
	if m.MessageID == "" {
		if err := h.GenerateMessageID(); err != nil {
			return nil, err
		}
		m.MessageID, _ = h.MessageID()
	} else {
		h.SetMessageID(strings.Trim(m.MessageID, "<>"))
	}
	if m.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{strings.Trim(m.InReplyTo, "<>")})
	}
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.SetText(k, m.Header[k])
	}
	h.Set("MIME-Version", "1.0")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	body := m.Body
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	enc := "7bit"
	if needsQP(body) {
		enc = "quoted-printable"
	}
	h.Set("Content-Transfer-Encoding", enc)

	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func needsQP(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		if len(line) > 900 {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || (s[i] < 0x20 && s[i] != '\n' && s[i] != '\t') {
			return true
		}
	}
	return false
}

// Mailer delivers composed mail by the configured way.
type Mailer struct {
	SMTP     string // host:port
	Sendmail string // program, e.g. "/usr/sbin/sendmail"
	Outbox   string // Maildir
	Spool    string // undeliverable mail waits here
	From     string // default From
}

// New returns the mailer the config describes; the spool lives in home.
func New(c *config.Config) *Mailer {
	return &Mailer{
		SMTP:     c.SMTP,
		Sendmail: c.Sendmail,
		Outbox:   c.Outbox,
		Spool:    filepath.Join(c.Home, "mail-spool"),
		From:     c.MailFrom,
	}
}

// Send composes m and delivers it. When delivery fails the mail is spooled
// for Flush and the error says so; only a mail that could not even be
// spooled is lost to the caller, who gets that error.
func (mr *Mailer) Send(m *Message) error {
	if m.From == "" {
		m.From = mr.From
	}
	raw, err := m.Compose()
	if err != nil {
		return fmt.Errorf("compose %q: %w", m.Subject, err)
	}
	return mr.SendRaw(envelopeAddr(m.From), envelopeAddrs(m.To), raw)
}

// SendRaw delivers an already composed message (a forward, say) to the
// envelope recipients, spooling it when delivery fails.
func (mr *Mailer) SendRaw(from string, to []string, raw []byte) error {
	err := mr.deliver(from, to, raw)
	if err == nil {
		return nil
	}
	if serr := mr.spool(from, to, raw); serr != nil {
		return fmt.Errorf("deliver: %v; spool: %w", err, serr)
	}
	return fmt.Errorf("deliver (kept in %s for retry): %w", mr.Spool, err)
}

func (mr *Mailer) deliver(from string, to []string, raw []byte) error {
	switch {
	case mr.SMTP != "":
		return sendSMTP(mr.SMTP, from, to, raw)
	case mr.Sendmail != "":
		args := append([]string{"-oi", "-f", from, "--"}, to...)
		cmd := exec.Command(mr.Sendmail, args...)
		cmd.Stdin = bytes.NewReader(raw)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", mr.Sendmail, err, strings.TrimSpace(string(out)))
		}
		return nil
	case mr.Outbox != "":
		_, err := DeliverMaildir(mr.Outbox, raw)
		return err
	}
	return errors.New("no way to send mail: set smtp, sendmail or outbox")
}

// sendSMTP speaks SMTP to addr with go-smtp. A relay on this host
// (localhost, a loopback address) gets plain SMTP: TLS there protects
// nothing and local MTAs commonly offer self-signed certificates. Any other
// relay gets STARTTLS, verified, when it offers it, plain SMTP otherwise.
func sendSMTP(addr, from string, to []string, raw []byte) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("smtp %q: %w", addr, err)
	}
	var c *smtp.Client
	if isLoopback(host) {
		c, err = smtp.Dial(addr)
	} else {
		c, err = smtp.DialStartTLS(addr, &tls.Config{ServerName: host})
		if err != nil && strings.Contains(err.Error(), "doesn't support STARTTLS") {
			c, err = smtp.Dial(addr)
		}
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Hostname is the name the suite's mail gives this host: the domain of its
// Message-IDs and of unqualified envelope addresses, the tag of its spool and
// Maildir file names, and the host a mail's text says a file is on. It is
// "localhost" when the system has no name.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// spool file format: "from\tto1,to2\n" then the raw message.
func (mr *Mailer) spool(from string, to []string, raw []byte) error {
	if err := os.MkdirAll(mr.Spool, 0o700); err != nil {
		return err
	}
	data := append([]byte(from+"\t"+strings.Join(to, ",")+"\n"), raw...)
	return atomicfile.WriteFile(filepath.Join(mr.Spool, uniqueName()), data, 0o600)
}

// Flush retries every spooled mail, removing each once delivered. It
// returns how many are still waiting.
func (mr *Mailer) Flush() (int, error) {
	ents, err := os.ReadDir(mr.Spool)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	left := 0
	var firstErr error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(mr.Spool, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		env, raw, ok := bytes.Cut(data, []byte("\n"))
		from, tos, ok2 := strings.Cut(string(env), "\t")
		if !ok || !ok2 {
			left++
			continue
		}
		if err := mr.deliver(from, strings.Split(tos, ","), raw); err != nil {
			left++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		os.Remove(p)
	}
	return left, firstErr
}

var seq atomic.Uint64

func uniqueName() string {
	host := strings.NewReplacer("/", "_", ":", "_").Replace(Hostname())
	return fmt.Sprintf("%d.P%dQ%d.%s", time.Now().UnixNano(), os.Getpid(), seq.Add(1), host)
}

// DeliverMaildir writes raw into the Maildir dir (creating tmp, new, cur):
// into tmp, fsynced, then renamed into new. It returns the new file's path.
func DeliverMaildir(dir string, raw []byte) (string, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return "", err
		}
	}
	name := uniqueName()
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	f.Close()
	dst := filepath.Join(dir, "new", name)
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return dst, atomicfile.SyncDir(filepath.Join(dir, "new"))
}

// envelopeAddr is the bare address of s for the SMTP envelope; a local
// name without a domain ("root", "buildd") is qualified with the host name,
// as sendmail does, since SMTP servers refuse unqualified senders.
func envelopeAddr(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		s = a.Address
	}
	if s != "" && !strings.Contains(s, "@") {
		s += "@" + Hostname()
	}
	return s
}

func envelopeAddrs(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, envelopeAddr(s))
	}
	return out
}

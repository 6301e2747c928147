// Package mailer composes the suite's outgoing mail (log mails, questions,
// error replies, reports) with go-message and delivers it one of three ways:
// SMTP through go-smtp (config key smtp = "host:port"), a sendmail-compatible
// program (sendmail), or the Maildir outbox (outbox, the default), so a fresh
// host works with no MTA at all. It owns the home's mail-spool/.
//
// Every envelope address is one plain address (see Mailbox): a mail is
// never handed to an MTA with a recipient that could name several.
//
// A mail the MTA refuses for good (an SMTP 5xx reply; a sendmail exit
// status sysexits(3) calls permanent) is dropped and the caller told so. A
// mail that fails otherwise is written to the spool, with its attempts and
// when it may be tried again, and delivered again by Flush, which every
// program calls at the start of its run: as an MTA does, Flush retries a
// mail only once its wait is over (a minute after the first failure, the
// wait doubling up to an hour) and gives up on it five days after it was
// spooled. The spool holds at most 1000 mails and 100 MiB: when it is full
// a mail that fails is lost and the caller told so.
package mailer

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/flock"
	"buildd/internal/home"
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

// NewMessageID returns a new Message-ID (without <>), for a mail whose
// id must be recorded before it is sent.
func NewMessageID() (string, error) {
	var h mail.Header
	if err := h.GenerateMessageID(); err != nil {
		return "", err
	}
	return h.MessageID()
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
	// Now is the clock of the spool's retry times (nil: time.Now).
	Now func() time.Time
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

func (mr *Mailer) now() time.Time {
	if mr.Now != nil {
		return mr.Now()
	}
	return time.Now()
}

// ErrPermanent is wrapped by the error of a mail that is dropped, not
// spooled: the MTA refused it for good, or an envelope address is not one
// plain address.
var ErrPermanent = errors.New("refused for good, not kept for retry")

// Send composes m and delivers it. When delivery fails for the moment the
// mail is spooled for Flush and the error says so; a mail refused for good
// (ErrPermanent) or that could not be spooled is lost, and the error says
// that.
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
// envelope recipients, spooling it when delivery fails for the moment.
func (mr *Mailer) SendRaw(from string, to []string, raw []byte) error {
	rcpts := strings.Join(to, ",")
	if err := checkEnvelope(from, to); err != nil {
		return fmt.Errorf("deliver from %s to %s: %w: %w", clip(from), clip(rcpts), ErrPermanent, err)
	}
	err := mr.deliver(from, to, raw)
	if err == nil {
		return nil
	}
	if permanent(err) {
		return fmt.Errorf("deliver to %s: %w: %w", rcpts, ErrPermanent, err)
	}
	if serr := mr.spool(from, to, raw); serr != nil {
		return fmt.Errorf("deliver to %s: %w; not kept for retry: %w", rcpts, err, serr)
	}
	return fmt.Errorf("deliver to %s (kept in %s for retry): %w", rcpts, mr.Spool, err)
}

// deliver hands the mail to the configured way once; the addresses have
// passed checkEnvelope.
func (mr *Mailer) deliver(from string, to []string, raw []byte) error {
	switch {
	case mr.SMTP != "":
		return sendSMTP(mr.SMTP, from, to, raw)
	case mr.Sendmail != "":
		args := append([]string{"-oi", "-f", from, "--"}, to...)
		cmd := exec.Command(mr.Sendmail, args...)
		cmd.Stdin = bytes.NewReader(raw)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", mr.Sendmail, err, strings.TrimSpace(string(out)))
		}
		return nil
	case mr.Outbox != "":
		_, err := DeliverMaildir(mr.Outbox, raw)
		return err
	}
	return errors.New("no way to send mail: set smtp, sendmail or outbox")
}

// permanentExits are the sendmail exit statuses sysexits(3) gives to a
// failure that a retry cannot mend: EX_DATAERR (65), EX_NOUSER (67),
// EX_NOHOST (68), EX_NOPERM (77). Every other status (EX_UNAVAILABLE,
// EX_SOFTWARE, EX_OSERR, EX_IOERR, EX_TEMPFAIL, EX_USAGE among them) is
// taken as temporary.
var permanentExits = map[int]bool{65: true, 67: true, 68: true, 77: true}

// permanent reports whether a delivery error is a refusal for good: an
// SMTP 5xx reply, or a sendmail exit status in permanentExits.
func permanent(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code >= 500 && se.Code <= 599
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return permanentExits[ee.ExitCode()]
	}
	return false
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
	// The server took the mail at the end of DATA: a failed QUIT must not
	// have it sent again.
	c.Quit()
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Hostname is the name the suite's mail gives this host: the domain of its
// Message-IDs and of unqualified addresses, the tag of its spool and
// Maildir file names, the host a mail's subject or text names, and the
// domain buildd-mail's listener greets with. It is "localhost" when the
// system has no name.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// The spool's bounds: a mail that fails for the moment while the spool
// holds spoolMaxFiles mails, or would take it past spoolMaxBytes, is not
// spooled (the caller is told so).
const (
	spoolMaxFiles = 1000
	spoolMaxBytes = 100 << 20
)

// The spool's retry times, as an MTA's queue: a spooled mail is tried again
// retryFirst after its first failure, the wait doubling with each further
// failure up to retryMax; a mail still failing retryFor after it was
// spooled is dropped (Postfix's maximal_queue_lifetime).
const (
	retryFirst = time.Minute
	retryMax   = time.Hour
	retryFor   = 5 * 24 * time.Hour
)

// badSuffix ends the name of a spool file Flush could not read, kept
// aside for the admin. The spool's locks are beside it (see package home):
// SPOOL.lock, held while a mail is added, and SPOOL.flush.lock, held by
// the one Flush at work.
const badSuffix = ".bad"

// retryWait is the wait after the n-th failed attempt (n >= 1).
func retryWait(n int) time.Duration {
	w := retryFirst
	for i := 1; i < n && w < retryMax; i++ {
		w *= 2
	}
	return min(w, retryMax)
}

// spooled is one spool file. On disk it is an envelope line and the raw
// message after it. The line is tab-separated:
//
//	FROM \t TO1,TO2 \t RECIPIENTS \t ATTEMPTS \t FIRST \t NEXT
//
// RECIPIENTS is how many addresses TO holds, ATTEMPTS how many deliveries
// failed, FIRST when the mail was spooled and NEXT when it may be tried
// again (Unix seconds). A file of the first format, "FROM \t TO1,TO2",
// is read as spooled at its modification time, never tried, and due.
type spooled struct {
	from     string
	to       []string
	attempts int
	first    time.Time
	next     time.Time
	raw      []byte
}

func (s *spooled) encode() ([]byte, error) {
	if err := checkEnvelope(s.from, s.to); err != nil {
		return nil, err
	}
	env := fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\n", s.from, strings.Join(s.to, ","), len(s.to), s.attempts, s.first.Unix(), s.next.Unix())
	return append([]byte(env), s.raw...), nil
}

// decodeSpooled reads a spool file's contents; mtime is the file's
// modification time, the spooling time of the first format.
func decodeSpooled(data []byte, mtime time.Time) (*spooled, error) {
	env, raw, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return nil, errors.New("no envelope line")
	}
	f := strings.Split(string(env), "\t")
	if len(f) != 2 && len(f) != 6 {
		return nil, fmt.Errorf("envelope line has %d fields, want 2 or 6", len(f))
	}
	s := &spooled{from: f[0], to: strings.Split(f[1], ","), first: mtime, raw: raw}
	if len(f) == 6 {
		var n [4]int64
		for i, v := range f[2:] {
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil || x < 0 {
				return nil, fmt.Errorf("envelope field %d: %q is not a count or a time", i+3, v)
			}
			n[i] = x
		}
		if n[0] != int64(len(s.to)) {
			return nil, fmt.Errorf("names %d recipients, spooled with %d", len(s.to), n[0])
		}
		s.attempts, s.first, s.next = int(min(n[1], 1<<30)), time.Unix(n[2], 0), time.Unix(n[3], 0)
	}
	if err := checkEnvelope(s.from, s.to); err != nil {
		return nil, err
	}
	return s, nil
}

// spool adds a mail that failed its first attempt, under the spool's lock,
// unless the spool is full.
func (mr *Mailer) spool(from string, to []string, raw []byte) error {
	now := mr.now()
	s := &spooled{from: from, to: to, attempts: 1, first: now, next: now.Add(retryWait(1)), raw: raw}
	data, err := s.encode()
	if err != nil {
		return fmt.Errorf("spool %s: %w", mr.Spool, err)
	}
	if err := os.MkdirAll(mr.Spool, 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	l, err := home.LockFile(mr.Spool, home.LockTimeout)
	if err != nil {
		return fmt.Errorf("spool %s: %w", mr.Spool, err)
	}
	defer l.Unlock()
	files, size, bad, err := mr.usage()
	if err != nil {
		return fmt.Errorf("spool %s: %w", mr.Spool, err)
	}
	if files+1 > spoolMaxFiles || size+int64(len(data)) > spoolMaxBytes {
		return fmt.Errorf("spool %s full: it holds %d mails, %d bytes (%d kept aside as *%s), no room for %d bytes more (at most %d mails, %d bytes)",
			mr.Spool, files, size, bad, badSuffix, len(data), spoolMaxFiles, spoolMaxBytes)
	}
	return atomicfile.WriteFile(filepath.Join(mr.Spool, uniqueName()), data, 0o600)
}

// usage counts the spool's files (those kept aside included; not the
// hidden temporary files of atomicfile) and their bytes.
func (mr *Mailer) usage() (files int, size int64, bad int, err error) {
	ents, err := os.ReadDir(mr.Spool)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files++
		if strings.HasSuffix(e.Name(), badSuffix) {
			bad++
		}
		if fi, err := e.Info(); err == nil {
			size += fi.Size()
		}
	}
	return files, size, bad, nil
}

// Flush retries the spooled mails that are due, oldest first: it removes
// each once delivered, drops one refused for good or still failing
// retryFor after it was spooled, and sets the next try of the others. A
// file it cannot read as a spooled mail is renamed to NAME.bad, kept aside
// for the admin, never retried. Only one Flush works on a spool at a time:
// another returns at once. Flush returns how many mails still wait, and an
// error naming each file it dropped, kept aside or failed to deliver, with
// why.
func (mr *Mailer) Flush() (int, error) {
	if _, err := os.Stat(mr.Spool); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	l, err := home.TryLock(mr.Spool + ".flush")
	if errors.Is(err, flock.ErrLocked) {
		files, _, bad, _ := mr.usage()
		return files - bad, nil
	}
	if err != nil {
		return 0, fmt.Errorf("flush %s: %w", mr.Spool, err)
	}
	defer l.Unlock()
	ents, err := os.ReadDir(mr.Spool)
	if err != nil {
		return 0, fmt.Errorf("flush %s: %w", mr.Spool, err)
	}
	left := 0
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), badSuffix) {
			continue
		}
		wait, err := mr.retry(filepath.Join(mr.Spool, e.Name()))
		if wait {
			left++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return left, errors.Join(errs...)
}

// retry tries the spooled mail at p if it is due, under Flush's lock; it
// reports whether the mail still waits, and an error for a failed attempt,
// a drop or a damaged file.
func (mr *Mailer) retry(p string) (wait bool, err error) {
	s, err := readSpooled(p)
	if err != nil {
		if rerr := os.Rename(p, p+badSuffix); rerr != nil {
			return false, fmt.Errorf("spool %s: %w; keeping it aside: %w", p, err, rerr)
		}
		return false, fmt.Errorf("spool %s: %w; kept aside as %s%s, not retried", p, err, filepath.Base(p), badSuffix)
	}
	now := mr.now()
	if now.Before(s.next) {
		return true, nil
	}
	rcpts := strings.Join(s.to, ",")
	derr := mr.deliver(s.from, s.to, s.raw)
	switch {
	case derr == nil:
		return false, removeSpooled(p)
	case permanent(derr):
		return false, errors.Join(fmt.Errorf("spool %s: mail to %s dropped: %w: %w", p, rcpts, ErrPermanent, derr), removeSpooled(p))
	}
	s.attempts++
	if now.Sub(s.first) >= retryFor {
		return false, errors.Join(fmt.Errorf("spool %s: mail to %s dropped after %d attempts since %s: %w",
			p, rcpts, s.attempts, s.first.UTC().Format(time.RFC3339), derr), removeSpooled(p))
	}
	s.next = now.Add(retryWait(s.attempts))
	data, err := s.encode()
	if err == nil {
		err = atomicfile.WriteFile(p, data, 0o600)
	}
	if err != nil {
		return true, fmt.Errorf("spool %s: attempt %d to %s: %w; recording it: %w", p, s.attempts, rcpts, derr, err)
	}
	return true, fmt.Errorf("spool %s: attempt %d to %s failed, next after %s: %w", p, s.attempts, rcpts, s.next.UTC().Format(time.RFC3339), derr)
}

// readSpooled reads and checks the spool file at p.
func readSpooled(p string) (*spooled, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > spoolMaxBytes {
		return nil, fmt.Errorf("not a regular file of at most %d bytes (%s, %d bytes)", spoolMaxBytes, fi.Mode().Type(), fi.Size())
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return decodeSpooled(data, fi.ModTime())
}

func removeSpooled(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
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

// maxAddress is the longest address a mailbox can have (RFC 5321's 256
// octets of a path, less its angle brackets).
const maxAddress = 254

// checkAddress refuses what is not one plain address "local@domain": the
// local part a dot-atom (no quoting), the domain a dot-atom or an address
// literal, at most maxAddress bytes. Nothing it accepts can be read as a
// list (by sendmail, by an SMTP server, by the spool's envelope line).
func checkAddress(a string) error {
	local, domain, ok := strings.Cut(a, "@")
	switch {
	case len(a) > maxAddress:
		return fmt.Errorf("longer than %d bytes", maxAddress)
	case !ok || local == "" || domain == "":
		return errors.New("not local@domain")
	case !dotAtom(local):
		return errors.New("the local part is not a dot-atom")
	case strings.HasPrefix(domain, "["):
		lit, ok := strings.CutSuffix(domain[1:], "]")
		if !ok || lit == "" || strings.ContainsAny(lit, "[]\\") || strings.ContainsFunc(lit, notPrintable) {
			return errors.New("a bad address literal")
		}
	case !dotAtom(domain):
		return errors.New("the domain is not a dot-atom")
	}
	return nil
}

// dotAtom reports whether s is an RFC 5322 dot-atom-text: atext runs
// separated by single dots.
func dotAtom(s string) bool {
	for _, run := range strings.Split(s, ".") {
		if run == "" {
			return false
		}
		for i := 0; i < len(run); i++ {
			c := run[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0) {
				return false
			}
		}
	}
	return true
}

func notPrintable(r rune) bool { return r <= ' ' || r >= 0x7f }

// checkEnvelope checks the envelope sender and recipients with
// checkAddress.
func checkEnvelope(from string, to []string) error {
	if len(to) == 0 {
		return errors.New("no recipient")
	}
	if err := checkAddress(from); err != nil {
		return fmt.Errorf("sender %s is not one plain address: %v", clip(from), err)
	}
	for _, a := range to {
		if err := checkAddress(a); err != nil {
			return fmt.Errorf("recipient %s is not one plain address: %v", clip(a), err)
		}
	}
	return nil
}

// anyCharset lets Mailbox parse a display name in any charset: only the
// address is used, so the name need not decode right.
var anyCharset = netmail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// Mailbox parses field, the raw value of an address header field (From,
// Reply-To), with net/mail as exactly one mailbox and returns its bare
// address. A list, an empty group, a field that does not parse, or an
// address that is not one plain address (see checkAddress: a quoted local
// part such as "a,b"@x) is an error: a mail answering somebody goes to
// one address or to nobody.
func Mailbox(field string) (string, error) {
	a, err := anyCharset.Parse(field)
	if err != nil {
		return "", fmt.Errorf("address %s: %s", clip(field), clip(err.Error()))
	}
	if err := checkAddress(a.Address); err != nil {
		return "", fmt.Errorf("address %s: %v", clip(a.Address), err)
	}
	return a.Address, nil
}

// clip quotes s for a message, cut to 100 bytes: a header field may be a
// megabyte long.
func clip(s string) string {
	if len(s) <= 100 {
		return strconv.Quote(s)
	}
	return strconv.Quote(strings.ToValidUTF8(s[:100], "")) + fmt.Sprintf("... (%d bytes)", len(s))
}

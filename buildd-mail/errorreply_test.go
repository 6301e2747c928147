package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/buildd-mail/mqueue"
	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer/smtptest"
)

// Error replies go to one mailbox, are rate-limited per address, and die:
// each test pipes mails into the real buildd-mail, which sends through a
// real SMTP server (smtptest) or a sendmail script.

// replyHome is a buildd home (the hostile corpus's keyring, one dist)
// whose mail goes out by way (an "smtp = ..." or "sendmail = ..." line),
// driven through the binary bin.
type replyHome struct {
	t    *testing.T
	bin  string
	conf string
	cfg  *config.Config
	h    home.Home
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "buildd-mail")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newReplyHome(t *testing.T, bin, way string) *replyHome {
	t.Helper()
	dir := t.TempDir()
	kr := filepath.Join(dir, "admin_keyring.asc")
	b, err := os.ReadFile(filepath.Join(hostileDir, "admin_keyring.asc"))
	if err != nil {
		t.Fatalf("the hostile corpus is missing: %v", err)
	}
	if err := os.WriteFile(kr, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := &replyHome{t: t, bin: bin}
	r.conf, r.cfg, r.h = writeHome(t, dir, kr, way+"\n", bookworm)
	return r
}

// run runs buildd-mail with args, raw on stdin; it must exit 0.
func (r *replyHome) run(raw []byte, args ...string) {
	r.t.Helper()
	cmd := exec.Command(r.bin, append([]string{"--config", r.conf}, args...)...)
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("buildd-mail %v: %v\n%s", args, err, out)
	}
}

// spooled names the files in mail-spool/.
func (r *replyHome) spooled() []string {
	ents, _ := os.ReadDir(r.h.Path("mail-spool"))
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

func (r *replyHome) logLines(substr string) []string {
	b, _ := os.ReadFile(r.cfg.DaemonLogFile)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// hugeReplyTo is list.eml with a Reply-To of a megabyte: tens of
// thousands of addresses, one field.
func hugeReplyTo(t *testing.T) []byte {
	raw, err := os.ReadFile("testdata/replyto/list.eml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("Reply-To: x0@example.net")
	for i := 1; b.Len() < 1000_000; i++ {
		fmt.Fprintf(&b, ",\n x%d@example.net", i)
	}
	return []byte(strings.Replace(string(raw), "Reply-To: a@example.net, b@example.net, c@example.net", b.String(), 1))
}

// TestErrorReplyOneMailbox: an unsigned reply (testdata/replyto) is
// answered at one mailbox, Reply-To if it is exactly one, else From if
// that is, else nobody (one log line); an Auto-Submitted one by nobody. The SMTP server refuses a
// recipient holding a comma (501), as MTAs do; a second run (a later
// mail, a flush) must not send anything more: a header is never split
// into recipients, not by the spool either.
func TestErrorReplyOneMailbox(t *testing.T) {
	bin := buildBinary(t)
	for _, tt := range []struct {
		file string
		to   string // "": nobody
	}{
		{"single.eml", "admins@example.org"},
		{"list.eml", adminAddr},
		{"list-folded.eml", adminAddr},
		{"list-no-blanks.eml", adminAddr},
		{"two-fields.eml", adminAddr},
		{"quoted-comma.eml", adminAddr},
		{"encoded-comma.eml", "john@example.net"},
		{"group.eml", adminAddr},
		{"both-lists.eml", ""},
		{"from-list.eml", ""},
		{"none.eml", ""},
		{"auto-submitted.eml", ""},
		{"auto-submitted-no.eml", "admins@example.org"},
		{"1 MiB Reply-To", adminAddr},
	} {
		t.Run(tt.file, func(t *testing.T) {
			var raw []byte
			if strings.HasSuffix(tt.file, ".eml") {
				var err error
				if raw, err = os.ReadFile(filepath.Join("testdata", "replyto", tt.file)); err != nil {
					t.Fatal(err)
				}
			} else {
				raw = hugeReplyTo(t)
			}
			srv, err := smtptest.NewServer()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.Refuse(501, func(to string) bool { return strings.Contains(to, ",") })
			r := newReplyHome(t, bin, fmt.Sprintf("smtp = %q", srv.Addr))
			r.run(raw)
			r.run(nil, "--process")
			var want []string
			if tt.to != "" {
				want = []string{tt.to}
			}
			if got := srv.Rcpts(); !slices.Equal(got, want) {
				t.Errorf("the server was given recipients %.300q, want %q", got, want)
			}
			var got []string
			for _, m := range srv.Mails() {
				got = append(got, m.To...)
			}
			if !slices.Equal(got, want) {
				t.Errorf("error replies went to %.300q, want %q", got, want)
			}
			if s := r.spooled(); len(s) != 0 {
				t.Errorf("mail-spool holds %v", s)
			}
			if l := r.logLines("no error reply for mail"); tt.to == "" && len(l) != 1 {
				t.Errorf("%d log lines about the reply not sent, want 1: %q", len(l), l)
			}
		})
	}
}

// TestErrorReplyDies: an error reply the MTA refuses for good (SMTP 550,
// sendmail exit 67) is dropped with one log line, never spooled, never
// retried; one refused for the moment (451, exit 75) is spooled and not
// retried before its wait is over, however many runs come. Three more
// runs of buildd-mail follow the one that sent the reply.
func TestErrorReplyDies(t *testing.T) {
	bin := buildBinary(t)
	raw, err := os.ReadFile("testdata/replyto/single.eml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		refuse  int // SMTP reply to RCPT; or
		exit    int // sendmail's exit status
		spooled int
		logs    string
	}{
		{name: "smtp 550", refuse: 550, logs: "refused for good, not kept for retry: SMTP error 550: smtptest refuses <admins@example.org>"},
		{name: "smtp 451", refuse: 451, spooled: 1, logs: "kept in"},
		{name: "sendmail 67", exit: 67, logs: "refused for good, not kept for retry"},
		{name: "sendmail 75", exit: 75, spooled: 1, logs: "kept in"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var way string
			var tries func() int
			if tt.refuse != 0 {
				srv, err := smtptest.NewServer()
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				srv.Refuse(tt.refuse, nil)
				way = fmt.Sprintf("smtp = %q", srv.Addr)
				tries = func() int { return len(srv.Rcpts()) }
			} else {
				dir := t.TempDir()
				prog := filepath.Join(dir, "sendmail")
				os.WriteFile(prog, fmt.Appendf(nil, "#!/bin/sh\necho \"$@\" >> %s/calls\ncat > /dev/null\nexit %d\n", dir, tt.exit), 0o755)
				way = fmt.Sprintf("sendmail = %q", prog)
				tries = func() int {
					b, _ := os.ReadFile(filepath.Join(dir, "calls"))
					return bytes.Count(b, []byte("\n"))
				}
			}
			r := newReplyHome(t, bin, way)
			r.run(raw)
			for range 3 {
				r.run(nil, "--process")
			}
			if n := tries(); n != 1 {
				t.Errorf("the error reply was tried %d times, want once", n)
			}
			if s := r.spooled(); len(s) != tt.spooled {
				t.Errorf("mail-spool holds %v, want %d mails", s, tt.spooled)
			}
			if l := r.logLines("error reply to admins@example.org: "); len(l) != 1 || !strings.Contains(l[0], tt.logs) {
				t.Errorf("log lines about the reply %q, want one saying %q", l, tt.logs)
			}
		})
	}
}

// TestErrorReplyFlood stores 10,000 bad mails from one address (unsigned
// replies, and replies of garbage, each with a Reply-To of three) in the
// real mqueue and has the real buildd-mail process them in one run, then
// run again (flushing the spool): the address gets at most
// error_reply_rate (the default) error replies, and nothing waits in the
// spool. It logs how long the first run took and how many replies went
// out.
func TestErrorReplyFlood(t *testing.T) {
	const n = 10_000
	bin := buildBinary(t)
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r := newReplyHome(t, bin, fmt.Sprintf("smtp = %q", srv.Addr))
	q := mqueue.New(r.h.MQueueDir())
	garbage := bytes.Repeat([]byte("\x00\xff-----BEGIN PGP SIGNED MESSAGE-----\n\x1b[31m"), 20)
	for i := range n {
		body := []byte("retry\nhello_1.0-1 (dist=bookworm)\n")
		if i%2 == 1 {
			body = garbage
		}
		raw := fmt.Appendf(nil, "From: Mallory <%s>\nReply-To: a@example.net, b@example.net, c@example.net\nTo: buildd@example.org\nSubject: Re: Log for failed build of hello_1.0-1 (dist=bookworm)\nMessage-ID: <flood%d@example.net>\nIn-Reply-To: <log.hello_1.0-1.bookworm@buildd>\n\n%s", malloryAddr, i, body)
		if _, err := q.Store(bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	r.run(nil, "--process")
	took := time.Since(start)
	if left, _ := q.List(); len(left) != 0 {
		t.Fatalf("%d mails left in mqueue", len(left))
	}
	r.run(nil, "--process")
	if s := r.spooled(); len(s) != 0 {
		t.Errorf("mail-spool holds %d mails", len(s))
	}
	var sent []string
	for _, m := range srv.Mails() {
		sent = append(sent, m.To...)
	}
	to := slices.Compact(slices.Clone(sent))
	t.Logf("%d bad mails from %s processed in %v (%.0f mails/s): %d error replies sent, to %q", n, malloryAddr, took.Round(time.Millisecond), n/took.Seconds(), len(sent), to)
	if len(sent) > r.cfg.ErrorReplyRate || slices.ContainsFunc(sent, func(a string) bool { return a != malloryAddr }) {
		t.Errorf("%d error replies (to %q), want at most %d, all to %s", len(sent), to, r.cfg.ErrorReplyRate, malloryAddr)
	}
	if l := r.logLines("no error reply for mail"); len(l) != n-len(sent) {
		t.Errorf("%d log lines about replies not sent, want %d", len(l), n-len(sent))
	}
	if b, _ := os.ReadFile(r.h.Path("mail-error-replies")); bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("mail-error-replies:\n%s", b)
	}
}

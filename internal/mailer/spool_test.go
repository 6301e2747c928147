package mailer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/home"
	"buildd/internal/mailer/smtptest"
)

// clock is a settable Mailer.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// testNow is the tests' present: the spool fixtures are dated around it.
var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func newSMTP(t *testing.T) *smtptest.Server {
	t.Helper()
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// spoolNames returns the spooled mails and the files kept aside (*.bad).
func spoolNames(t *testing.T, dir string) (mails, bad []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), "."):
		case strings.HasSuffix(e.Name(), badSuffix):
			bad = append(bad, e.Name())
		default:
			mails = append(mails, e.Name())
		}
	}
	return mails, bad
}

// envelope reads the envelope line of the one mail in the spool.
func envelope(t *testing.T, dir string) []string {
	t.Helper()
	mails, _ := spoolNames(t, dir)
	if len(mails) != 1 {
		t.Fatalf("spool holds %d mails, want 1", len(mails))
	}
	b, err := os.ReadFile(filepath.Join(dir, mails[0]))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.Split(line, "\t")
}

// fakeSendmail writes a sendmail that notes each call (its arguments, a
// line in DIR/calls) and exits with the status in DIR/code.
func fakeSendmail(t *testing.T) (prog, dir string) {
	t.Helper()
	dir = t.TempDir()
	prog = filepath.Join(dir, "sendmail")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %[1]s/calls\ncat > %[1]s/last\nexit $(cat %[1]s/code)\n", dir)
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	setExit(t, dir, 0)
	return prog, dir
}

func setExit(t *testing.T, dir string, code int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "code"), []byte(strconv.Itoa(code)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func calls(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "calls"))
	return strings.Count(string(b), "\n")
}

// TestSMTPRefusals: a mail the server refuses for good (5xx) is dropped,
// never spooled or retried, and the caller told so; one refused for the
// moment (4xx) is spooled and delivered by a later Flush.
func TestSMTPRefusals(t *testing.T) {
	for _, tt := range []struct {
		code      int
		permanent bool
	}{
		{550, true},
		{501, true},
		{554, true},
		{451, false},
		{452, false},
	} {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			srv := newSMTP(t)
			srv.Refuse(tt.code, nil)
			spool := filepath.Join(t.TempDir(), "mail-spool")
			clk := &clock{testNow}
			mr := &Mailer{SMTP: srv.Addr, Spool: spool, Now: clk.now}
			err := mr.Send(logMail())
			if err == nil || errors.Is(err, ErrPermanent) != tt.permanent || !strings.Contains(err.Error(), strconv.Itoa(tt.code)) {
				t.Fatalf("Send refused with %d = %v, want an error naming the reply, permanent: %v", tt.code, err, tt.permanent)
			}
			mails, _ := spoolNames(t, spool)
			if tt.permanent {
				if len(mails) != 0 || strings.Contains(err.Error(), "kept in") {
					t.Fatalf("refused for good, yet kept: %v; spool %v", err, mails)
				}
			} else if len(mails) != 1 || !strings.Contains(err.Error(), "kept in") {
				t.Fatalf("refused for the moment, spool %v, error %v; want it kept", mails, err)
			}
			srv.Refuse(0, nil)
			clk.t = clk.t.Add(retryFirst)
			left, err := mr.Flush()
			want := 1
			if tt.permanent {
				want = 0
			}
			if left != 0 || err != nil || len(srv.Mails()) != want || len(srv.Rcpts()) != 1+want {
				t.Errorf("Flush = %d, %v; %d mails delivered, %d RCPTs in all; want %d delivered", left, err, len(srv.Mails()), len(srv.Rcpts()), want)
			}
		})
	}
}

// TestSendmailExitStatus: sendmail's exit statuses that sysexits(3) calls
// permanent drop the mail; the others spool it.
func TestSendmailExitStatus(t *testing.T) {
	for _, tt := range []struct {
		code      int
		permanent bool
	}{
		{65, true},  // EX_DATAERR
		{67, true},  // EX_NOUSER
		{68, true},  // EX_NOHOST
		{77, true},  // EX_NOPERM
		{64, false}, // EX_USAGE: our call may be what is wrong
		{69, false}, // EX_UNAVAILABLE
		{70, false}, // EX_SOFTWARE
		{71, false}, // EX_OSERR
		{74, false}, // EX_IOERR
		{75, false}, // EX_TEMPFAIL
		{1, false},
	} {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			prog, dir := fakeSendmail(t)
			setExit(t, dir, tt.code)
			spool := filepath.Join(t.TempDir(), "mail-spool")
			clk := &clock{testNow}
			mr := &Mailer{Sendmail: prog, Spool: spool, Now: clk.now}
			err := mr.Send(logMail())
			if err == nil || errors.Is(err, ErrPermanent) != tt.permanent || !strings.Contains(err.Error(), fmt.Sprintf("exit status %d", tt.code)) {
				t.Fatalf("sendmail exit %d: Send = %v, want permanent: %v", tt.code, err, tt.permanent)
			}
			mails, _ := spoolNames(t, spool)
			if tt.permanent == (len(mails) != 0) {
				t.Errorf("sendmail exit %d: spool holds %d mails", tt.code, len(mails))
			}
			clk.t = clk.t.Add(retryFor)
			setExit(t, dir, 0)
			mr.Flush()
			want := 2
			if tt.permanent {
				want = 1
			}
			if n := calls(dir); n != want {
				t.Errorf("sendmail ran %d times, want %d", n, want)
			}
		})
	}
}

// TestRetryBackoff: a mail failing for the moment is retried only when
// due, the wait doubling from retryFirst up to retryMax, and dropped by the
// first failure retryFor after it was spooled.
func TestRetryBackoff(t *testing.T) {
	prog, dir := fakeSendmail(t)
	setExit(t, dir, 75)
	spool := filepath.Join(t.TempDir(), "mail-spool")
	clk := &clock{testNow}
	mr := &Mailer{Sendmail: prog, Spool: spool, Now: clk.now}
	if err := mr.Send(logMail()); err == nil || !strings.Contains(err.Error(), "kept in") {
		t.Fatalf("Send = %v, want kept", err)
	}
	wait, attempts := retryFirst, 1
	for {
		if f := envelope(t, spool); len(f) != 6 || f[3] != strconv.Itoa(attempts) || f[5] != strconv.FormatInt(clk.t.Add(wait).Unix(), 10) {
			t.Fatalf("after %d attempts the envelope is %q, want the next try %v later", attempts, f, wait)
		}
		clk.t = clk.t.Add(wait - time.Second)
		if left, err := mr.Flush(); left != 1 || err != nil || calls(dir) != attempts {
			t.Fatalf("Flush a second before due = %d, %v, sendmail ran %d times; want no try", left, err, calls(dir))
		}
		clk.t = clk.t.Add(time.Second)
		left, err := mr.Flush()
		attempts++
		if calls(dir) != attempts {
			t.Fatalf("Flush when due: sendmail ran %d times, want %d", calls(dir), attempts)
		}
		if clk.t.Sub(testNow) >= retryFor {
			if left != 0 || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("dropped after %d attempts", attempts)) {
				t.Fatalf("the failure after %v = %d, %v; want the mail dropped", retryFor, left, err)
			}
			break
		}
		if left != 1 || err == nil || !strings.Contains(err.Error(), "exit status 75") {
			t.Fatalf("Flush of a failing mail = %d, %v", left, err)
		}
		wait = min(2*wait, retryMax)
	}
	if mails, _ := spoolNames(t, spool); len(mails) != 0 {
		t.Errorf("spool still holds %v", mails)
	}
	t.Logf("given up after %d attempts over %v", attempts, clk.t.Sub(testNow))
}

// TestEnvelopeAddresses: a recipient (or sender) that is not one plain
// address is refused for good before any MTA sees it; nothing is spooled,
// so nothing can be split at its commas later.
func TestEnvelopeAddresses(t *testing.T) {
	for _, tt := range []struct {
		name     string
		from, to string
	}{
		{"list", "buildd@host.example", "a@example.org, b@example.org, c@example.org"},
		{"list without blanks", "buildd@host.example", "a@example.org,b@example.org"},
		{"quoted comma", "buildd@host.example", `"a,b"@example.org`},
		{"newline", "buildd@host.example", "a@example.org\nb@example.org"},
		{"tab", "buildd@host.example", "a@example.org\tb@example.org"},
		{"group", "buildd@host.example", "undisclosed-recipients:;"},
		{"two ats", "buildd@host.example", "a@b@example.org"},
		{"too long", "buildd@host.example", strings.Repeat("a", 250) + "@example.org"},
		{"sender list", "a@example.org, b@example.org", "admin@example.org"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSMTP(t)
			srv.Refuse(501, nil)
			spool := filepath.Join(t.TempDir(), "mail-spool")
			mr := &Mailer{SMTP: srv.Addr, Spool: spool}
			err := mr.SendRaw(tt.from, []string{tt.to}, []byte("Subject: x\r\n\r\nx\r\n"))
			if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "not one plain address") {
				t.Errorf("SendRaw(%q, %q) = %v, want it refused for good", tt.from, tt.to, err)
			}
			mr.Now = func() time.Time { return time.Now().Add(retryFor) }
			mr.Flush()
			if r := srv.Rcpts(); len(r) != 0 {
				t.Errorf("the server was given recipients %q", r)
			}
			if mails, _ := spoolNames(t, spool); len(mails) != 0 {
				t.Errorf("spooled: %v", mails)
			}
		})
	}
}

// TestFlushSpoolFiles flushes each file of testdata/spool alone: the first
// format still delivers; a file naming more recipients than it was spooled
// with, or damaged, is an error naming it and is kept aside, never
// delivered; a mail not due waits; a permanent refusal or the end of
// retryFor drops the mail.
func TestFlushSpoolFiles(t *testing.T) {
	for _, tt := range []struct {
		file    string
		refuse  int      // the server's reply to RCPT (0: accept)
		to      []string // delivered to
		left    int
		bad     bool
		wantErr string
	}{
		{file: "old-format.spool", to: []string{"admin@example.org"}},
		{file: "old-format-two.spool", to: []string{"admin@example.org", "second@example.org"}},
		{file: "due.spool", to: []string{"admin@example.org"}},
		{file: "not-due.spool", left: 1},
		{file: "old-format-list-split.spool", bad: true, wantErr: `recipient " b@example.org" is not one plain address`},
		{file: "old-format-quoted-comma.spool", bad: true, wantErr: "not one plain address"},
		{file: "more-recipients.spool", bad: true, wantErr: "names 3 recipients, spooled with 1"},
		{file: "no-envelope-line.spool", bad: true, wantErr: "no envelope line"},
		{file: "empty.spool", bad: true, wantErr: "no envelope line"},
		{file: "three-fields.spool", bad: true, wantErr: "envelope line has 3 fields"},
		{file: "negative-attempts.spool", bad: true, wantErr: `envelope field 4: "-1"`},
		{file: "bad-sender.spool", bad: true, wantErr: `sender "buildd daemon" is not one plain address`},
		{file: "binary.spool", bad: true, wantErr: `sender "\x00\x01`},
		{file: "due.spool", refuse: 550, wantErr: "mail to admin@example.org dropped: refused for good"},
		{file: "due.spool", refuse: 451, left: 1, wantErr: "attempt 2 to admin@example.org failed, next after 2026-06-01T00:02:00Z"},
		{file: "expired.spool", refuse: 451, wantErr: "dropped after 41 attempts since 2026-05-20T00:00:00Z"},
	} {
		t.Run(fmt.Sprintf("%s/%d", tt.file, tt.refuse), func(t *testing.T) {
			srv := newSMTP(t)
			srv.Refuse(tt.refuse, nil)
			spool := filepath.Join(t.TempDir(), "mail-spool")
			os.MkdirAll(spool, 0o700)
			data, err := os.ReadFile(filepath.Join("testdata", "spool", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(spool, "1780272000.P1Q1.host")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, testNow, testNow)
			mr := &Mailer{SMTP: srv.Addr, Spool: spool, Now: (&clock{testNow}).now}
			left, err := mr.Flush()
			if left != tt.left {
				t.Errorf("Flush left %d waiting, want %d", left, tt.left)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Flush: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p)):
				t.Errorf("Flush = %v, want an error naming %s and saying %q", err, p, tt.wantErr)
			}
			var got []string
			for _, m := range srv.Mails() {
				got = append(got, m.To...)
			}
			if !slices.Equal(got, tt.to) {
				t.Errorf("delivered to %q, want %q", got, tt.to)
			}
			mails, bad := spoolNames(t, spool)
			if tt.bad != (len(bad) == 1) || len(mails) != tt.left {
				t.Errorf("spool holds %v, kept aside %v", mails, bad)
			}
			if tt.bad {
				if left, err := mr.Flush(); left != 0 || err != nil || len(srv.Rcpts()) != 0 {
					t.Errorf("a file kept aside was tried again: %d, %v, RCPTs %q", left, err, srv.Rcpts())
				}
			}
		})
	}
}

// TestSpoolBound: a mail that fails while the spool is full is refused,
// and the caller told so, not lost in silence.
func TestSpoolBound(t *testing.T) {
	fill := map[string]func(t *testing.T, spool string){
		"files": func(t *testing.T, spool string) {
			data, err := os.ReadFile(filepath.Join("testdata", "spool", "not-due.spool"))
			if err != nil {
				t.Fatal(err)
			}
			for i := range spoolMaxFiles {
				if err := os.WriteFile(filepath.Join(spool, fmt.Sprintf("%d.P1Q1.host", i)), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		},
		"bytes": func(t *testing.T, spool string) {
			p := filepath.Join(spool, "1.P1Q1.host"+badSuffix)
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, spoolMaxBytes-100); err != nil { // sparse
				t.Fatal(err)
			}
		},
	}
	for _, name := range []string{"files", "bytes"} {
		t.Run(name, func(t *testing.T) {
			spool := filepath.Join(t.TempDir(), "mail-spool")
			os.MkdirAll(spool, 0o700)
			fill[name](t, spool)
			before, bad := spoolNames(t, spool)
			mr := &Mailer{SMTP: "127.0.0.1:1", Spool: spool}
			err := mr.Send(logMail())
			if err == nil || !strings.Contains(err.Error(), "not kept for retry") || !strings.Contains(err.Error(), "full") {
				t.Errorf("Send with a full spool = %v, want an error saying the spool is full", err)
			}
			after, _ := spoolNames(t, spool)
			if len(after) != len(before) {
				t.Errorf("spool went from %d to %d mails (%d kept aside)", len(before), len(after), len(bad))
			}
		})
	}
}

// TestOneFlushAtATime: while a Flush holds the spool, another returns
// without delivering anything.
func TestOneFlushAtATime(t *testing.T) {
	srv := newSMTP(t)
	spool := filepath.Join(t.TempDir(), "mail-spool")
	os.MkdirAll(spool, 0o700)
	data, _ := os.ReadFile(filepath.Join("testdata", "spool", "due.spool"))
	os.WriteFile(filepath.Join(spool, "1.P1Q1.host"), data, 0o600)
	l, err := home.TryLock(spool + ".flush")
	if err != nil {
		t.Fatal(err)
	}
	mr := &Mailer{SMTP: srv.Addr, Spool: spool, Now: (&clock{testNow}).now}
	if left, err := mr.Flush(); left != 1 || err != nil || len(srv.Rcpts()) != 0 {
		t.Errorf("Flush beside another = %d, %v, RCPTs %q; want 1 waiting, nothing tried", left, err, srv.Rcpts())
	}
	l.Unlock()
	if left, err := mr.Flush(); left != 0 || err != nil || len(srv.Mails()) != 1 {
		t.Errorf("Flush alone = %d, %v, %d delivered", left, err, len(srv.Mails()))
	}
}

// TestMailbox: exactly one plain mailbox, or an error.
func TestMailbox(t *testing.T) {
	for _, tt := range []struct{ field, want string }{
		{"admin@example.org", "admin@example.org"},
		{"Admin <admin@example.org>", "admin@example.org"},
		{"=?utf-8?q?Doe=2C_John?= <j@example.org>", "j@example.org"},
		{"=?koi8-r?q?=F0=F2?= <k@example.org>", "k@example.org"},
		{"admin@example.org (a comment, with a comma)", "admin@example.org"},
		{"Admins: admin@example.org;", "admin@example.org"},
		{"a@example.org, b@example.org, c@example.org", ""},
		{"a@example.org,", ""},
		{"Doe, John <j@example.org>", ""},
		{`"a,b"@example.org`, ""},
		{`"a b"@example.org`, ""},
		{"undisclosed-recipients:;", ""},
		{"Admins: a@example.org, b@example.org;", ""},
		{"", ""},
		{"root", ""},
		{strings.Repeat("a@example.org, ", 70000), ""},
	} {
		got, err := Mailbox(tt.field)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("Mailbox(%.60q) = %q, %v; want %q", tt.field, got, err, tt.want)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("Mailbox(%.60q): an error of %d bytes", tt.field, len(err.Error()))
		}
	}
}

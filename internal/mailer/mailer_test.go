package mailer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"buildd/internal/mailer/smtptest"
)

func logMail() *Message {
	return &Message{
		From:    "buildd <buildd@host.example>",
		To:      []string{"admin@example.org"},
		Subject: "Log for successful build of hello_1.0-1 (dist=bookworm)",
		Header:  map[string]string{"X-Buildd-Package": "hello_1.0-1"},
		Body:    "Build log\nStatus: successful\n",
	}
}

func TestSendSMTP(t *testing.T) {
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mr := &Mailer{SMTP: srv.Addr, Spool: t.TempDir()}
	m := logMail()
	if err := mr.Send(m); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("server got %d mails", len(got))
	}
	if got[0].From != "buildd@host.example" || got[0].To[0] != "admin@example.org" {
		t.Errorf("envelope = %q -> %q", got[0].From, got[0].To)
	}
	r, err := mail.CreateReader(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := r.Header.Subject()
	if subj != m.Subject {
		t.Errorf("subject = %q", subj)
	}
	id, _ := r.Header.MessageID()
	if id == "" || id != m.MessageID {
		t.Errorf("Message-ID %q, recorded %q", id, m.MessageID)
	}
}

func TestUndeliverableIsSpooledAndFlushed(t *testing.T) {
	spool := t.TempDir()
	clk := &clock{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	mr := &Mailer{SMTP: "127.0.0.1:1", Spool: spool, Now: clk.now}
	if err := mr.Send(logMail()); err == nil || !strings.Contains(err.Error(), "kept in") {
		t.Fatalf("Send to a dead server = %v, want a 'kept in' error", err)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 1 {
		t.Fatalf("spool has %d files, want 1", len(ents))
	}
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mr.SMTP = srv.Addr
	if left, err := mr.Flush(); left != 1 || err != nil || len(srv.Mails()) != 0 {
		t.Fatalf("Flush before the first retry is due = %d, %v, %d mails sent; want 1 waiting, none sent", left, err, len(srv.Mails()))
	}
	clk.t = clk.t.Add(retryFirst)
	left, err := mr.Flush()
	if left != 0 || err != nil {
		t.Fatalf("Flush = %d, %v", left, err)
	}
	if len(srv.Wait(1, 5*time.Second)) != 1 {
		t.Fatal("spooled mail not delivered")
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Fatalf("spool still has %d files", len(ents))
	}
}

func TestMaildirOutbox(t *testing.T) {
	box := filepath.Join(t.TempDir(), "outbox")
	mr := &Mailer{Outbox: box, Spool: t.TempDir()}
	m := logMail()
	m.Body = "Ünïcode log line\n"
	if err := mr.Send(m); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(box, "new"))
	if len(ents) != 1 {
		t.Fatalf("outbox/new has %d mails", len(ents))
	}
	raw, _ := os.ReadFile(filepath.Join(box, "new", ents[0].Name()))
	if !bytes.Contains(raw, []byte("quoted-printable")) {
		t.Errorf("non-ASCII body not quoted-printable:\n%s", raw)
	}
	r, _ := mail.CreateReader(bytes.NewReader(raw))
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(p.Body)
	if !strings.Contains(body.String(), "Ünïcode") {
		t.Errorf("body decoded = %q", body.String())
	}
}

func TestSendmailProgram(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "got")
	prog := filepath.Join(dir, "sendmail")
	os.WriteFile(prog, []byte("#!/bin/sh\necho \"$@\" > "+out+".args\ncat > "+out+"\n"), 0o755)
	mr := &Mailer{Sendmail: prog, Spool: t.TempDir()}
	if err := mr.Send(logMail()); err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(out + ".args")
	if strings.TrimSpace(string(args)) != "-oi -f buildd@host.example -- admin@example.org" {
		t.Errorf("sendmail args = %q", args)
	}
	if b, _ := os.ReadFile(out); !bytes.Contains(b, []byte("Subject: Log for successful build")) {
		t.Errorf("sendmail got:\n%s", b)
	}
}

func TestEnvelopeAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"buildd <buildd@host.example>", "buildd@host.example"},
		{"admin@example.org", "admin@example.org"},
		{"root", "root@" + Hostname()},
	}
	for _, tt := range tests {
		if got := envelopeAddr(tt.in); got != tt.want {
			t.Errorf("envelopeAddr(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

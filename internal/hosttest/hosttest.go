// Package hosttest makes a throwaway build host for the tests of the cron
// programs: a real home directory tree under t.TempDir(), a config file
// for it, and a real SMTP server (smtptest) that the config sends mail to.
package hosttest

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer/smtptest"
)

// Host is a test build host.
type Host struct {
	Cfg  *config.Config
	Home home.Home
	SMTP *smtptest.Server
}

// New writes a config for a fresh home (extra is appended to it: more
// top-level keys, then [[dist]] or [[upload_queue]] tables; "@HOME@" in it
// stands for the home directory; machines_dir defaults to a directory
// that does not exist) and starts the
// SMTP server. With no [[dist]] in extra, one for bookworm/amd64 is added.
func New(t testing.TB, extra string) *Host {
	t.Helper()
	dir := t.TempDir()
	h := home.New(filepath.Join(dir, "home"))
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	text := "home = \"" + h.Dir + "\"\n" +
		"admin_mail = \"admin@example.org\"\n" +
		"statistics_mail = \"stats@example.org\"\n" +
		"mail_from = \"buildd@example.org\"\n" +
		"smtp = \"" + srv.Addr + "\"\n" +
		strings.ReplaceAll(extra, "@HOME@", h.Dir) + "\n"
	if !strings.Contains(extra, "machines_dir =") {
		text = "machines_dir = \"" + filepath.Join(dir, "machines") + "\"\n" + text
	}
	if !strings.Contains(extra, "[[dist]]") {
		text += "\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n"
	}
	path := filepath.Join(dir, "buildd.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return &Host{Cfg: cfg, Home: h, SMTP: srv}
}

// Write creates the file rel (relative to home) with data, its
// modification time age ago.
func (h *Host) Write(t testing.TB, rel, data string, age time.Duration) string {
	t.Helper()
	p := h.Home.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	Age(t, p, age)
	return p
}

// Age sets the access and modification times of path to age ago.
func Age(t testing.TB, path string, age time.Duration) {
	t.Helper()
	when := time.Now().Add(-age)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

// Mail is a received mail, decoded.
type Mail struct {
	To      []string
	Subject string
	Body    string
}

// Mails decodes every mail the server accepted so far.
func (h *Host) Mails(t testing.TB) []Mail {
	t.Helper()
	var out []Mail
	for _, m := range h.SMTP.Mails() {
		r, err := mail.CreateReader(strings.NewReader(string(m.Data)))
		if err != nil {
			t.Fatalf("mail: %v\n%s", err, m.Data)
		}
		subj, _ := r.Header.Subject()
		var body strings.Builder
		for {
			p, err := r.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p.Body)
			body.Write(b)
		}
		out = append(out, Mail{To: m.To, Subject: subj, Body: strings.ReplaceAll(body.String(), "\r\n", "\n")})
	}
	return out
}

// MailsAbout returns the received mails whose subject contains s.
func (h *Host) MailsAbout(t testing.TB, s string) []Mail {
	t.Helper()
	var out []Mail
	for _, m := range h.Mails(t) {
		if strings.Contains(m.Subject, s) {
			out = append(out, m)
		}
	}
	return out
}

package logmail

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/mailer/smtptest"
)

func TestSubjects(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Subject(true, "hello_1.0-1", "amd64", "bookworm"), "Log for successful build of hello_1.0-1 on amd64 (dist=bookworm)"},
		{Subject(false, "hello_1.0-1+b1", "arm64", "sid"), "Log for failed build of hello_1.0-1+b1 on arm64 (dist=sid)"},
		{QuestionSubject("hello_1.0-2", "arm64", "bookworm"), "Should I build hello_1.0-2 on arm64 (dist=bookworm)?"},
	} {
		if c.got != c.want {
			t.Errorf("subject %q, want %q", c.got, c.want)
		}
	}
}

func TestRecipients(t *testing.T) {
	c := &config.Config{AdminMail: "admin@example.org"}
	for _, tc := range []struct {
		d    config.Dist
		want string
	}{
		{config.Dist{}, "admin@example.org"},
		{config.Dist{LogsMailedTo: "logs@example.org, other@example.org"}, "logs@example.org other@example.org"},
		{config.Dist{LogsMailAlso: "also@example.org"}, "admin@example.org also@example.org"},
	} {
		if got := strings.Join(Recipients(c, &tc.d), " "); got != tc.want {
			t.Errorf("Recipients(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestBody(t *testing.T) {
	changes := "testdata/hello_1.0-1_amd64.changes"
	changesText, _ := os.ReadFile(changes)
	successLog, _ := os.ReadFile("testdata/success.log")
	failedLog, _ := os.ReadFile("testdata/failed.log")

	var long strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&long, "build output line %04d\n", i)
	}
	longPath := filepath.Join(t.TempDir(), "long.log")
	os.WriteFile(longPath, []byte(long.String()), 0o644)

	for _, c := range []struct {
		name, log, changes string
		limit              int
		check              func(t *testing.T, body string)
	}{
		{"success log already ends with the changes", "testdata/success.log", changes, 1 << 20, func(t *testing.T, body string) {
			if body != string(successLog) {
				t.Fatalf("body differs from the log:\n%s", body)
			}
		}},
		{"failed log, no changes", "testdata/failed.log", "", 1 << 20, func(t *testing.T, body string) {
			if body != string(failedLog) {
				t.Fatalf("body differs from the log:\n%s", body)
			}
		}},
		{"changes appended when the log lacks it", "testdata/failed.log", changes, 1 << 20, func(t *testing.T, body string) {
			want := string(failedLog) + "\nhello_1.0-1_amd64.changes:\n--------------------------\n\n" + string(changesText)
			if body != want {
				t.Fatalf("body:\n%s\nwant:\n%s", body, want)
			}
		}},
		{"long log: head, tail, path, changes last", longPath, changes, 4000, func(t *testing.T, body string) {
			if !strings.HasPrefix(body, "build output line 0001\n") {
				t.Fatalf("head missing: %.60q", body)
			}
			if !strings.Contains(body, "build output line 2000\n\nhello_1.0-1_amd64.changes:") {
				t.Fatal("the log's last line is not just before the .changes")
			}
			if !strings.Contains(body, "the full log is "+longPath) {
				t.Fatal("the path of the full log is not named")
			}
			if strings.Contains(body, "build output line 1000\n") {
				t.Fatal("the middle of the log was mailed")
			}
			if !strings.HasSuffix(body, string(changesText)) {
				t.Fatal("the .changes is not at the end")
			}
			if len(body) > 4000+400+len(changesText) {
				t.Fatalf("body is %d bytes for a limit of 4000", len(body))
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, err := Body(c.log, c.limit, c.changes)
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, body)
		})
	}
	if _, err := Body("testdata/missing.log", 100, ""); err == nil || !strings.Contains(err.Error(), "testdata/missing.log") {
		t.Fatalf("missing log: %v", err)
	}
}

func TestSendRecordsMessageID(t *testing.T) {
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := home.New(t.TempDir())
	c := &config.Config{Home: h.Dir, SMTP: srv.Addr, MailFrom: "buildd@example.org", AdminMail: "admin@example.org", MailLogLimit: 1 << 20}
	d := &config.Dist{DistName: "bookworm", BuiltArchitecture: "arm64"}
	msg, err := Message(c, d, Build{PkgVersion: "hello_1.0-1", Successful: true, LogPath: "testdata/success.log", ChangesPath: "testdata/hello_1.0-1_amd64.changes"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Send(mailer.New(c), h, msg, d, "hello_1.0-1", KindLog); err != nil {
		t.Fatal(err)
	}
	mails := srv.Wait(1, 10*time.Second)
	if len(mails) != 1 {
		t.Fatalf("%d mails arrived", len(mails))
	}
	raw := string(mails[0].Data)
	if !strings.Contains(raw, "Subject: Log for successful build of hello_1.0-1 on arm64 (dist=bookworm)") || !strings.Contains(raw, "X-Buildd-Arch: arm64") {
		t.Fatalf("subject or X-Buildd-Arch missing in\n%s", raw)
	}
	sent, ok, err := h.Sent().Lookup(msg.MessageID)
	if err != nil || !ok {
		t.Fatalf("Message-ID %s not recorded: %v", msg.MessageID, err)
	}
	if sent.PkgVersion != "hello_1.0-1" || sent.Dist != "bookworm" || sent.Arch != "arm64" || sent.Kind != KindLog {
		t.Fatalf("recorded %+v", sent)
	}
	if !strings.Contains(raw, strings.Trim(msg.MessageID, "<>")) {
		t.Fatal("the recorded Message-ID is not the mail's")
	}
}

func TestSendSpoolsWhenSMTPIsDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h := home.New(t.TempDir())
	c := &config.Config{Home: h.Dir, SMTP: addr, MailFrom: "buildd@example.org", AdminMail: "admin@example.org"}
	d := &config.Dist{DistName: "bookworm", BuiltArchitecture: "amd64"}
	msg := Question(c, d, "hello_1.0-2", "hello_1.0-1: configure failed")
	if err := Send(mailer.New(c), h, msg, d, "hello_1.0-2", KindShouldBuild); err == nil {
		t.Fatal("no error from a send to a closed port")
	}
	if sent, ok, _ := h.Sent().Lookup(msg.MessageID); !ok || sent.Dist != "bookworm" || sent.Arch != "amd64" || sent.Kind != KindShouldBuild {
		t.Fatal("a spooled question is not recorded")
	}
	ents, _ := os.ReadDir(filepath.Join(h.Dir, "mail-spool"))
	if len(ents) != 1 {
		t.Fatalf("%d mails in the spool, want 1", len(ents))
	}
	if !strings.Contains(msg.Body, "hello_1.0-1: configure failed") || !strings.Contains(msg.Body, "The package hello failed to build in a previous version") {
		t.Fatalf("question body:\n%s", msg.Body)
	}
}

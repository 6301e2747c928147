package dispatch_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd-mail/dispatch"
	"buildd/buildd-mail/mqueue"
	"buildd/buildd-mail/replytest"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/mailer/smtptest"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// Shared across the package's tests: one GnuPG home, one admin keyring.
var (
	gpg        *replytest.GPG
	keyring    string
	revokedSig string // a retry for hello_1.0-1 signed before the key was revoked
)

const (
	pkgv   = "hello_1.0-1"
	dist   = "bookworm"
	logID  = "log.hello_1.0-1@buildd.example.org"
	dbUser = "buildd-test"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "buildd-mail-gpg")
	if err != nil {
		log.Fatal(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		gpg = replytest.NewGPG(tbMain{}, filepath.Join(dir, "gnupg"))
		revokedSig = gpg.Clearsign(replytest.Revoked, replytest.KeywordText("retry", pkgv, dist), "SHA256", "")
		gpg.Revoke()
		keyring = filepath.Join(dir, "admins.asc")
		gpg.WriteKeyring(keyring, true, replytest.Admin, replytest.Admin2, replytest.Expired, replytest.Revoked)
		return m.Run()
	}()
	os.Exit(code)
}

// tbMain is the testing.TB of TestMain: failures there stop the run.
type tbMain struct{ testing.TB }

func (tbMain) Helper()                   {}
func (tbMain) Fatal(a ...any)            { log.Fatal(a...) }
func (tbMain) Fatalf(f string, a ...any) { log.Fatalf(f, a...) }
func (tbMain) Skip(a ...any)             { log.Fatal(a...) }

// env is one buildd home with its queue, config, mail server and processor.
type env struct {
	t    *testing.T
	dir  string
	cfg  *config.Config
	conf string
	h    home.Home
	smtp *smtptest.Server
	q    *mqueue.Queue
	p    *dispatch.Processor
	seq  int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &env{t: t, dir: dir, smtp: srv}
	e.conf = filepath.Join(dir, "buildd.conf")
	writeConfig(t, e.conf, dir, keyring, "smtp = \""+srv.Addr+"\"")
	e.cfg, err = config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	e.h = home.New(e.cfg.Home)
	if err := e.h.Init(); err != nil {
		t.Fatal(err)
	}
	e.q = mqueue.New(e.h.MQueueDir())
	e.p = e.processor()
	return e
}

func writeConfig(t testing.TB, path, dir, keyring, extra string) {
	conf := fmt.Sprintf(`home = %q
admin_mail = "buildd-admin@example.org"
wanna_build_db = %q
admin_keyring = %q
mail_from = "buildd@example.org"
%s

[[dist]]
dist_name = "bookworm"
built_architecture = "amd64"
wanna_build_db_user = %q
`, filepath.Join(dir, "home"), filepath.Join(dir, "wanna-build.db"), keyring, extra, dbUser)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) processor() *dispatch.Processor {
	lg, err := daemonlog.Open(e.cfg.DaemonLogFile, "buildd-mail")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { lg.Close() })
	return dispatch.New(e.cfg, lg)
}

func (e *env) dist() *config.Dist { d, _ := e.cfg.DistArch(dist, "amd64"); return d }

// means is what a record of the home means for bookworm/amd64.
func (e *env) means() home.Means {
	d := e.dist()
	return func(dn, arch string) (bool, error) { return e.cfg.Means(d, dn, arch) }
}

func (e *env) client() queue.Port { return port.Open(e.cfg, e.dist()) }

// take registers pkgv as Building by this buildd and records its log mail
// as sent an hour ago.
func (e *env) take(pkgv string) {
	e.t.Helper()
	if err := e.client().Take(context.Background(), pkgv); err != nil {
		e.t.Fatalf("take %s: %v", pkgv, err)
	}
	e.sent(pkgv, "log."+pkgv+"@buildd.example.org", "log")
}

func (e *env) sent(pkgv, id, kind string) {
	e.t.Helper()
	if err := e.h.Sent().Add(home.SentMail{MessageID: id, Time: time.Now().Add(-time.Hour), Dist: dist, Arch: "amd64", PkgVersion: pkgv, Kind: kind}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) info(name string) *queue.Info {
	e.t.Helper()
	i, err := e.client().Info(context.Background(), name)
	if err != nil {
		e.t.Fatalf("info %s: %v", name, err)
	}
	return i
}

// deliver stores raw mails and drains the queue.
func (e *env) deliver(raws ...[]byte) {
	e.t.Helper()
	for _, raw := range raws {
		if _, err := e.q.Store(strings.NewReader(string(raw))); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.p.Drain(context.Background(), e.q); err != nil {
		e.t.Fatalf("drain: %v", err)
	}
	if left, _ := e.q.List(); len(left) != 0 {
		e.t.Fatalf("%d mails left in the queue", len(left))
	}
}

func (e *env) mail(subject string) *replytest.Mail {
	e.seq++
	return &replytest.Mail{
		From:      "Admin <" + replytest.Addr(replytest.Admin) + ">",
		To:        "buildd@example.org",
		Subject:   subject,
		MessageID: fmt.Sprintf("reply%d.%d@example.org", e.seq, time.Now().UnixNano()),
	}
}

func logSubject(pkgv string) string {
	return "Re: Log for successful build of " + pkgv + " (dist=" + dist + ")"
}

// signed is a clearsigned keyword reply to pkgv's log mail.
func (e *env) signed(pkgv, keyword string, mod func(m *replytest.Mail)) []byte {
	m := e.mail(logSubject(pkgv))
	m.InReplyTo = "log." + pkgv + "@buildd.example.org"
	m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText(keyword, pkgv, dist), "SHA256", "")
	if mod != nil {
		mod(m)
	}
	return m.Compose()
}

func (e *env) daemonLog() string {
	b, _ := os.ReadFile(e.cfg.DaemonLogFile)
	return string(b)
}

// buildFiles puts a built .deb and its .changes into build/ and returns the
// .changes text.
func (e *env) buildFiles(pkgv string, fileName string, content string) string {
	e.t.Helper()
	name, version, _ := strings.Cut(pkgv, "_")
	if fileName == "" {
		fileName = fmt.Sprintf("%s_%s_amd64.deb", name, version)
	}
	if err := os.WriteFile(filepath.Join(e.h.BuildDir(), filepath.Base(fileName)), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	m5 := md5.Sum([]byte(content))
	ch := fmt.Sprintf(`Format: 1.8
Date: Mon, 01 Jan 2024 00:00:00 +0000
Source: %s
Binary: %s
Architecture: amd64
Version: %s
Distribution: bookworm
Urgency: medium
Maintainer: Test <test@example.org>
Changed-By: Test <test@example.org>
Description:
 %s - test package
Changes:
 %s (%s) bookworm; urgency=medium
 .
   * Test build.
Checksums-Sha256:
 %s %d %s
Files:
 %s %d misc optional %s
`, name, name, version, name, name, version, hex.EncodeToString(sum[:]), len(content), fileName, hex.EncodeToString(m5[:]), len(content), fileName)
	if err := os.WriteFile(filepath.Join(e.h.BuildDir(), pkgv+"_amd64.changes"), []byte(ch), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return ch
}

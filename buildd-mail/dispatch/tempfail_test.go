package dispatch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd-mail/mqueue"
	"buildd/buildd-mail/replytest"
	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/queue/port"
)

const trixieLogID = "log.hello_1.0-1.trixie@buildd.example.org"

// withTrixie rewrites the env's config with a second dist, trixie, whose
// queue is local or (unreachable) over ssh to a closed port of 127.0.0.1,
// and makes a new processor for it, as the next buildd-mail run would.
func (e *env) withTrixie(unreachable bool) *config.Dist {
	e.t.Helper()
	extra := fmt.Sprintf("smtp = %q\n\n[[dist]]\ndist_name = \"trixie\"\nbuilt_architecture = \"amd64\"\nwanna_build_db_user = %q\n", e.smtp.Addr, dbUser)
	if unreachable {
		extra += "wanna_build_ssh_host = \"127.0.0.1\"\nwanna_build_ssh_options = [\"-o\", \"Port=1\", \"-o\", \"BatchMode=yes\", \"-o\", \"ConnectTimeout=5\"]\n"
	}
	writeConfig(e.t, e.conf, e.dir, keyring, extra)
	cfg, err := config.Load(e.conf)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfg = cfg
	e.p = e.processor()
	d, _ := cfg.DistArch("trixie", "amd64")
	return d
}

// trixieReply is a signed keyword reply to hello's trixie log mail (its
// last line names the dist, so that its text differs from bookworm's).
func (e *env) trixieReply(keyword string) []byte {
	m := e.mail("Re: Log for successful build of " + pkgv + " (dist=trixie)")
	m.InReplyTo = trixieLogID
	m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText(keyword, pkgv, "trixie"), "SHA256", "")
	return m.Compose()
}

// takeTrixie registers hello as Building in trixie and records its log mail.
func (e *env) takeTrixie() {
	e.t.Helper()
	d := e.withTrixie(false)
	if err := port.Open(e.cfg, d).Take(context.Background(), pkgv); err != nil {
		e.t.Fatal(err)
	}
	if err := e.h.Sent().Add(home.SentMail{MessageID: trixieLogID, Time: time.Now().Add(-time.Hour), Dist: "trixie", Arch: "amd64", PkgVersion: pkgv, Kind: "log"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) store(raws ...[]byte) {
	e.t.Helper()
	for _, raw := range raws {
		if _, err := e.q.Store(strings.NewReader(string(raw))); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestTempFailureSkipped: a mail whose dist's queue cannot be reached is
// kept for the next run without blocking a later mail for another dist; a
// later mail about the same package stays behind it; once the queue is
// back both act, in arrival order.
func TestTempFailureSkipped(t *testing.T) {
	e := newEnv(t)
	e.take(pkgv)
	e.takeTrixie()
	trixie := e.withTrixie(true)
	// retry then giveback for trixie: in the other order the retry would
	// be refused (state Needs-Build), so the end state shows the order.
	e.store(e.trixieReply("retry"), e.signed(pkgv, "giveback", nil), e.trixieReply("giveback"))
	err := e.p.Drain(context.Background(), e.q)
	if err == nil || !strings.Contains(err.Error(), "2 mail(s) kept") {
		t.Errorf("drain: %v, want 2 mails kept", err)
	}
	if left, _ := e.q.List(); len(left) != 2 {
		t.Errorf("%d mails left, want the two trixie ones", len(left))
	}
	if s := e.info("hello").State; s != "Needs-Build" && s != "BD-Uninstallable" {
		t.Errorf("bookworm mail behind the failing one not processed: state %s", s)
	}
	log := e.daemonLog()
	for _, w := range []string{"kept for the next run: temporary failure: ssh", "about the same package"} {
		if !strings.Contains(log, w) {
			t.Errorf("daemon.log lacks %q:\n%s", w, log)
		}
	}
	// A second run with the queue still unreachable keeps them again.
	if err := e.p.Drain(context.Background(), e.q); err == nil {
		t.Error("second drain: no error")
	}
	if left, _ := e.q.List(); len(left) != 2 {
		t.Errorf("%d mails left after the second run", len(left))
	}

	trixie = e.withTrixie(false)
	if err := e.p.Drain(context.Background(), e.q); err != nil {
		t.Fatalf("drain once the queue is back: %v", err)
	}
	if left, _ := e.q.List(); len(left) != 0 {
		t.Errorf("%d mails left", len(left))
	}
	info, err := port.Open(e.cfg, trixie).Info(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "Needs-Build" && info.State != "BD-Uninstallable" {
		t.Errorf("trixie state %s, want given back after the retry", info.State)
	}
	if r := e.replies(); len(r) != 0 {
		t.Errorf("unexpected reply:\n%s", r[0])
	}
}

// TestTempFailureExpires: a mail still failing temporarily after
// mqueue_max_age is answered ("please resend"), logged and removed.
func TestTempFailureExpires(t *testing.T) {
	e := newEnv(t)
	e.takeTrixie()
	e.withTrixie(true)
	e.store(e.trixieReply("retry"))
	// A run before the max age keeps it.
	if err := e.p.Drain(context.Background(), e.q); err == nil {
		t.Error("drain: no error for a kept mail")
	}
	if left, _ := e.q.List(); len(left) != 1 {
		t.Fatalf("%d mails left, want 1", len(left))
	}
	later := time.Now().Add(73 * time.Hour)
	e.p.Now = func() time.Time { return later }
	if err := e.p.Drain(context.Background(), e.q); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if left, _ := e.q.List(); len(left) != 0 {
		t.Errorf("%d mails left, want the expired one removed", len(left))
	}
	r := e.replies()
	if len(r) != 1 {
		t.Fatalf("%d replies, want 1", len(r))
	}
	for _, w := range []string{"could not be processed for 72 hours: ssh ", "; please resend", "Subject: Re: Log for successful build of hello_1.0-1 (dist=trixie)", "Auto-Submitted: auto-replied"} {
		if !strings.Contains(r[0], w) {
			t.Errorf("reply lacks %q:\n%s", w, r[0])
		}
	}
	if log := e.daemonLog(); !strings.Contains(log, "could not be processed for 72 hours") {
		t.Errorf("not logged:\n%s", log)
	}
}

// TestOversizeQueuedMailDropped: a file in mqueue/new over the size limit
// (stored by an older version, or put there by hand) is dropped with a log
// line, and the mails behind it are processed.
func TestOversizeQueuedMailDropped(t *testing.T) {
	e := newEnv(t)
	e.take(pkgv)
	if err := e.q.Init(); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(e.q.Dir, "new", "00000000000000000001.big")
	if err := os.WriteFile(big, make([]byte, mqueue.MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.signed(pkgv, "retry", nil))
	if !redoHas(t, e, pkgv) {
		t.Error("the mail behind the oversize one did not act")
	}
	if _, err := os.Stat(big); !os.IsNotExist(err) {
		t.Errorf("oversize mail left in the queue: %v", err)
	}
	if !strings.Contains(e.daemonLog(), "00000000000000000001.big dropped: ") {
		t.Errorf("not logged:\n%s", e.daemonLog())
	}
}

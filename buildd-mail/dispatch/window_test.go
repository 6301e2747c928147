package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"buildd/internal/home"
)

// replies returns the decoded mails sent to the admin who wrote the replies.
func (e *env) replies() []string {
	var out []string
	for _, m := range e.smtp.Mails() {
		if len(m.To) == 1 && m.To[0] != "buildd-admin@example.org" {
			out = append(out, decodeQP(string(m.Data)))
		}
	}
	return out
}

// deliverOne stores raw, drains, and returns the error reply it caused
// ("" when none).
func (e *env) deliverOne(raw []byte) string {
	e.t.Helper()
	before := len(e.replies())
	e.deliver(raw)
	r := e.replies()
	if len(r) == before {
		return ""
	}
	if len(r) > before+1 {
		e.t.Fatalf("%d replies to one mail", len(r)-before)
	}
	return r[before]
}

// TestReplyWindow: replies to mails older than reply_window are refused
// even while still recorded, replies within it act, and a reply replayed
// after the watcher's prune (sent-mails and mail-signatures forgotten) is
// still refused.
func TestReplyWindow(t *testing.T) {
	const d = 24 * time.Hour
	sentAt := func(e *env, pkgv, id string, at time.Time) {
		t.Helper()
		if err := e.client().Take(context.Background(), pkgv); err != nil {
			t.Fatal(err)
		}
		if err := e.h.Sent().Add(home.SentMail{MessageID: id, Time: at, Dist: dist, Arch: "amd64", PkgVersion: pkgv, Kind: "log"}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("within the window", func(t *testing.T) {
		e := newEnv(t)
		sentAt(e, pkgv, logID, time.Now().Add(-59*d))
		if r := e.deliverOne(e.signed(pkgv, "retry", nil)); r != "" {
			t.Fatalf("refused:\n%s", r)
		}
		if !redoHas(t, e, pkgv) {
			t.Error("not in REDO")
		}
	})
	t.Run("older than the window", func(t *testing.T) {
		e := newEnv(t)
		sentAt(e, pkgv, logID, time.Now().Add(-61*d))
		r := e.deliverOne(e.signed(pkgv, "retry", nil))
		if !strings.Contains(r, "answers a mail older than reply_window (60 days); answer the newer log mail") {
			t.Errorf("reply:\n%s", r)
		}
		unchanged(t, e)
		if !strings.Contains(e.daemonLog(), "older than reply_window") {
			t.Errorf("not logged:\n%s", e.daemonLog())
		}
	})
	t.Run("replay after the prune", func(t *testing.T) {
		e := newEnv(t)
		e.take(pkgv)
		raw := e.signed(pkgv, "retry", nil)
		if r := e.deliverOne(raw); r != "" {
			t.Fatalf("first use refused:\n%s", r)
		}
		if err := e.h.REDO().Remove(func(home.RedoEntry) bool { return true }); err != nil {
			t.Fatal(err)
		}
		// 61 days later the watcher prunes both memories.
		later := time.Now().Add(61 * d)
		e.p.Now = func() time.Time { return later }
		cutoff := later.Add(-60 * d)
		if n, err := e.h.Sent().Prune(cutoff); err != nil || n != 1 {
			t.Fatalf("sent-mails prune: %d, %v", n, err)
		}
		if n, err := e.h.PruneSignatures(cutoff); err != nil || n != 1 {
			t.Fatalf("signature prune: %d, %v", n, err)
		}
		// The answered mail is forgotten: refused as answering no known mail.
		if r := e.deliverOne(raw); !strings.Contains(r, "This buildd sent no build log for hello_1.0-1") {
			t.Errorf("replay to a forgotten mail:\n%s", r)
		}
		// A newer log mail for the same package: the old signature predates it.
		if err := e.h.Sent().Add(home.SentMail{MessageID: "log2.hello@buildd.example.org", Time: later.Add(-time.Hour), Dist: dist, Arch: "amd64", PkgVersion: pkgv, Kind: "log"}); err != nil {
			t.Fatal(err)
		}
		if r := e.deliverOne(raw); !strings.Contains(r, "Signature check failed (replay)") || !strings.Contains(r, "before the mail") {
			t.Errorf("replay against the newer mail:\n%s", r)
		}
		if redoHas(t, e, pkgv) {
			t.Error("a replayed reply acted")
		}
	})
}

// TestWindowPruneKeepsRecent: a fresh reply within the window still acts
// after a prune, and its signature stays remembered (not pruned).
func TestWindowPruneKeepsRecent(t *testing.T) {
	e := newEnv(t)
	e.take(pkgv)
	cutoff := time.Now().Add(-60 * 24 * time.Hour)
	if _, err := e.h.Sent().Prune(cutoff); err != nil {
		t.Fatal(err)
	}
	raw := e.signed(pkgv, "retry", nil)
	if r := e.deliverOne(raw); r != "" {
		t.Fatalf("refused:\n%s", r)
	}
	if n, err := e.h.PruneSignatures(cutoff); err != nil || n != 0 {
		t.Fatalf("prune dropped %d recent signatures (%v)", n, err)
	}
	if r := e.deliverOne(raw); !strings.Contains(r, "was already used") {
		t.Errorf("replay within the window:\n%s", r)
	}
}

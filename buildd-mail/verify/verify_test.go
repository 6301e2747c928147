package verify_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/buildd-mail/replytest"
	"buildd/buildd-mail/verify"
)

// TestKeyringManyKeys loads keyrings of three keys, armored as three blocks
// one after the other (a plain armor.Decode would stop after the first) and
// binary, and checks a signature by the last key verifies.
func TestKeyringManyKeys(t *testing.T) {
	dir := t.TempDir()
	g := replytest.NewGPG(t, filepath.Join(dir, "gnupg"))
	text := replytest.KeywordText("retry", "hello_1.0-1", "bookworm")
	signed := g.Clearsign(replytest.Admin2, text, "SHA256", "")
	for _, armored := range []bool{true, false} {
		path := filepath.Join(dir, "keyring")
		g.WriteKeyring(path, armored, replytest.Expired, replytest.Admin, replytest.Admin2)
		k, err := verify.LoadKeyring(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.Entities) != 3 {
			t.Errorf("armored=%v: %d keys, want 3", armored, len(k.Entities))
		}
		got, r, err := k.Clearsigned([]byte(signed), time.Now())
		if err != nil {
			t.Fatalf("armored=%v: %v", armored, err)
		}
		if got != strings.TrimSuffix(text, "\n") || r.Fingerprint != g.Fingerprint(replytest.Admin2) {
			t.Errorf("text %q fingerprint %s", got, r.Fingerprint)
		}
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	g := replytest.NewGPG(t, filepath.Join(dir, "gnupg"))
	text := replytest.KeywordText("retry", "hello_1.0-1", "bookworm")
	revoked := g.Clearsign(replytest.Revoked, text, "SHA256", "")
	g.Revoke()
	path := filepath.Join(dir, "keyring.asc")
	g.WriteKeyring(path, true, replytest.Admin, replytest.Expired, replytest.Revoked)
	k, err := verify.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	good := g.Clearsign(replytest.Admin, text, "SHA256", "")
	for _, c := range []struct{ name, body, check string }{
		{"unsigned", text, verify.CheckUnsigned},
		{"forged", strings.Replace(good, "retry", "purge", 1), verify.CheckBad},
		{"unknown", g.Clearsign(replytest.Unknown, text, "SHA256", ""), verify.CheckUnknown},
		{"expired", g.Clearsign(replytest.Expired, text, "SHA256", "20200101T010000"), verify.CheckExpired},
		{"revoked", revoked, verify.CheckRevoked},
		{"sha1", g.Clearsign(replytest.Admin, text, "SHA1", ""), verify.CheckHash},
		{"text before", "do not retry\n" + good, verify.CheckOutside},
		{"text after", good + "PS: fail it instead\n", verify.CheckOutside},
		{"quotes are fine", "Buildd wrote:\n> log\n\n" + good + "\n> more log\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := k.Clearsigned([]byte(c.body), time.Now())
			var ve *verify.Error
			if c.check == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.As(err, &ve) || ve.Check != c.check {
				t.Errorf("err %v, want check %q", err, c.check)
			}
		})
	}
}

func TestMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail-signatures")
	m, _ := verify.OpenMemory(path)
	r := &verify.Result{ID: "abc", Fingerprint: "F", Created: time.Now()}
	if err := m.Remember(r, "mail1"); err != nil {
		t.Fatal(err)
	}
	m2, err := verify.OpenMemory(path)
	if err != nil {
		t.Fatal(err)
	}
	if first, ok := m2.Seen("abc"); !ok || first != "mail1" {
		t.Errorf("seen %q %v", first, ok)
	}
	if b, _ := os.ReadFile(path); strings.Count(string(b), "\n") != 1 {
		t.Errorf("%q", b)
	}
}

func TestPruneMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail-signatures")
	now := time.Unix(1_800_000_000, 0)
	day := 24 * time.Hour
	lines := []string{
		fmt.Sprintf("old %d F mail1", now.Add(-61*day).Unix()),
		fmt.Sprintf("new %d F mail2", now.Add(-59*day).Unix()),
		"torn line",
		fmt.Sprintf("edge %d F mail3", now.Add(-60*day).Unix()),
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := verify.PruneMemory(path, now.Add(-60*day))
	if err != nil || n != 1 {
		t.Fatalf("PruneMemory = %d, %v; want 1", n, err)
	}
	b, _ := os.ReadFile(path)
	if want := strings.Join(lines[1:], "\n") + "\n"; string(b) != want {
		t.Errorf("after prune:\n%s\nwant:\n%s", b, want)
	}
	m, _ := verify.OpenMemory(path)
	if _, ok := m.Seen("old"); ok {
		t.Error("old signature still remembered")
	}
	if first, ok := m.Seen("new"); !ok || first != "mail2" {
		t.Error("recent signature lost")
	}
	if n, err := verify.PruneMemory(filepath.Join(t.TempDir(), "missing"), now); err != nil || n != 0 {
		t.Errorf("missing file: %d, %v", n, err)
	}
}

// TestPruneMemoryConcurrentRemember: signatures remembered (by other Memory
// values, as other buildd-mail processes do) while prunes rewrite the file
// are never lost.
func TestPruneMemoryConcurrentRemember(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail-signatures")
	old := time.Now().Add(-100 * 24 * time.Hour)
	var b strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "old%d %d F mail%d\n", i, old.Unix(), i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	const writers, each = 3, 60
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			m, err := verify.OpenMemory(path)
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < each; i++ {
				r := &verify.Result{ID: fmt.Sprintf("w%d-%d", w, i), Fingerprint: "F", Created: time.Now()}
				if err := m.Remember(r, fmt.Sprintf("m%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	dropped := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		n, err := verify.PruneMemory(path, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		dropped += n
	}
	if dropped != 100 {
		t.Errorf("dropped %d, want the 100 old lines", dropped)
	}
	m, err := verify.OpenMemory(path)
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if _, ok := m.Seen(fmt.Sprintf("w%d-%d", w, i)); !ok {
				t.Errorf("signature w%d-%d lost", w, i)
			}
		}
	}
	if data, _ := os.ReadFile(path); strings.Count(string(data), "\n") != writers*each {
		t.Errorf("%d lines, want %d", strings.Count(string(data), "\n"), writers*each)
	}
}

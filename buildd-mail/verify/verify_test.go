package verify_test

import (
	"errors"
	"path/filepath"
	"strings"
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

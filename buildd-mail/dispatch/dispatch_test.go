package dispatch_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd-mail/replytest"
	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// A case delivers mails to a fresh home where hello_1.0-1 is Building by
// this buildd (its log mail recorded as sent), then checks the effect and
// the mails that went out: replies to the sender (want: substrings of the
// one error reply; none when empty) and forwards to admin_mail.
type tcase struct {
	name    string
	setup   func(e *env)
	mails   func(e *env) [][]byte
	want    []string // substrings of the error reply; nil: no reply
	forward int      // mails forwarded to admin_mail
	check   func(t *testing.T, e *env)
}

// update writes the generated replies to testdata/corpus (go test -update).
var update = flag.Bool("update", false, "write the generated mails to testdata/corpus")

func one(b []byte) [][]byte { return [][]byte{b} }

func redoHas(t *testing.T, e *env, pkgv string) bool {
	es, _, err := e.h.REDO().Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range es {
		if x.PkgVersion == pkgv {
			return true
		}
	}
	return false
}

func wantState(state queue.State) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		if got := e.info("hello").State; got != state {
			t.Errorf("state %s, want %s", got, state)
		}
	}
}

func unchanged(t *testing.T, e *env) {
	if got := e.info("hello").State; got != "Building" {
		t.Errorf("state %s, want Building (nothing changed)", got)
	}
	if redoHas(t, e, pkgv) {
		t.Errorf("REDO changed")
	}
}

func TestReplies(t *testing.T) {
	okChanges := func(e *env) string { return e.buildFiles(pkgv, "", "a built package\n") }
	cases := []tcase{
		{name: "retry clearsigned LF", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "retry", nil)) },
			check: func(t *testing.T, e *env) {
				if !redoHas(t, e, pkgv) {
					t.Error("not in REDO")
				}
				if !strings.Contains(e.daemonLog(), "signed by "+gpg.Fingerprint(replytest.Admin)) {
					t.Errorf("fingerprint not logged:\n%s", e.daemonLog())
				}
			}},
		{name: "retry clearsigned CRLF quoted-printable with quoted log", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) { m.QP, m.CRLF = true, true; m.Body += replytest.QuotedLog(pkgv) }))
		}, check: func(t *testing.T, e *env) {
			if !redoHas(t, e, pkgv) {
				t.Error("not in REDO")
			}
		}},
		{name: "fail multi-line PGP/MIME", mails: func(e *env) [][]byte {
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			return one(m.PGPMIME(gpg, replytest.Admin, replytest.KeywordText("fail\nconfigure: error: no C compiler\nFTBFS since gcc-14", pkgv, dist), "SHA256", nil))
		}, check: func(t *testing.T, e *env) {
			i := e.info("hello")
			if i.State != "Failed" || !strings.Contains(i.FailedText, "no C compiler") || !strings.Contains(i.FailedText, "FTBFS since gcc-14") || strings.Contains(i.FailedText, pkgv) {
				t.Errorf("state %s, failed text %q", i.State, i.FailedText)
			}
		}},
		{name: "fail PGP/MIME CRLF QP with quoted log", mails: func(e *env) [][]byte {
			m := e.mail(logSubject(pkgv))
			m.InReplyTo, m.QP, m.CRLF = logID, true, true
			return one(m.PGPMIME(gpg, replytest.Admin, replytest.KeywordText("fail\nneeds a newer libfoo = really", pkgv, dist)+replytest.QuotedLog(pkgv), "SHA512", nil))
		}, check: func(t *testing.T, e *env) {
			if i := e.info("hello"); i.State != "Failed" || !strings.Contains(i.FailedText, "newer libfoo = really") {
				t.Errorf("state %s, failed text %q", i.State, i.FailedText)
			}
		}},
		{name: "dep-wait", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "dep-wait libfoo-dev (>= 1.2)", nil)) },
			check: func(t *testing.T, e *env) {
				if i := e.info("hello"); i.State != "Dep-Wait" || !strings.Contains(i.Depends, "libfoo-dev") {
					t.Errorf("state %s depends %q", i.State, i.Depends)
				}
			}},
		{name: "giveback", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "giveback", nil)) },
			check: func(t *testing.T, e *env) {
				if s := e.info("hello").State; s != "Needs-Build" && s != "BD-Uninstallable" {
					t.Errorf("state %s", s)
				}
			}},
		{name: "manual", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "manual", nil)) },
			check: func(t *testing.T, e *env) {
				unchanged(t, e)
				if !strings.Contains(e.daemonLog(), "will be finished manually") {
					t.Error("not logged")
				}
			}},
		{name: "newvers", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "newvers 1.1-1", nil)) },
			check: func(t *testing.T, e *env) {
				if i := e.info("hello"); i.Version != "1.1-1" || i.State != "Building" {
					t.Errorf("version %s state %s", i.Version, i.State)
				}
				if !redoHas(t, e, "hello_1.1-1") {
					t.Error("hello_1.1-1 not in REDO")
				}
			}},
		{name: "not-for-us", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "not-for-us", nil)) }, check: wantState("Not-For-Us")},
		{name: "purge", setup: func(e *env) { os.MkdirAll(filepath.Join(e.h.BuildDir(), "hello-1.0"), 0o755) },
			mails: func(e *env) [][]byte { return one(e.signed(pkgv, "purge", nil)) },
			check: func(t *testing.T, e *env) {
				b, _ := os.ReadFile(filepath.Join(e.h.BuildDir(), "PURGE"))
				if !strings.Contains(string(b), "hello-1.0") {
					t.Errorf("PURGE: %q", b)
				}
			}},
		{name: "upload-rem", setup: func(e *env) {
			up := filepath.Join(e.cfg.Home, "upload")
			os.MkdirAll(up, 0o755)
			os.WriteFile(filepath.Join(up, "hello_1.0-1_amd64.changes"), []byte(e.buildFiles(pkgv, "", "x\n")), 0o644)
			os.WriteFile(filepath.Join(up, "hello_1.0-1_amd64.deb"), []byte("x\n"), 0o644)
			os.WriteFile(filepath.Join(up, "hello_1.0-1_amd64.upload"), nil, 0o644)
		}, mails: func(e *env) [][]byte { return one(e.signed(pkgv, "upload-rem", nil)) },
			check: func(t *testing.T, e *env) {
				left, _ := os.ReadDir(filepath.Join(e.cfg.Home, "upload"))
				for _, f := range left {
					if strings.HasPrefix(f.Name(), "hello") {
						t.Errorf("%s still in upload/", f.Name())
					}
				}
			}},
		{name: "ok clearsigned .changes", mails: func(e *env) [][]byte {
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			m.Body = gpg.Clearsign(replytest.Admin, okChanges(e), "SHA256", "")
			return one(m.Compose())
		}, check: func(t *testing.T, e *env) {
			up := filepath.Join(e.cfg.Home, "upload")
			b, err := os.ReadFile(filepath.Join(up, "hello_1.0-1_amd64.changes"))
			if err != nil || !strings.HasPrefix(string(b), "-----BEGIN PGP SIGNED MESSAGE-----") {
				t.Errorf("upload .changes: %v %q", err, b)
			}
			if d, err := os.ReadFile(filepath.Join(up, "hello_1.0-1_amd64.deb")); err != nil || string(d) != "a built package\n" {
				t.Errorf("upload .deb: %v %q", err, d)
			}
			if _, err := os.Stat(filepath.Join(e.h.BuildDir(), "hello_1.0-1_amd64.deb")); err == nil {
				t.Error(".deb still in build/")
			}
		}},
		{name: "ok PGP/MIME .changes", mails: func(e *env) [][]byte {
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			return one(m.PGPMIME(gpg, replytest.Admin, okChanges(e), "SHA256", nil))
		}, check: func(t *testing.T, e *env) {
			if _, err := os.Stat(filepath.Join(e.cfg.Home, "upload", "hello_1.0-1_amd64.deb")); err != nil {
				t.Error(err)
			}
		}},
		{name: "should-build build", setup: func(e *env) { e.sent(pkgv, "sb@x", "should-build") }, mails: func(e *env) [][]byte {
			m := e.mail("Re: Should I build " + pkgv + " (dist=bookworm)?")
			m.InReplyTo = "sb@x"
			m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText("build", pkgv, dist), "SHA256", "")
			return one(m.Compose())
		}, check: func(t *testing.T, e *env) {
			if !redoHas(t, e, pkgv) {
				t.Error("not in REDO")
			}
		}},
		{name: "should-build fail", setup: func(e *env) { e.sent(pkgv, "sb@x", "should-build") }, mails: func(e *env) [][]byte {
			m := e.mail("Re: Should I build " + pkgv + " (dist=bookworm)?")
			m.InReplyTo = "sb@x"
			m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText("fail", pkgv, dist), "SHA256", "")
			return one(m.Compose())
		}, want: []string{"Old-Failed"}, check: wantState("Failed")},
		{name: "should-build no-build", setup: func(e *env) { e.sent(pkgv, "sb@x", "should-build") }, mails: func(e *env) [][]byte {
			m := e.mail("Re: Should I build " + pkgv + " (dist=bookworm)?")
			m.InReplyTo = "sb@x"
			m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText("no-build", pkgv, dist), "SHA256", "")
			return one(m.Compose())
		}, check: wantState("Not-For-Us")},
		{name: "should-build giveback", setup: func(e *env) { e.sent(pkgv, "sb@x", "should-build") }, mails: func(e *env) [][]byte {
			m := e.mail("Re: Should I build " + pkgv + " (dist=bookworm)?")
			m.InReplyTo = "sb@x"
			m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText("giveback", pkgv, dist), "SHA256", "")
			return one(m.Compose())
		}, check: func(t *testing.T, e *env) {
			if s := e.info("hello").State; s != "Needs-Build" && s != "BD-Uninstallable" {
				t.Errorf("state %s", s)
			}
		}},
		{name: "INSTALLED cleans the upload queue", setup: func(e *env) {
			up := filepath.Join(e.cfg.Home, "upload")
			os.MkdirAll(up, 0o755)
			os.WriteFile(filepath.Join(up, "hello_1.0-1_amd64.changes"), []byte(e.buildFiles(pkgv, "", "x\n")), 0o644)
			os.WriteFile(filepath.Join(up, "hello_1.0-1_amd64.deb"), []byte("x\n"), 0o644)
			os.WriteFile(filepath.Join(up, "hello_1.0-1_amd64.upload"), nil, 0o644)
		}, mails: func(e *env) [][]byte {
			m := e.mail("hello_1.0-1_amd64.changes ACCEPTED")
			m.From = "Archive <dak@ftp-master.example.org>"
			m.Body = "Accepted:\nhello_1.0-1_amd64.deb\n"
			return one(m.Compose())
		}, check: func(t *testing.T, e *env) {
			left, _ := os.ReadDir(filepath.Join(e.cfg.Home, "upload"))
			if len(left) > 1 { // the lock file stays
				t.Errorf("upload/ still has %d files", len(left))
			}
		}},
		{name: "is NEW is logged", mails: func(e *env) [][]byte {
			m := e.mail("hello_1.0-1_amd64.changes is NEW")
			m.Body = "new\n"
			return one(m.Compose())
		}, check: func(t *testing.T, e *env) {
			if !strings.Contains(e.daemonLog(), "hello must be manually dinstall-ed") {
				t.Error("not logged")
			}
		}},
		// wanna-build's merge has moved the old version to Needs-Build
		// when it sends this mail.
		{name: "new version of", setup: func(e *env) {
			newVersion(e, "hello_1.2-1")
			e.h.REDO().Add(home.RedoEntry{PkgVersion: pkgv, Dist: dist})
		},
			mails: func(e *env) [][]byte {
				m := e.mail("new version of hello (dist=bookworm)")
				m.From = "wanna-build <wb@example.org>"
				m.Body = "You are registered as builder of hello\nin version 1.0-1.\nnew source version 1.2-1.\n"
				return one(m.Compose())
			}, check: func(t *testing.T, e *env) {
				if nv, ok, _ := e.h.Outdated().IsOutdated(pkgv, e.means()); !ok || nv != "hello_1.2-1" {
					t.Errorf("outdated: %q %v", nv, ok)
				}
				if es, _, _ := e.h.REDO().Read(); len(es) != 0 {
					t.Errorf("REDO still has %v", es)
				}
				if found, _ := e.h.Skip().Take(pkgv, e.means()); found {
					t.Error("a version dropped from REDO was also put in SKIP")
				}
			}},
		{name: "new version of: not in REDO goes to SKIP",
			setup: func(e *env) { newVersion(e, "hello_1.2-1") },
			mails: func(e *env) [][]byte {
				m := e.mail("new version of hello_1.0-1 (dist=bookworm)")
				m.From = "wanna-build <wb@example.org>"
				m.Body = "You are registered as builder of hello\nin version 1.0-1.\nnew source version 1.2-1.\n"
				return one(m.Compose())
			}, check: func(t *testing.T, e *env) {
				if found, _ := e.h.Skip().Take(pkgv, e.means()); !found {
					t.Errorf("%s not in SKIP", pkgv)
				}
				if nv, ok, _ := e.h.Outdated().IsOutdated(pkgv, e.means()); !ok || nv != "hello_1.2-1" {
					t.Errorf("outdated: %q %v", nv, ok)
				}
			}},
		{name: "new version of: forged, the queue has no newer version",
			setup: func(e *env) { e.h.REDO().Add(home.RedoEntry{PkgVersion: pkgv, Dist: dist}) },
			mails: func(e *env) [][]byte {
				m := e.mail("new version of hello_1.0-1 (dist=bookworm)")
				m.Body = "You are registered as builder of hello\nin version 1.0-1.\nnew source version 1.2-1.\n"
				return one(m.Compose())
			}, check: func(t *testing.T, e *env) {
				if nv, ok, _ := e.h.Outdated().IsOutdated(pkgv, e.means()); ok {
					t.Errorf("outdated recorded: %q", nv)
				}
				if !redoHas(t, e, pkgv) {
					t.Error("REDO entry purged")
				}
				if found, _ := e.h.Skip().Take(pkgv, e.means()); found {
					t.Error("put in SKIP")
				}
				if !strings.Contains(e.daemonLog(), "not a newer version") {
					t.Errorf("not logged:\n%s", e.daemonLog())
				}
			}},
		{name: "new version of: names outside build/ refused",
			setup: func(e *env) { newVersion(e, "hello_1.2-1") },
			mails: func(e *env) [][]byte {
				var out [][]byte
				for _, subj := range []string{"new version of ../upload/hello (dist=bookworm)", "new version of ../../victim (dist=bookworm)", "new version of hello_../../x (dist=bookworm)"} {
					m := e.mail(subj)
					m.Body = "You are registered as builder of hello\nin version 1.0-1.\nnew source version 1.2-1.\n"
					out = append(out, m.Compose())
				}
				return out
			}, check: func(t *testing.T, e *env) {
				if b, _ := os.ReadFile(e.h.Path("build", "PURGE")); len(b) != 0 {
					t.Errorf("PURGE has %q", b)
				}
				if n := strings.Count(e.daemonLog(), "new-version notice from"); n != 3 {
					t.Errorf("%d notices refused, want 3:\n%s", n, e.daemonLog())
				}
			}},
		{name: "Processing of: success logged", mails: func(e *env) [][]byte {
			m := e.mail("Processing of hello_1.0-1_amd64.changes")
			m.Body = "hello_1.0-1_amd64.changes uploaded successfully to localhost\n"
			return one(m.Compose())
		}},
		{name: "Processing of: failure forwarded", mails: func(e *env) [][]byte {
			m := e.mail("Processing of hello_1.0-1_amd64.changes")
			m.Body = "Rejected: bad signature\n"
			return one(m.Compose())
		}, forward: 1},
		{name: "unknown subject forwarded", mails: func(e *env) [][]byte {
			m := e.mail("=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from a friend")
			m.Body = "hi\n"
			return one(m.Compose())
		}, forward: 1},
		{name: "blacklisted sender dropped", setup: func(e *env) {
			os.WriteFile(e.h.Path("mail-blacklist"), []byte("spam\\.example\\.com\n"), 0o644)
		}, mails: func(e *env) [][]byte {
			m := e.mail("buy now")
			m.From = "x@spam.example.com"
			m.Body = "hi\n"
			return one(m.Compose())
		}},
		{name: "mailer-daemon loop guard", mails: func(e *env) [][]byte {
			var out [][]byte
			for i := 0; i < 8; i++ {
				m := e.mail("Undelivered Mail Returned to Sender")
				m.From = "MAILER-DAEMON@example.org (Mail Delivery System)"
				m.Body = "bounce\n"
				out = append(out, m.Compose())
			}
			return out
		}, forward: 5},
		// Rejections: each gets an error reply naming the check, and nothing changes.
		{name: "unsigned", mails: func(e *env) [][]byte {
			m := e.mail(logSubject(pkgv))
			m.InReplyTo, m.Body = logID, replytest.KeywordText("retry", pkgv, dist)
			return one(m.Compose())
		}, want: []string{"Signature check failed (not signed)"}, check: unchanged},
		{name: "forged body clearsigned", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) { m.Body = strings.Replace(m.Body, "retry", "fail\nforged", 1) }))
		}, want: []string{"Signature check failed (bad signature)", "changed after signing"}, check: unchanged},
		{name: "forged body PGP/MIME", mails: func(e *env) [][]byte {
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			return one(m.PGPMIME(gpg, replytest.Admin, replytest.KeywordText("retry", pkgv, dist), "SHA256", func(s string) string { return strings.Replace(s, "retry", "giveback", 1) }))
		}, want: []string{"bad signature"}, check: unchanged},
		{name: "text outside the signed part", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) { m.Body = "fail\nreally\n\n" + m.Body }))
		}, want: []string{"text outside the signed part", `"fail"`}, check: unchanged},
		{name: "unknown key", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) {
				m.Body = gpg.Clearsign(replytest.Unknown, replytest.KeywordText("retry", pkgv, dist), "SHA256", "")
			}))
		}, want: []string{"(unknown key)", gpg.Fingerprint(replytest.Unknown)}, check: unchanged},
		{name: "expired key", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) {
				m.Body = gpg.Clearsign(replytest.Expired, replytest.KeywordText("retry", pkgv, dist), "SHA256", "20200101T010000")
			}))
		}, want: []string{"(expired key)"}, check: unchanged},
		{name: "revoked key", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) { m.Body = revokedSig }))
		}, want: []string{"(revoked key)"}, check: unchanged},
		{name: "SHA-1", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) {
				m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText("retry", pkgv, dist), "SHA1", "")
			}))
		}, want: []string{"(weak hash)", "SHA-256"}, check: unchanged},
		{name: "replay", mails: func(e *env) [][]byte {
			first := e.signed(pkgv, "manual", nil)
			again := strings.Replace(string(first), "Message-ID: <", "Message-ID: <again.", 1)
			return [][]byte{first, []byte(again)}
		}, want: []string{"(replay)", "already used"}},
		{name: "signature older than the log mail", setup: func(e *env) {
			e.h.Sent().Add(home.SentMail{MessageID: "later@buildd", Time: time.Now().Add(time.Minute), Dist: dist, Arch: "amd64", PkgVersion: pkgv, Kind: "log"})
		}, mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) { m.InReplyTo = "later@buildd" }))
		}, want: []string{"(replay)", "before the mail"}, check: unchanged},
		{name: "re-aimed subject", setup: func(e *env) { e.take("other_2.0-1") }, mails: func(e *env) [][]byte {
			// A signed retry for hello, sent with other's subject.
			m := e.mail(logSubject("other_2.0-1"))
			m.InReplyTo = "log.other_2.0-1@buildd.example.org"
			m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordText("retry", pkgv, dist), "SHA256", "")
			return one(m.Compose())
		}, want: []string{"does not name the package", `"other_2.0-1 on amd64 (dist=bookworm)"`}, check: func(t *testing.T, e *env) {
			if redoHas(t, e, "other_2.0-1") {
				t.Error("other in REDO")
			}
		}},
		{name: "re-aimed In-Reply-To", setup: func(e *env) { e.take("other_2.0-1") }, mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) { m.InReplyTo = "log.other_2.0-1@buildd.example.org" }))
		}, want: []string{"answers the mail <log.other_2.0-1@buildd.example.org> about other_2.0-1"}, check: unchanged},
		{name: "no PKG_VERSION line", mails: func(e *env) [][]byte {
			return one(e.signed(pkgv, "retry", func(m *replytest.Mail) {
				m.Body = gpg.Clearsign(replytest.Admin, "retry\n", "SHA256", "")
			}))
		}, want: []string{"does not name the package"}, check: unchanged},
		{name: "../ in a file name", mails: func(e *env) [][]byte {
			ch := strings.ReplaceAll(okChanges(e), " hello_1.0-1_amd64.deb", " ../hello_1.0-1_amd64.deb")
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			m.Body = gpg.Clearsign(replytest.Admin, ch, "SHA256", "")
			return one(m.Compose())
		}, want: []string{"cannot be used", "../hello_1.0-1_amd64.deb"}, check: unchanged},
		{name: "missing file", mails: func(e *env) [][]byte {
			ch := okChanges(e)
			os.Remove(filepath.Join(e.h.BuildDir(), "hello_1.0-1_amd64.deb"))
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			m.Body = gpg.Clearsign(replytest.Admin, ch, "SHA256", "")
			return one(m.Compose())
		}, want: []string{"were not found", "hello_1.0-1_amd64.deb"}, check: unchanged},
		{name: "wrong checksum", mails: func(e *env) [][]byte {
			ch := okChanges(e)
			os.WriteFile(filepath.Join(e.h.BuildDir(), "hello_1.0-1_amd64.deb"), []byte("A built package\n"), 0o644)
			m := e.mail(logSubject(pkgv))
			m.InReplyTo = logID
			m.Body = gpg.Clearsign(replytest.Admin, ch, "SHA256", "")
			return one(m.Compose())
		}, want: []string{"bad checksums", "hello_1.0-1_amd64.deb"}, check: func(t *testing.T, e *env) {
			if _, err := os.Stat(filepath.Join(e.cfg.Home, "upload", "hello_1.0-1_amd64.deb")); err == nil {
				t.Error("copied to upload/")
			}
		}},
		{name: "unknown package", setup: func(e *env) { e.sent("nosuch_1.0", "log.nosuch_1.0@buildd.example.org", "log") },
			mails: func(e *env) [][]byte { return one(e.signed("nosuch_1.0", "retry", nil)) },
			want:  []string{"nosuch is not registered"}},
		{name: "wrong state", setup: func(e *env) {
			e.client().Failed(t.Context(), pkgv, "broken")
		}, mails: func(e *env) [][]byte { return one(e.signed(pkgv, "retry", nil)) },
			want: []string{"state is Failed"}},
		{name: "wrong version", setup: func(e *env) { e.sent("hello_0.9-1", "log.hello_0.9-1@buildd.example.org", "log") },
			mails: func(e *env) [][]byte { return one(e.signed("hello_0.9-1", "retry", nil)) },
			want:  []string{"version 1.0-1 registered as Building"}},
		{name: "bad keyword", mails: func(e *env) [][]byte { return one(e.signed(pkgv, "frobnicate", nil)) },
			want: []string{`Bad keyword in answer "frobnicate"`}, check: unchanged},
		{name: "unknown dist", mails: func(e *env) [][]byte {
			m := e.mail("Re: Log for failed build of hello_1.0-1 (dist=sid)")
			m.Body = "retry\n"
			return one(m.Compose())
		}, want: []string{`Unknown distribution "sid"`}},
		{name: "outdated", setup: func(e *env) { e.h.Outdated().Add(pkgv, "hello_1.3-1", dist, "amd64", timeNow()) },
			mails: func(e *env) [][]byte { return one(e.signed(pkgv, "retry", nil)) },
			want:  []string{"is outdated", "hello_1.3-1"}, check: unchanged},
		// Builders sharing one queue: an answer to this buildd's log mail
		// acts only while the package is this buildd's.
		{name: "ok to a package Built by another builder", setup: func(e *env) { e.byOther(queue.Port.Built) },
			mails: func(e *env) [][]byte { return one(e.signedChanges(okChanges(e))) },
			want:  []string{"check_state(", "is Built by " + otherUser, "(not by this buildd, " + dbUser + ")", "isn't registered as Building"},
			check: func(t *testing.T, e *env) {
				held(queue.Built, otherUser)(t, e)
				notUploaded(t, e)
			}},
		{name: "fail to a package Build-Attempted by another builder", setup: func(e *env) { e.byOther(queue.Port.Attempted) },
			mails: func(e *env) [][]byte { return one(e.signed(pkgv, "fail\nFTBFS: no C compiler", nil)) },
			want:  []string{"is Build-Attempted by " + otherUser, "(not by this buildd, " + dbUser + ")"},
			check: func(t *testing.T, e *env) {
				held(queue.BuildAttempted, otherUser)(t, e)
				if i := e.info("hello"); i.FailedText != "" {
					t.Errorf("failed text %q", i.FailedText)
				}
				if strings.Contains(e.daemonLog(), "reply from") {
					t.Errorf("signature spent:\n%s", e.daemonLog())
				}
			}},
		{name: "retry to a package Building by another builder", setup: func(e *env) { e.byOther(nil) },
			mails: func(e *env) [][]byte { return one(e.signed(pkgv, "retry", nil)) },
			want:  []string{"is building by " + otherUser, "(not by this buildd, " + dbUser + ")"},
			check: func(t *testing.T, e *env) {
				held(queue.Building, otherUser)(t, e)
				if redoHas(t, e, pkgv) {
					t.Error("in REDO")
				}
			}},
		{name: "ok to a package Built by this builder", setup: func(e *env) { e.mine(queue.Port.Built) },
			mails: func(e *env) [][]byte { return one(e.signedChanges(okChanges(e))) },
			check: func(t *testing.T, e *env) {
				held(queue.Built, dbUser)(t, e)
				if d, err := os.ReadFile(filepath.Join(e.cfg.Home, "upload", "hello_1.0-1_amd64.deb")); err != nil || string(d) != "a built package\n" {
					t.Errorf("upload .deb: %v %q", err, d)
				}
			}},
		{name: "fail to a package Build-Attempted by this builder", setup: func(e *env) { e.mine(queue.Port.Attempted) },
			mails: func(e *env) [][]byte { return one(e.signed(pkgv, "fail\nFTBFS: no C compiler", nil)) },
			check: func(t *testing.T, e *env) {
				held(queue.Failed, dbUser)(t, e)
				if i := e.info("hello"); !strings.Contains(i.FailedText, "no C compiler") {
					t.Errorf("failed text %q", i.FailedText)
				}
			}},
		{name: "ok to a package this builder took back from another builder", setup: func(e *env) {
			e.byOther(nil)
			if err := e.other().GiveBack(context.Background(), pkgv); err != nil {
				e.t.Fatal(err)
			}
			if err := e.client().Take(context.Background(), pkgv); err != nil {
				e.t.Fatal(err)
			}
			e.mine(queue.Port.Built)
		}, mails: func(e *env) [][]byte { return one(e.signedChanges(okChanges(e))) },
			check: func(t *testing.T, e *env) {
				if _, err := os.Stat(filepath.Join(e.cfg.Home, "upload", "hello_1.0-1_amd64.deb")); err != nil {
					t.Error(err)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.take(pkgv)
			if c.setup != nil {
				c.setup(e)
			}
			mails := c.mails(e)
			if *update {
				for i, m := range mails {
					name := strings.NewReplacer(" ", "-", "/", "-", ":", "").Replace(c.name)
					os.MkdirAll(filepath.Join("testdata", "corpus"), 0o755)
					os.WriteFile(filepath.Join("testdata", "corpus", fmt.Sprintf("%s.%d.eml", name, i)), m, 0o644)
				}
			}
			e.deliver(mails...)
			var replies, forwards []string
			for _, m := range e.smtp.Mails() {
				if len(m.To) == 1 && m.To[0] == "buildd-admin@example.org" {
					forwards = append(forwards, string(m.Data))
				} else {
					replies = append(replies, string(m.Data))
				}
			}
			if len(forwards) != c.forward {
				t.Errorf("%d mails forwarded, want %d", len(forwards), c.forward)
			}
			for _, f := range forwards {
				if !strings.Contains(f, "Resent-To: buildd-admin@example.org") || !strings.Contains(f, "Resent-From: ") {
					t.Errorf("forward without Resent-* headers:\n%s", f)
				}
			}
			switch {
			case c.want == nil && len(replies) > 0:
				t.Errorf("unexpected reply:\n%s", replies[0])
			case c.want != nil && len(replies) == 0:
				t.Errorf("no error reply; daemon log:\n%s", e.daemonLog())
			case c.want != nil:
				r := replies[len(replies)-1]
				body := decodeQP(r)
				t.Logf("error reply:\n%s", body)
				for _, w := range append([]string{"Your mail could not be processed:", "In-Reply-To: <", "Subject: Re: ", "\n> "}, c.want...) {
					if !strings.Contains(body, w) {
						t.Errorf("reply lacks %q:\n%s", w, body)
					}
				}
			}
			if c.check != nil {
				c.check(t, e)
			}
		})
	}
}

// newVersion makes the queue hold pkgv, a newer version of hello, in
// Needs-Build, as wanna-build's merge does before it sends "new version of".
func newVersion(e *env, pkgv string) {
	e.t.Helper()
	c := e.client()
	if err := c.Take(context.Background(), pkgv); err != nil {
		e.t.Fatal(err)
	}
	if err := c.GiveBack(context.Background(), pkgv); err != nil {
		e.t.Fatal(err)
	}
}

// otherUser is the db user of another builder sharing the queue.
const otherUser = "buildd-other"

// other is the queue as the builder otherUser reaches it.
func (e *env) other() queue.Port {
	d := *e.dist()
	d.WannaBuildDBUser = otherUser
	return port.Open(e.cfg, &d)
}

// giveBack gives hello_1.0-1, Building by this buildd, back, as an admin's
// give-back does.
func (e *env) giveBack() {
	e.t.Helper()
	if err := e.client().GiveBack(context.Background(), pkgv); err != nil {
		e.t.Fatal(err)
	}
}

// byOther moves hello_1.0-1, Building by this buildd (its log mail sent),
// to another builder through the queue's own commands: given back, taken
// by otherUser, then set by it with then (nil: left Building).
func (e *env) byOther(then func(queue.Port, context.Context, string) error) {
	e.t.Helper()
	e.giveBack()
	o := e.other()
	if err := o.Take(context.Background(), pkgv); err != nil {
		e.t.Fatal(err)
	}
	if then != nil {
		if err := then(o, context.Background(), pkgv); err != nil {
			e.t.Fatal(err)
		}
	}
	if i := e.info("hello"); i.Builder != otherUser {
		e.t.Fatalf("builder %q, want %s", i.Builder, otherUser)
	}
}

// mine sets hello_1.0-1, Building by this buildd, with then.
func (e *env) mine(then func(queue.Port, context.Context, string) error) {
	e.t.Helper()
	if err := then(e.client(), context.Background(), pkgv); err != nil {
		e.t.Fatal(err)
	}
}

// signedChanges is an "ok" answer to hello_1.0-1's log mail: ch clearsigned.
func (e *env) signedChanges(ch string) []byte {
	m := e.mail(logSubject(pkgv))
	m.InReplyTo = logID
	m.Body = gpg.Clearsign(replytest.Admin, ch, "SHA256", "")
	return m.Compose()
}

// held checks hello's state and builder.
func held(state queue.State, builder string) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		if i := e.info("hello"); i.State != state || i.Builder != builder {
			t.Errorf("state %s by %q, want %s by %q", i.State, i.Builder, state, builder)
		}
	}
}

// notUploaded checks that nothing of hello reached the upload queue and
// its files are still in build/.
func notUploaded(t *testing.T, e *env) {
	left, _ := os.ReadDir(filepath.Join(e.cfg.Home, "upload"))
	for _, f := range left {
		if strings.HasPrefix(f.Name(), "hello") {
			t.Errorf("%s in upload/", f.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(e.h.BuildDir(), "hello_1.0-1_amd64.deb")); err != nil {
		t.Errorf("build/: %v", err)
	}
}

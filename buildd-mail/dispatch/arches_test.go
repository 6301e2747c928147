package dispatch_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/buildd-mail/mqueue"
	"buildd/buildd-mail/replytest"
	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer/smtptest"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// The arches are the two architectures the host of TestSeveralArches
// builds bookworm for.
var arches = []string{"amd64", "arm64"}

// newArchesEnv is a home whose host builds bookworm for amd64 and arm64,
// with hello_1.0-1 built for both: Building in both queues, each build's
// .changes and .deb in build/ (each .deb with its arch's content), each
// log mail recorded as sent (log.hello_1.0-1.ARCH@buildd.example.org).
func newArchesEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &env{t: t, dir: dir, smtp: srv, conf: filepath.Join(dir, "buildd.conf")}
	conf := fmt.Sprintf("home = %q\nadmin_mail = \"buildd-admin@example.org\"\nwanna_build_db = %q\nadmin_keyring = %q\nmail_from = \"buildd@example.org\"\nsmtp = %q\n",
		filepath.Join(dir, "home"), filepath.Join(dir, "wanna-build.db"), keyring, srv.Addr)
	for _, a := range arches {
		conf += fmt.Sprintf("\n[[dist]]\ndist_name = %q\nbuilt_architecture = %q\nwanna_build_db_user = %q\n", dist, a, dbUser)
	}
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = config.Load(e.conf); err != nil {
		t.Fatal(err)
	}
	e.h = home.New(e.cfg.Home)
	if err := e.h.Init(); err != nil {
		t.Fatal(err)
	}
	e.q = mqueue.New(e.h.MQueueDir())
	e.p = e.processor()
	for _, a := range arches {
		if err := e.queueOf(a).Take(context.Background(), pkgv); err != nil {
			t.Fatalf("take %s on %s: %v", pkgv, a, err)
		}
		if err := e.h.Sent().Add(home.SentMail{MessageID: archLogID(a), Time: time.Now().Add(-time.Hour), Dist: dist, Arch: a, PkgVersion: pkgv, Kind: "log"}); err != nil {
			t.Fatal(err)
		}
		e.buildFilesOn(a)
	}
	return e
}

func archLogID(arch string) string { return "log." + pkgv + "." + arch + "@buildd.example.org" }

func (e *env) distOn(arch string) *config.Dist {
	d, ok := e.cfg.DistArch(dist, arch)
	if !ok {
		e.t.Fatalf("no [[dist]] %s/%s", dist, arch)
	}
	return d
}

func (e *env) queueOf(arch string) queue.Port { return port.Open(e.cfg, e.distOn(arch)) }

func (e *env) infoOn(arch string) *queue.Info {
	e.t.Helper()
	i, err := e.queueOf(arch).Info(context.Background(), "hello")
	if err != nil {
		e.t.Fatalf("info hello on %s: %v", arch, err)
	}
	return i
}

// buildFilesOn puts the build of hello_1.0-1 for arch into build/: its
// .deb (content "built for ARCH") and its .changes, and returns the
// .changes text.
func (e *env) buildFilesOn(arch string) string {
	e.t.Helper()
	deb := "hello_1.0-1_" + arch + ".deb"
	content := "built for " + arch + "\n"
	if err := os.WriteFile(filepath.Join(e.h.BuildDir(), deb), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	m5 := md5.Sum([]byte(content))
	ch := fmt.Sprintf(`Format: 1.8
Date: Mon, 01 Jan 2024 00:00:00 +0000
Source: hello
Binary: hello
Architecture: %s
Version: 1.0-1
Distribution: bookworm
Urgency: medium
Maintainer: Test <test@example.org>
Changed-By: Test <test@example.org>
Description:
 hello - test package
Changes:
 hello (1.0-1) bookworm; urgency=medium
 .
   * Test build.
Checksums-Sha256:
 %s %d %s
Files:
 %s %d misc optional %s
`, arch, hex.EncodeToString(sum[:]), len(content), deb, hex.EncodeToString(m5[:]), len(content), deb)
	if err := os.WriteFile(filepath.Join(e.h.BuildDir(), "hello_1.0-1_"+arch+".changes"), []byte(ch), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return ch
}

// archSubject is the subject of a reply to the log mail of hello's build
// for arch ("" for the subject of a mail sent before subjects named it).
func archSubject(arch string) string {
	if arch == "" {
		return "Re: Log for successful build of " + pkgv + " (dist=" + dist + ")"
	}
	return "Re: Log for successful build of " + pkgv + " on " + arch + " (dist=" + dist + ")"
}

// archReply is a reply to the log mail of the build for arch, the signed
// text body clearsigned by the admin.
func (e *env) archReply(arch, body string, mod func(m *replytest.Mail)) []byte {
	m := e.mail(archSubject(arch))
	m.InReplyTo = archLogID(arch)
	m.Body = gpg.Clearsign(replytest.Admin, body, "SHA256", "")
	if mod != nil {
		mod(m)
	}
	return m.Compose()
}

// redoOn are the REDO lines of arch, and those naming no arch.
func (e *env) redoOn(arch string) []string {
	es, _, _ := e.h.REDO().Read()
	var out []string
	for _, r := range es {
		if r.Arch == arch || r.Arch == "" {
			out = append(out, r.String())
		}
	}
	return out
}

func other(arch string) string {
	if arch == "amd64" {
		return "arm64"
	}
	return "amd64"
}

// inBuild reports whether the build of hello for arch is whole in
// build/: its .changes and its .deb.
func (e *env) inBuild(arch string) bool {
	for _, f := range []string{"hello_1.0-1_" + arch + ".changes", "hello_1.0-1_" + arch + ".deb"} {
		if _, err := os.Stat(filepath.Join(e.h.BuildDir(), f)); err != nil {
			return false
		}
	}
	return true
}

// untouched checks that nothing of the build for arch changed: Building
// by this buildd in its queue, its files in build/, its REDO lines as
// redo says, nothing in the upload queue.
func untouched(t *testing.T, e *env, arch string, redo ...string) {
	t.Helper()
	if i := e.infoOn(arch); i.State != queue.Building || i.Builder != dbUser {
		t.Errorf("%s: %s by %s, want Building by %s", arch, i.State, i.Builder, dbUser)
	}
	if !e.inBuild(arch) {
		t.Errorf("%s: its build left build/", arch)
	}
	if got := e.redoOn(arch); !slices.Equal(got, redo) {
		t.Errorf("%s: REDO has %q, want %q", arch, got, redo)
	}
	for _, f := range []string{"hello_1.0-1_" + arch + ".changes", "hello_1.0-1_" + arch + ".deb"} {
		if _, err := os.Stat(filepath.Join(e.cfg.Home, "upload", f)); err == nil {
			t.Errorf("%s: %s in upload/", arch, f)
		}
	}
}

// TestSeveralArches: a host builds bookworm for amd64 and arm64, and
// hello_1.0-1 was built for both; REDO has a line of the other
// architecture's build (an earlier retry), and an answer to its log mail
// ("manual") comes first. A signed answer to the log mail of one
// architecture's build acts on that queue and that build only, each way;
// an answer that does not bind the architecture, or binds another one,
// is refused and changes nothing in either.
func TestSeveralArches(t *testing.T) {
	type acase struct {
		name  string
		mails func(e *env, arch string) [][]byte
		want  []string // substrings of the error reply; nil: no reply, and the other arch untouched
		check func(t *testing.T, e *env, arch string)
	}
	kw := func(keyword string) func(e *env, arch string) [][]byte {
		return func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordTextOn(keyword, pkgv, arch, dist), nil))
		}
	}
	cases := []acase{
		{name: "giveback", mails: kw("giveback"), check: func(t *testing.T, e *env, arch string) {
			if s := e.infoOn(arch).State; s != queue.NeedsBuild && s != queue.BDUninstallable {
				t.Errorf("%s: state %s after giveback", arch, s)
			}
			if e.inBuild(arch) {
				t.Errorf("%s: its build is still in build/ after giveback", arch)
			}
		}},
		{name: "fail", mails: kw("fail\nFTBFS on this arch"), check: func(t *testing.T, e *env, arch string) {
			if i := e.infoOn(arch); i.State != queue.Failed || !strings.Contains(i.FailedText, "FTBFS on this arch") {
				t.Errorf("%s: %s %q after fail", arch, i.State, i.FailedText)
			}
		}},
		{name: "retry", mails: kw("retry"), check: func(t *testing.T, e *env, arch string) {
			if got := e.redoOn(arch); !slices.Equal(got, []string{pkgv + " " + dist + "/" + arch}) {
				t.Errorf("REDO of %s %q", arch, got)
			}
		}},
		{name: "ok", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, e.buildFilesOn(arch), nil))
		}, check: func(t *testing.T, e *env, arch string) {
			up := filepath.Join(e.cfg.Home, "upload")
			if b, err := os.ReadFile(filepath.Join(up, "hello_1.0-1_"+arch+".changes")); err != nil || !strings.Contains(string(b), "Architecture: "+arch) {
				t.Errorf("upload/%s .changes: %v %q", arch, err, b)
			}
			if d, err := os.ReadFile(filepath.Join(up, "hello_1.0-1_"+arch+".deb")); err != nil || string(d) != "built for "+arch+"\n" {
				t.Errorf("upload/%s .deb: %v %q", arch, err, d)
			}
		}},
		{name: "subject without the arch, In-Reply-To its log mail", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordTextOn("giveback", pkgv, arch, dist), func(m *replytest.Mail) { m.Subject = archSubject("") }))
		}, check: func(t *testing.T, e *env, arch string) {
			if s := e.infoOn(arch).State; s != queue.NeedsBuild && s != queue.BDUninstallable {
				t.Errorf("%s: state %s after giveback", arch, s)
			}
		}},
		{name: "should-build build", mails: func(e *env, arch string) [][]byte {
			if err := e.h.Sent().Add(home.SentMail{MessageID: "sb." + arch + "@x", Time: time.Now().Add(-time.Minute), Dist: dist, Arch: arch, PkgVersion: pkgv, Kind: "should-build"}); err != nil {
				e.t.Fatal(err)
			}
			m := e.mail("Re: Should I build " + pkgv + " on " + arch + " (dist=" + dist + ")?")
			m.InReplyTo = "sb." + arch + "@x"
			m.Body = gpg.Clearsign(replytest.Admin, replytest.KeywordTextOn("build", pkgv, arch, dist), "SHA256", "")
			return one(m.Compose())
		}, check: func(t *testing.T, e *env, arch string) {
			if got := e.redoOn(arch); !slices.Equal(got, []string{pkgv + " " + dist + "/" + arch}) {
				t.Errorf("REDO of %s %q", arch, got)
			}
		}},
		// Refused: the error reply names the check; neither build changes.
		{name: "signed line without the arch", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordText("giveback", pkgv, dist), nil))
		}, want: []string{"not its architecture", "builds dist=bookworm for several"}},
		{name: "signed line naming the other arch", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordTextOn("giveback", pkgv, other(arch), dist), nil))
		}, want: []string{"names the build on"}},
		{name: "re-aimed at the other arch's log mail", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordTextOn("giveback", pkgv, arch, dist), func(m *replytest.Mail) { m.InReplyTo = archLogID(other(arch)) }))
		}, want: []string{"answers the mail <", "but its subject"}},
		{name: "the other arch's .changes", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, e.buildFilesOn(other(arch)), nil))
		}, want: []string{"The signed .changes is for the build on", "this reply answers the build on"}},
		{name: "subject without the arch, no In-Reply-To", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordTextOn("giveback", pkgv, arch, dist), func(m *replytest.Mail) {
				m.Subject, m.InReplyTo = archSubject(""), ""
			}))
		}, want: []string{"without its architecture", "builds\ndist=bookworm for amd64 and arm64"}},
		{name: "an arch not built here", mails: func(e *env, arch string) [][]byte {
			return one(e.archReply(arch, replytest.KeywordTextOn("giveback", pkgv, "riscv64", dist), func(m *replytest.Mail) { m.Subject = archSubject("riscv64") }))
		}, want: []string{`Unknown architecture "riscv64"`}},
	}
	for _, c := range cases {
		for _, arch := range arches {
			t.Run(c.name+"/"+arch, func(t *testing.T) {
				e := newArchesEnv(t)
				otherRedo := home.RedoEntry{PkgVersion: pkgv, Dist: dist, Arch: other(arch)}
				if err := e.h.REDO().Add(otherRedo); err != nil {
					t.Fatal(err)
				}
				first := e.archReply(other(arch), replytest.KeywordTextOn("manual", pkgv, other(arch), dist), nil)
				e.deliver(append([][]byte{first}, c.mails(e, arch)...)...)
				var replies []string
				for _, m := range e.smtp.Mails() {
					replies = append(replies, decodeQP(string(m.Data)))
				}
				if c.want == nil {
					if len(replies) > 0 {
						t.Fatalf("unexpected reply:\n%s", replies[0])
					}
					c.check(t, e, arch)
					untouched(t, e, other(arch), otherRedo.String())
					return
				}
				if len(replies) != 1 {
					t.Fatalf("%d replies, want one error reply; daemon log:\n%s", len(replies), e.daemonLog())
				}
				for _, w := range append([]string{"Your mail could not be processed:"}, c.want...) {
					if !strings.Contains(replies[0], w) {
						t.Errorf("reply lacks %q:\n%s", w, replies[0])
					}
				}
				untouched(t, e, arch)
				untouched(t, e, other(arch), otherRedo.String())
			})
		}
	}
}

// TestSeveralArchesOldRecords: records and replies from before subjects
// and sent-mails named the architecture. A sent mail recorded without it
// still ties an answer whose subject and signed text name the
// architecture; a signed answer without it is refused on a host that
// builds the dist for two, whatever it answers.
func TestSeveralArchesOldRecords(t *testing.T) {
	e := newArchesEnv(t)
	if err := e.h.Sent().Add(home.SentMail{MessageID: "old@buildd", Time: time.Now().Add(-time.Minute), Dist: dist, Arch: "arm64", PkgVersion: pkgv, Kind: "log"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(e.h.Path("sent-mails"))
	os.WriteFile(e.h.Path("sent-mails"), []byte(strings.Replace(string(b), "old@buildd "+fmt.Sprint(time.Now().Add(-time.Minute).Unix())+" bookworm/arm64 ", "old@buildd "+fmt.Sprint(time.Now().Add(-time.Minute).Unix())+" bookworm ", 1)), 0o644)
	if s, ok, _ := e.h.Sent().Lookup("old@buildd"); !ok || s.Arch != "" {
		t.Fatalf("the old record reads as %+v, %v", s, ok)
	}
	e.deliver(e.archReply("arm64", replytest.KeywordTextOn("giveback", pkgv, "arm64", dist), func(m *replytest.Mail) { m.InReplyTo = "old@buildd" }))
	if s := e.infoOn("arm64").State; s != queue.NeedsBuild && s != queue.BDUninstallable {
		t.Errorf("arm64: %s after a giveback answering an old record", s)
	}
	untouched(t, e, "amd64")
	if n := len(e.smtp.Mails()); n != 0 {
		t.Errorf("%d replies", n)
	}
	e.deliver(e.archReply("", replytest.KeywordText("fail\nold", pkgv, dist), func(m *replytest.Mail) { m.InReplyTo = "old@buildd" }))
	if m := e.smtp.Mails(); len(m) != 1 || !strings.Contains(decodeQP(string(m[0].Data)), "without its architecture") {
		t.Errorf("replies %d, want one saying the architecture is missing", len(m))
	}
	untouched(t, e, "amd64")
}

// TestSeveralArchesNewVersion: wanna-build's merge of one architecture
// sends "new version of" (it names no architecture); only the queues
// that confirm it (hold the newer version) have the old version recorded
// as outdated, dropped from REDO or skipped, and its build purged. Here
// arm64's queue has hello_1.2-1, amd64's still builds hello_1.0-1.
func TestSeveralArchesNewVersion(t *testing.T) {
	e := newArchesEnv(t)
	c := e.queueOf("arm64")
	ctx := context.Background()
	if err := c.GiveBack(ctx, pkgv); err != nil {
		t.Fatal(err)
	}
	if err := c.Take(ctx, "hello_1.2-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.GiveBack(ctx, "hello_1.2-1"); err != nil {
		t.Fatal(err)
	}
	e.h.REDO().Add(home.RedoEntry{PkgVersion: pkgv, Dist: dist, Arch: "amd64"})
	m := e.mail("new version of hello_1.0-1 (dist=bookworm)")
	m.From = "wanna-build <wb@example.org>"
	m.Body = "You are registered as builder of hello\nin version 1.0-1.\nnew source version 1.2-1.\n"
	e.deliver(m.Compose())
	for _, a := range arches {
		d := e.distOn(a)
		means := func(dn, arch string) (bool, error) { return e.cfg.Means(d, dn, arch) }
		nv, ok, err := e.h.Outdated().IsOutdated(pkgv, means)
		if err != nil || ok != (a == "arm64") || ok && nv != "hello_1.2-1" {
			t.Errorf("%s: outdated %q %v %v", a, nv, ok, err)
		}
	}
	if b, _ := os.ReadFile(e.h.Path("build", "SKIP")); string(b) != pkgv+" bookworm/arm64\n" {
		t.Errorf("SKIP %q, want arm64's line only", b)
	}
	if e.inBuild("arm64") {
		t.Error("arm64's superseded build is still in build/")
	}
	if !e.inBuild("amd64") {
		t.Error("amd64's build was purged")
	}
	if es, _, _ := e.h.REDO().Read(); !slices.Equal(es, []home.RedoEntry{{PkgVersion: pkgv, Dist: dist, Arch: "amd64"}}) {
		t.Errorf("REDO %v, want amd64's line kept", es)
	}
	if i := e.infoOn("amd64"); i.State != queue.Building || i.Version != "1.0-1" {
		t.Errorf("amd64: %s %s", i.Version, i.State)
	}
}

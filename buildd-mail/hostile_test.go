package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// The hostile corpus: mails made by testdata/hostile/make-corpus.sh (real
// GnuPG, plus gen/main.go for what gpg refuses to make), each piped into the
// real buildd-mail in a fresh home. Every case names the finding it guards;
// its expectations are what buildd-mail must do, so a case fails until the
// finding is fixed.

const hostileDir = "testdata/hostile"

var (
	// hostileSent is when the log mails the corpus answers were sent; the
	// replies are signed a day later.
	hostileSent = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// oldkeySent is the log mail answered by the expired key (signed
	// 2026-01-01 12:00, the key expired 2026-01-02).
	oldkeySent = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
)

// Addresses in the corpus.
const (
	adminAddr   = "admin@example.org"
	admin2Addr  = "second@example.org"
	malloryAddr = "mallory@example.net"
	listAddr    = "admins@example.org" // Reply-To of keys/unsigned.eml
)

const (
	bookworm = "bookworm"
	trixie   = "trixie"
	hello    = "hello_1.0-1"
	shared   = "shared_1.0-1"
)

func sigCheck(check string) string { return "Signature check failed (" + check + ")" }

type hostileCase struct {
	name string
	run  func(x *hostile)
}

func TestHostileCorpus(t *testing.T) {
	if _, err := os.Stat(filepath.Join(hostileDir, "admin_keyring.asc")); err != nil {
		t.Fatalf("the hostile corpus is missing (run %s/make-corpus.sh): %v", hostileDir, err)
	}
	bin := filepath.Join(t.TempDir(), "buildd-mail")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) { c.run(newHostile(t, bin)) })
	}
}

func hostileCases() []hostileCase {
	cs := []hostileCase{
		// A signature acts once, however its packet is re-encoded.
		{"replay/identical-resend", replayCase("replay/accepted.eml", "replay")},
		{"replay/old-format-header", replayCase("replay/old-format-header.eml", "replay")},
		{"replay/new-format-header", replayCase("replay/new-format-header.eml", "replay")},
		{"replay/extra-unhashed-subpacket", replayCase("replay/extra-unhashed-subpacket.eml", "replay")},
		{"replay/trailing-marker-packet", replayCase("replay/trailing-marker-packet.eml", "malformed signature")},
		{"replay/signature-twice", replayCase("replay/signature-twice.eml", "malformed signature")},
		{"replay/refused-copy-does-not-spend", refusedCopyDoesNotSpend},

		// Unsigned notices must not reach outside their files.
		{"notice/new-version-path-into-upload", noticePathIntoUpload},
		{"notice/new-version-path-outside-home", noticePathOutsideHome},
		{"notice/installed-before-upload", installedCase(false)},
		{"notice/installed-after-upload", installedCase(true)},
		{"notice/new-version-wanna-build-subject", newVersionWannaBuildSubject},
		{"notice/new-version-forged", newVersionForged},

		// The signed text names the dist.
		{"dist/reaimed-to-other-dist", distReaimed},
		{"dist/no-dist-in-signed-text", distMissing},

		{"parse/deep-multipart", parseDeep},

		{"upload/armor-lines-in-quote-and-changes", uploadArmorLines},
		{"upload/symlink-in-build", uploadSymlink},

		{"charset/utf8-signed-text-latin1-header", charsetUTF8},

		{"log/encoded-subject-injection", logInjection},

		{"size/50MB-mail-refused", size50MB},
		{"size/2MB-unsigned-reply", size2MB},

		{"memory/long-junk-line", memoryLongLine},
	}
	for _, k := range []struct {
		name, file, check, to string
		wants                 []string
	}{
		{"keys/unknown-key", "keys/stranger.eml", "unknown key", adminAddr, []string{"not in the admin keyring"}},
		{"keys/expired-key", "keys/expired.eml", "expired key", adminAddr, nil},
		{"keys/revoked-key", "keys/revoked.eml", "revoked key", adminAddr, nil},
		{"keys/revoked-subkey", "keys/subrevoked.eml", "revoked key", adminAddr, []string{"subkey"}},
		{"keys/encrypt-only-subkey", "keys/encronly.eml", "key not for signing", adminAddr, nil},
		{"keys/certify-only-key", "keys/certonly.eml", "key not for signing", adminAddr, nil},
		{"keys/sha1", "keys/sha1.eml", "weak hash", adminAddr, nil},
		{"keys/signature-from-the-future", "keys/future.eml", "signature from the future", adminAddr, nil},
		{"keys/unsigned", "keys/unsigned.eml", "not signed", listAddr, nil},
		{"keys/tampered-text", "keys/tampered.eml", "bad signature", adminAddr, nil},
		{"keys/text-outside", "keys/text-outside.eml", "text outside the signed part", adminAddr, nil},
	} {
		cs = append(cs, hostileCase{k.name, keyCase(k.file, k.check, k.to, k.wants)})
	}
	return cs
}

// --- cases ---

// replayCase: an accepted giveback, then a copy of its signature (file):
// refused with check, nothing changes.
func replayCase(file, check string) func(x *hostile) {
	return func(x *hostile) {
		x.take(bookworm, hello)
		x.deliver("replay/accepted.eml")
		x.wantNoReply("the first giveback")
		x.require(bookworm, hello, "Needs-Build")
		x.deliver(file)
		x.wantRefused(file, adminAddr, sigCheck(check))
		x.wantState(bookworm, hello, "Needs-Build")
		x.wantLines("mail-signatures", 1)
	}
}

// refusedCopyDoesNotSpend: the admin's giveback for hello, sent first by
// somebody else as a reply to other's log, is refused and must not spend
// the signature: the admin's own mail then acts.
func refusedCopyDoesNotSpend(x *hostile) {
	x.take(bookworm, hello)
	x.take(bookworm, "other_1.0-1")
	x.deliver("replay/reaimed-copy.eml")
	x.wantRefused("the copy sent as a reply to other's log", malloryAddr)
	x.wantState(bookworm, "other_1.0-1", "Building")
	x.wantState(bookworm, hello, "Building")
	x.deliver("replay/accepted.eml")
	x.wantNoReply("the admin's own mail")
	x.wantState(bookworm, hello, "Needs-Build")
}

// putUpload fills upload/ as buildd-mail leaves it after "ok" for hello
// (the signed .changes and the .deb), with the uploader's .upload marker
// when uploaded.
func (x *hostile) putUpload(uploaded bool) {
	x.writeFile(filepath.Join("upload", "hello_1.0-1_amd64.changes"), x.corpus("upload/hello_1.0-1_amd64.changes.asc"))
	x.writeFile(filepath.Join("upload", "hello_1.0-1_amd64.deb"), x.corpus("upload/hello_1.0-1_amd64.deb"))
	if uploaded {
		x.writeFile(filepath.Join("upload", "hello_1.0-1_amd64.upload"), []byte("uploaded\n"))
	}
}

// noticePathIntoUpload: "new version of ../upload/hello" must not purge
// what is waiting in upload/.
func noticePathIntoUpload(x *hostile) {
	x.putUpload(false)
	before := x.dirFiles("upload")
	x.deliver("notice/new-version-upload-path.eml")
	x.wantSameFiles("upload", before)
	for _, f := range []string{"build/SKIP", "outdated-packages"} {
		for _, l := range x.lines(f) {
			if strings.Contains(l, "/") {
				x.t.Errorf("%s records a path from the subject: %q", f, l)
			}
		}
	}
	for _, l := range x.lines("build/PURGE") {
		if strings.Contains(l, "..") || !strings.HasPrefix(l, x.h.BuildDir()+"/") {
			x.t.Errorf("build/PURGE names a directory outside build/: %q", l)
		}
	}
}

// noticePathOutsideHome: "new version of ../../victim" must not queue a
// directory outside build/ for deletion.
func noticePathOutsideHome(x *hostile) {
	var victims []string
	for _, d := range []string{"victim", "victim-1.0"} { // ../../victim, and the purge name of victim_1.0-1
		v := filepath.Join(x.dir, d)
		if err := os.MkdirAll(v, 0o755); err != nil {
			x.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v, "keep"), []byte("keep\n"), 0o644); err != nil {
			x.t.Fatal(err)
		}
		victims = append(victims, v)
	}
	x.deliver("notice/new-version-outside-home.eml")
	if l := x.lines("build/PURGE"); len(l) > 0 {
		x.t.Errorf("build/PURGE queues %q for deletion", l)
	}
	for _, v := range victims {
		if b, err := os.ReadFile(filepath.Join(v, "keep")); err != nil || string(b) != "keep\n" {
			x.t.Errorf("%s touched: %v", v, err)
		}
	}
	for _, f := range []string{"build/SKIP", "outdated-packages"} {
		for _, l := range x.lines(f) {
			if strings.Contains(l, "/") {
				x.t.Errorf("%s records a path from the subject: %q", f, l)
			}
		}
	}
}

// installedCase: an unsigned "X.changes INSTALLED" empties upload/ of X
// only once the uploader has uploaded it (its .upload marker).
func installedCase(uploaded bool) func(x *hostile) {
	return func(x *hostile) {
		x.putUpload(uploaded)
		before := x.dirFiles("upload")
		x.deliver("notice/installed.eml")
		if !uploaded {
			x.wantSameFiles("upload", before)
			return
		}
		for _, f := range []string{"hello_1.0-1_amd64.changes", "hello_1.0-1_amd64.deb", "hello_1.0-1_amd64.upload"} {
			if _, err := os.Stat(x.h.Path("upload", f)); err == nil {
				x.t.Errorf("upload/%s still there after INSTALLED", f)
			}
		}
	}
}

// newVersionWannaBuildSubject: the notice as wanna-build's merge sends it,
// "new version of PKG_VERSION (dist=D)", while the queue really has the
// newer version: recorded for the old version.
func newVersionWannaBuildSubject(x *hostile) {
	ctx := context.Background()
	if err := x.queue(bookworm).Take(ctx, "hello_1.0-2"); err != nil {
		x.t.Fatal(err)
	}
	if err := x.queue(bookworm).GiveBack(ctx, "hello_1.0-2"); err != nil {
		x.t.Fatal(err)
	}
	x.require(bookworm, "hello_1.0-2", "Needs-Build")
	x.deliver("notice/new-version.eml")
	found := false
	for _, l := range x.lines("outdated-packages") {
		f := strings.Fields(l)
		if len(f) == 4 && f[0] == hello && f[1] == "hello_1.0-2" && f[3] == bookworm+"/amd64" {
			found = true
		}
		if strings.Contains(l, "hello_1.0-1_") {
			x.t.Errorf("outdated-packages: %q (the subject's PKG_VERSION taken for the package name)", l)
		}
	}
	if !found {
		x.t.Errorf("outdated-packages has no line %q; has %q", "hello_1.0-1 hello_1.0-2 TIME bookworm/amd64", x.lines("outdated-packages"))
	}
	if skip := x.lines("build/SKIP"); !contains(skip, hello+" "+bookworm+"/amd64") {
		x.t.Errorf("build/SKIP %q, want a line %q", skip, hello+" "+bookworm+"/amd64")
	}
}

// newVersionForged: the same notice when the queue has no newer version
// (hello_1.0-1 is still Building by us): nothing is recorded.
func newVersionForged(x *hostile) {
	x.take(bookworm, hello)
	x.deliver("notice/new-version.eml")
	for _, f := range []string{"outdated-packages", "build/SKIP"} {
		for _, l := range x.lines(f) {
			if strings.Contains(l, "hello") {
				x.t.Errorf("%s records a forged notice: %q", f, l)
			}
		}
	}
	x.wantState(bookworm, hello, "Building")
}

// distReaimed: a giveback signed for bookworm, sent as a reply to the
// trixie log, is refused (and not spent); the same under the bookworm
// log acts there.
func distReaimed(x *hostile) {
	x.take(bookworm, shared)
	x.take(trixie, shared)
	x.deliver("dist/giveback-trixie-subject.eml")
	x.wantRefused("the bookworm giveback sent to the trixie log", admin2Addr, "dist")
	x.wantState(trixie, shared, "Building")
	x.wantState(bookworm, shared, "Building")
	x.deliver("dist/giveback-bookworm-subject.eml")
	x.wantNoReply("the same giveback sent to the bookworm log")
	x.wantState(bookworm, shared, "Needs-Build")
	x.wantState(trixie, shared, "Building")
}

// distMissing: a signed text whose last line is PKG_VERSION alone (no
// dist=) is refused.
func distMissing(x *hostile) {
	x.take(bookworm, shared)
	x.take(trixie, shared)
	x.deliver("dist/no-dist.eml")
	x.wantRefused("a signed text without dist=", admin2Addr, "dist=")
	x.wantState(bookworm, shared, "Building")
	x.wantState(trixie, shared, "Building")
}

// parseDeep: multiparts nested 20,000 deep, then a valid retry: both done
// quickly, the retry acts, the deep mail is not retried forever.
func parseDeep(x *hostile) {
	x.take(bookworm, hello)
	deep := deepMultipart(20000)
	start := time.Now()
	// Each run is killed after 30 s: the pair must take less than 20.
	r1 := x.pipeFor(deep, 30*time.Second)
	r2 := x.pipeFor(x.corpus("common/retry-hello.eml"), 30*time.Second)
	el := time.Since(start)
	x.t.Logf("deep mail (%d bytes): %v; retry: %v", len(deep), r1.dur, r2.dur)
	for i, r := range []runResult{r1, r2} {
		if r.code != 0 {
			x.t.Errorf("run %d (%s): exit %d, want 0\n%s", i+1, []string{"deep mail", "retry"}[i], r.code, r.out)
		}
	}
	if el > 20*time.Second {
		x.t.Errorf("the deep mail and the retry took %v, want < 20s", el)
	}
	x.wantQueueEmpty()
	if !x.redoHas(hello, bookworm) {
		x.t.Errorf("REDO %q: the retry behind the deep mail did not act", x.lines("build/REDO"))
	}
	if len(x.newMails()) == 0 {
		x.t.Errorf("the deep mail was neither forwarded nor refused")
	}
}

// deepMultipart is an unsigned reply to hello's log whose body is n
// multipart/mixed entities nested in each other.
func deepMultipart(n int) []byte {
	var b bytes.Buffer
	b.WriteString("From: Admin <admin@example.org>\nTo: buildd@example.org\n" +
		"Subject: Re: Log for failed build of hello_1.0-1 (dist=bookworm)\n" +
		"Message-ID: <hostile.parse.deep@example.org>\nIn-Reply-To: <log.hello_1.0-1.bookworm@buildd>\n" +
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"d0\"\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "--d%d\nContent-Type: multipart/mixed; boundary=\"d%d\"\n\n", i, i+1)
	}
	fmt.Fprintf(&b, "--d%d\nContent-Type: text/plain\n\nretry\nhello_1.0-1 (dist=bookworm)\n", n)
	for i := n; i >= 0; i-- {
		fmt.Fprintf(&b, "--d%d--\n", i)
	}
	return b.Bytes()
}

// uploadArmorLines: a signed .changes one of whose Changes lines is
// " -----END PGP SIGNATURE-----", below quoted text holding a BEGIN line:
// upload/ gets the clearsigned block exactly as gpg wrote it.
func uploadArmorLines(x *hostile) {
	x.take(bookworm, hello)
	x.writeFile(filepath.Join("build", "hello_1.0-1_amd64.deb"), x.corpus("upload/hello_1.0-1_amd64.deb"))
	x.deliver("upload/quoted-begin.eml")
	x.wantNoReply("the signed .changes")
	want := x.corpus("upload/hello_1.0-1_amd64.changes.asc")
	got, err := os.ReadFile(x.h.Path("upload", "hello_1.0-1_amd64.changes"))
	if err != nil {
		x.t.Errorf("upload/hello_1.0-1_amd64.changes: %v", err)
	} else if !bytes.Equal(got, want) {
		x.t.Errorf("upload/hello_1.0-1_amd64.changes is not the block gpg wrote:\n--- got\n%s\n--- want\n%s", got, want)
	}
	if got, err := os.ReadFile(x.h.Path("upload", "hello_1.0-1_amd64.deb")); err != nil || !bytes.Equal(got, x.corpus("upload/hello_1.0-1_amd64.deb")) {
		x.t.Errorf("upload/hello_1.0-1_amd64.deb: %v %q", err, got)
	}
	if _, err := os.Lstat(filepath.Join(x.h.BuildDir(), "hello_1.0-1_amd64.deb")); err == nil {
		x.t.Errorf("build/hello_1.0-1_amd64.deb still there after the upload")
	}
}

// uploadSymlink: a build/ file that is a symlink (to a file with the
// right contents) is refused; nothing reaches upload/.
func uploadSymlink(x *hostile) {
	x.take(bookworm, hello)
	target := filepath.Join(x.dir, "elsewhere", "hello.deb")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		x.t.Fatal(err)
	}
	if err := os.WriteFile(target, x.corpus("upload/hello_1.0-1_amd64.deb"), 0o644); err != nil {
		x.t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(x.h.BuildDir(), "hello_1.0-1_amd64.deb")); err != nil {
		x.t.Fatal(err)
	}
	x.deliver("upload/plain.eml")
	x.wantRefused("a .changes whose file in build/ is a symlink", adminAddr, "hello_1.0-1_amd64.deb")
	if fs := x.dirFiles("upload"); len(fs) > 0 {
		x.t.Errorf("upload/ has %v", slices.Sorted(maps.Keys(fs)))
	}
	x.wantState(bookworm, hello, "Building")
	if b, err := os.ReadFile(target); err != nil || !bytes.Equal(b, x.corpus("upload/hello_1.0-1_amd64.deb")) {
		x.t.Errorf("the symlink's target changed: %v", err)
	}
}

// charsetUTF8: a UTF-8 signed fail reason sent with charset=iso-8859-1
// ends up in the queue as the admin signed it.
func charsetUTF8(x *hostile) {
	x.take(bookworm, hello)
	x.deliver("charset/utf8-text-latin1-header.eml")
	x.wantNoReply("the fail reply")
	x.wantState(bookworm, hello, "Failed")
	if i := x.info(bookworm, "hello"); i != nil && !strings.Contains(i.FailedText, "naïve façade") {
		x.t.Errorf("failed text %q, want it to contain %q", i.FailedText, "naïve façade")
	}
}

// logInjection: a subject decoding to CR LF, a fake line and an escape
// sequence must not forge daemon.log lines or reach the terminal.
func logInjection(x *hostile) {
	x.deliver("log/encoded-subject.eml")
	lg := x.daemonLog()
	if lg == "" {
		x.t.Fatal("daemon.log is empty")
	}
	if strings.ContainsRune(lg, '\x1b') {
		x.t.Errorf("daemon.log has an ESC byte")
	}
	if strings.ContainsRune(lg, '\r') {
		x.t.Errorf("daemon.log has a CR byte")
	}
	for _, l := range strings.Split(lg, "\n") {
		msg := l
		if i := strings.Index(l, "]: "); i >= 0 {
			msg = l[i+3:]
		}
		if strings.HasPrefix(l, "FAKE") || strings.HasPrefix(msg, "FAKE") {
			x.t.Errorf("daemon.log has an injected line: %q", l)
		}
	}
}

// size50MB: a 50 MB mail is refused at the door: EX_DATAERR, not stored,
// nothing sent.
func size50MB(x *hostile) {
	var b bytes.Buffer
	b.WriteString("From: Someone <someone@example.net>\nTo: buildd@example.org\nSubject: big\nMessage-ID: <hostile.size.50mb@example.net>\n\n")
	line := strings.Repeat("x", 1023) + "\n"
	for b.Len() < 50<<20 {
		b.WriteString(line)
	}
	r := x.pipe(b.Bytes())
	if r.code != 65 {
		x.t.Errorf("exit %d, want 65 (EX_DATAERR)\n%s", r.code, r.out)
	}
	if left := x.queueFiles(); len(left) > 0 {
		x.t.Errorf("stored: %v", left)
	}
	if ms := x.newMails(); len(ms) > 0 {
		x.t.Errorf("%d mails sent, want none", len(ms))
	}
}

// size2MB: an unsigned 2 MB reply gets at most one error reply, and a
// small one.
func size2MB(x *hostile) {
	x.take(bookworm, hello)
	var b bytes.Buffer
	b.WriteString("From: Admin <admin@example.org>\nTo: buildd@example.org\n" +
		"Subject: Re: Log for failed build of hello_1.0-1 (dist=bookworm)\n" +
		"Message-ID: <hostile.size.2mb@example.org>\nIn-Reply-To: <log.hello_1.0-1.bookworm@buildd>\n" +
		"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n" +
		"retry\nhello_1.0-1 (dist=bookworm)\n\nBuildd wrote:\n")
	for i := 0; b.Len() < 2<<20; i++ {
		fmt.Fprintf(&b, "> %08d compiling a very long build log line for the hostile corpus\n", i)
	}
	x.deliverRaw("the 2 MB mail", b.Bytes())
	rs := replies(x.newMails())
	if len(rs) > 1 {
		x.t.Errorf("%d error replies, want at most 1", len(rs))
	}
	for _, r := range rs {
		if r.size >= 128<<10 {
			x.t.Errorf("error reply of %d bytes, want < 128 KiB", r.size)
		}
	}
	x.wantState(bookworm, hello, "Building")
}

// memoryLongLine: a 100 KB junk line in mail-signatures does not stop a
// valid reply.
func memoryLongLine(x *hostile) {
	x.take(bookworm, hello)
	x.writeFile("mail-signatures", []byte(strings.Repeat("j", 100<<10)+"\n"))
	x.deliver("common/retry-hello.eml")
	x.wantNoReply("the retry")
	if !x.redoHas(hello, bookworm) {
		x.t.Errorf("REDO %q: the retry did not act", x.lines("build/REDO"))
	}
}

// keyCase: a signed retry refused by the signature check; nothing changes.
func keyCase(file, check, to string, wants []string) func(x *hostile) {
	return func(x *hostile) {
		pkgv := hello
		if file == "keys/expired.eml" {
			pkgv = "oldkey_1.0-1"
			x.takeSent(bookworm, pkgv, oldkeySent)
		} else {
			x.take(bookworm, pkgv)
		}
		x.deliver(file)
		x.wantRefused(file, to, append([]string{sigCheck(check)}, wants...)...)
		x.wantState(bookworm, pkgv, "Building")
		if l := x.lines("build/REDO"); len(l) > 0 {
			x.t.Errorf("REDO %q", l)
		}
		x.wantLines("mail-signatures", 0)
	}
}

// --- the harness ---

// hostile is one fresh buildd home (two dists sharing one queue file, the
// corpus keyring, a Maildir outbox) driven through the real binary.
type hostile struct {
	t    *testing.T
	bin  string
	dir  string
	conf string
	cfg  *config.Config
	h    home.Home
	seen map[string]bool // outbox files already returned by newMails
}

func newHostile(t *testing.T, bin string) *hostile {
	t.Helper()
	dir := t.TempDir()
	x := &hostile{t: t, bin: bin, dir: dir, conf: filepath.Join(dir, "buildd.conf"), seen: map[string]bool{}}
	kr := filepath.Join(dir, "admin_keyring.asc")
	if err := os.WriteFile(kr, x.corpus("admin_keyring.asc"), 0o644); err != nil {
		t.Fatal(err)
	}
	x.conf, x.cfg, x.h = writeHome(t, dir, kr, "reply_window = 36500\n", "bookworm", "trixie")
	return x
}

// corpus reads a file of the committed corpus.
func (x *hostile) corpus(rel string) []byte {
	x.t.Helper()
	b, err := os.ReadFile(filepath.Join(hostileDir, rel))
	if err != nil {
		x.t.Fatalf("corpus: %v (run %s/make-corpus.sh)", err, hostileDir)
	}
	return b
}

func (x *hostile) queue(dist string) queue.Port {
	x.t.Helper()
	d, ok := x.cfg.DistArch(dist, "amd64")
	if !ok {
		x.t.Fatalf("no dist %s", dist)
	}
	return port.Open(x.cfg, d)
}

// take puts pkgv in Building by us in dist and records its log mail
// (log.PKGV.DIST@buildd) as sent at hostileSent.
func (x *hostile) take(dist, pkgv string) { x.takeSent(dist, pkgv, hostileSent) }

func (x *hostile) takeSent(dist, pkgv string, at time.Time) {
	x.t.Helper()
	if err := x.queue(dist).Take(context.Background(), pkgv); err != nil {
		x.t.Fatalf("take %s in %s: %v", pkgv, dist, err)
	}
	if err := x.h.Sent().Add(home.SentMail{MessageID: "log." + pkgv + "." + dist + "@buildd", Time: at, Dist: dist, Arch: "amd64", PkgVersion: pkgv, Kind: "log"}); err != nil {
		x.t.Fatal(err)
	}
}

// info is the queue's record of source package name in dist (nil: none).
func (x *hostile) info(dist, name string) *queue.Info {
	x.t.Helper()
	i, err := x.queue(dist).Info(context.Background(), name)
	if errors.Is(err, queue.ErrNotRegistered) {
		x.t.Errorf("%s is not registered in %s", name, dist)
		return nil
	}
	if err != nil {
		x.t.Fatalf("info %s in %s: %v", name, dist, err)
	}
	return i
}

func (x *hostile) stateOf(dist, pkgv string) string {
	name, _, _ := strings.Cut(pkgv, "_")
	i := x.info(dist, name)
	if i == nil {
		return "(not registered)"
	}
	return fmt.Sprintf("%s_%s %s", i.Name, i.Version, i.State)
}

// wantState checks that the queue of dist has pkgv in state.
func (x *hostile) wantState(dist, pkgv, state string) {
	x.t.Helper()
	if got, want := x.stateOf(dist, pkgv), pkgv+" "+state; got != want {
		x.t.Errorf("queue of %s: %s, want %s", dist, got, want)
	}
}

// require is wantState for a precondition of the rest of the case.
func (x *hostile) require(dist, pkgv, state string) {
	x.t.Helper()
	if got, want := x.stateOf(dist, pkgv), pkgv+" "+state; got != want {
		x.t.Fatalf("precondition: queue of %s: %s, want %s\ndaemon.log:\n%s", dist, got, want, x.daemonLog())
	}
}

type runResult struct {
	code int // -1: killed after the timeout
	dur  time.Duration
	out  string
}

// pipe runs `buildd-mail --config C` with raw on stdin, as a .forward
// does, killing it after 90 s.
func (x *hostile) pipe(raw []byte) runResult { return x.pipeFor(raw, 90*time.Second) }

func (x *hostile) pipeFor(raw []byte, limit time.Duration) runResult {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.bin, "--config", x.conf)
	cmd.Stdin = bytes.NewReader(raw)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := runResult{dur: time.Since(start), out: string(out)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code = -1
		r.out += fmt.Sprintf("\n(killed after %v)", limit)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		x.t.Fatalf("buildd-mail: %v", err)
	}
	return r
}

// deliver pipes a corpus mail: exit 0, and nothing left in mqueue.
func (x *hostile) deliver(rel string) {
	x.t.Helper()
	x.deliverRaw(rel, x.corpus(rel))
}

func (x *hostile) deliverRaw(what string, raw []byte) {
	x.t.Helper()
	if r := x.pipe(raw); r.code != 0 {
		x.t.Errorf("%s: exit %d, want 0\n%s", what, r.code, r.out)
	}
	x.wantQueueEmpty()
}

func (x *hostile) queueFiles() []string {
	var out []string
	for _, d := range []string{"new", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(x.h.MQueueDir(), d))
		for _, e := range ents {
			out = append(out, d+"/"+e.Name())
		}
	}
	return out
}

func (x *hostile) wantQueueEmpty() {
	x.t.Helper()
	if left := x.queueFiles(); len(left) > 0 {
		x.t.Errorf("left in mqueue: %v\ndaemon.log:\n%s", left, tail(x.daemonLog(), 20))
	}
}

// outMail is a mail buildd-mail sent (into the outbox).
type outMail struct {
	name    string
	to      []string
	subject string
	body    string // transfer encoding undone, LF line ends
	size    int
	forward bool // a forward to admin_mail (Resent-*), not an error reply
}

// errorText is an error reply's text before the quoted mail.
func (m outMail) errorText() string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(m.body, "\n") {
		if strings.HasPrefix(l, ">") {
			break
		}
		b.WriteString(l)
	}
	return b.String()
}

// newMails returns the outbox mails not returned before.
func (x *hostile) newMails() []outMail {
	x.t.Helper()
	dir := filepath.Join(x.cfg.Outbox, "new")
	ents, _ := os.ReadDir(dir)
	var out []outMail
	for _, e := range ents {
		if x.seen[e.Name()] {
			continue
		}
		x.seen[e.Name()] = true
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			x.t.Fatal(err)
		}
		out = append(out, parseOut(e.Name(), raw))
	}
	return out
}

func parseOut(name string, raw []byte) outMail {
	m := outMail{name: name, size: len(raw), forward: bytes.HasPrefix(raw, []byte("Resent-"))}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.body = string(raw)
		return m
	}
	if m.forward || msg.Header.Get("Resent-To") != "" {
		m.forward = true
	}
	if as, err := msg.Header.AddressList("To"); err == nil {
		for _, a := range as {
			m.to = append(m.to, a.Address)
		}
	}
	m.subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(body)
	m.body = strings.ReplaceAll(string(b), "\r\n", "\n")
	return m
}

// replies drops the forwards.
func replies(ms []outMail) []outMail {
	var out []outMail
	for _, m := range ms {
		if !m.forward {
			out = append(out, m)
		}
	}
	return out
}

// wantNoReply: no error reply since the last look at the outbox.
func (x *hostile) wantNoReply(what string) {
	x.t.Helper()
	for _, r := range replies(x.newMails()) {
		x.t.Errorf("%s: unexpected error reply to %v:\n%s", what, r.to, r.body)
	}
}

// wantRefused: exactly one error reply since the last look, to `to`, a
// "Re: " subject, its error text (before the quoted mail) holding every want.
func (x *hostile) wantRefused(what, to string, wants ...string) {
	x.t.Helper()
	rs := replies(x.newMails())
	if len(rs) != 1 {
		x.t.Errorf("%s: %d error replies, want 1\ndaemon.log:\n%s", what, len(rs), tail(x.daemonLog(), 20))
		for _, r := range rs {
			x.t.Logf("reply to %v:\n%s", r.to, r.body)
		}
		return
	}
	r := rs[0]
	if len(r.to) != 1 || r.to[0] != to {
		x.t.Errorf("%s: error reply to %v, want %s", what, r.to, to)
	}
	if !strings.HasPrefix(r.subject, "Re: ") {
		x.t.Errorf("%s: error reply subject %q, want Re: ...", what, r.subject)
	}
	et := r.errorText()
	for _, w := range wants {
		if !strings.Contains(et, w) {
			x.t.Errorf("%s: the error reply does not say %q:\n%s", what, w, et)
		}
	}
}

func (x *hostile) writeFile(rel string, data []byte) {
	x.t.Helper()
	p := x.h.Path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		x.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		x.t.Fatal(err)
	}
}

// lines returns the non-blank lines of a home file (none when missing).
func (x *hostile) lines(rel string) []string {
	b, err := os.ReadFile(x.h.Path(rel))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func (x *hostile) wantLines(rel string, n int) {
	x.t.Helper()
	if l := x.lines(rel); len(l) != n {
		x.t.Errorf("%s has %d lines, want %d: %q", rel, len(l), n, l)
	}
}

func (x *hostile) redoHas(pkgv, dist string) bool {
	for _, l := range x.lines("build/REDO") {
		if e, err := home.ParseRedoLine(l); err == nil && e.PkgVersion == pkgv && e.Dist == dist && (e.Arch == "" || e.Arch == "amd64") {
			return true
		}
	}
	return false
}

// dirFiles maps the names of the files in a home directory to their
// contents.
func (x *hostile) dirFiles(rel string) map[string][]byte {
	ents, _ := os.ReadDir(x.h.Path(rel))
	out := map[string][]byte{}
	for _, e := range ents {
		if b, err := os.ReadFile(x.h.Path(rel, e.Name())); err == nil {
			out[e.Name()] = b
		}
	}
	return out
}

func (x *hostile) wantSameFiles(rel string, before map[string][]byte) {
	x.t.Helper()
	after := x.dirFiles(rel)
	for _, n := range slices.Sorted(maps.Keys(before)) {
		if b, ok := after[n]; !ok {
			x.t.Errorf("%s/%s removed", rel, n)
		} else if !bytes.Equal(b, before[n]) {
			x.t.Errorf("%s/%s changed", rel, n)
		}
	}
}

func (x *hostile) daemonLog() string {
	b, _ := os.ReadFile(x.cfg.DaemonLogFile)
	return string(b)
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}

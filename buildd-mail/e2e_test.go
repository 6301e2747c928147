package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/buildd-mail/mqueue"
	"buildd/buildd-mail/replytest"
	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// world is a buildd home driven through the real buildd-mail binary.
type world struct {
	t    testing.TB
	dir  string
	bin  string
	conf string
	cfg  *config.Config
	h    home.Home
	gpg  *replytest.GPG
	cl   queue.Port
}

func newWorld(t testing.TB) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{t: t, dir: dir}
	w.bin = filepath.Join(dir, "buildd-mail")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", w.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	w.gpg = replytest.NewGPG(t, filepath.Join(dir, "gnupg"))
	kr := filepath.Join(dir, "admins.gpg")
	w.gpg.WriteKeyring(kr, false, replytest.Admin, replytest.Admin2)
	w.conf, w.cfg, w.h = writeHome(t, dir, kr, "", "bookworm")
	d, _ := w.cfg.DistArch("bookworm", "amd64")
	w.cl = port.Open(w.cfg, d)
	return w
}

// writeHome writes dir/buildd.conf for a home in dir/home (the queue
// and the Maildir outbox beside it), with keyring as admin_keyring, extra
// top-level lines and one [[dist]] (amd64, builder buildd-test) per name,
// and makes the home.
func writeHome(t testing.TB, dir, keyring, extra string, dists ...string) (string, *config.Config, home.Home) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "home = %q\nadmin_mail = \"buildd-admin@example.org\"\nwanna_build_db = %q\nadmin_keyring = %q\noutbox = %q\nmail_from = \"buildd@example.org\"\n%s",
		filepath.Join(dir, "home"), filepath.Join(dir, "wanna-build.db"), keyring, filepath.Join(dir, "outbox"), extra)
	for _, d := range dists {
		fmt.Fprintf(&b, "\n[[dist]]\ndist_name = %q\nbuilt_architecture = \"amd64\"\nwanna_build_db_user = \"buildd-test\"\n", d)
	}
	conf := filepath.Join(dir, "buildd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	h := home.New(cfg.Home)
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	return conf, cfg, h
}

// take puts pkgv in Building by us and records its log mail as sent.
func (w *world) take(pkgv string) {
	if err := w.cl.Take(context.Background(), pkgv); err != nil {
		w.t.Fatalf("take %s: %v", pkgv, err)
	}
	if err := w.h.Sent().Add(home.SentMail{MessageID: "log." + pkgv + "@buildd", Time: time.Now().Add(-time.Hour), Dist: "bookworm", Arch: "amd64", PkgVersion: pkgv, Kind: "log"}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) reply(pkgv, keyword string, n int) []byte {
	m := &replytest.Mail{
		From: replytest.Addr(replytest.Admin), To: "buildd@example.org",
		Subject:   "Re: Log for failed build of " + pkgv + " (dist=bookworm)",
		MessageID: fmt.Sprintf("r%d.%d@example.org", n, time.Now().UnixNano()),
		InReplyTo: "log." + pkgv + "@buildd",
		Body:      w.gpg.Clearsign(replytest.Admin, replytest.KeywordText(keyword, pkgv, "bookworm"), "SHA256", ""),
	}
	return m.Compose()
}

func (w *world) run(stdin []byte, args ...string) error {
	cmd := exec.Command(w.bin, append([]string{"--config", w.conf}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("buildd-mail %v: %v: %s", args, err, out)
	}
	return nil
}

func (w *world) outbox() []string {
	ents, _ := os.ReadDir(filepath.Join(w.cfg.Outbox, "new"))
	var out []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(w.cfg.Outbox, "new", e.Name()))
		out = append(out, string(b))
	}
	return out
}

func TestPipeModeStoresAndProcesses(t *testing.T) {
	w := newWorld(t)
	w.take("hello_1.0-1")
	if err := w.run(w.reply("hello_1.0-1", "retry", 0)); err != nil {
		t.Fatal(err)
	}
	es, _, _ := w.h.REDO().Read()
	if len(es) != 1 || es[0].PkgVersion != "hello_1.0-1" {
		t.Errorf("REDO %+v", es)
	}
	if left, _ := mqueue.New(w.h.MQueueDir()).List(); len(left) != 0 {
		t.Errorf("left in mqueue: %v", left)
	}
	// An unreadable config: the mail stays with the MTA (exit 75).
	cmd := exec.Command(w.bin, "--config", filepath.Join(w.dir, "missing.conf"))
	cmd.Stdin = strings.NewReader("Subject: x\n\nx\n")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 75 {
		t.Errorf("missing config: %v, want exit 75", err)
	}
	// A home where mqueue cannot be created: exit 75.
	os.RemoveAll(w.h.MQueueDir())
	os.WriteFile(w.h.MQueueDir(), nil, 0o644)
	cmd = exec.Command(w.bin, "--config", w.conf)
	cmd.Stdin = strings.NewReader("Subject: x\n\nx\n")
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 75 {
		t.Errorf("unwritable mqueue: %v, want exit 75", err)
	}
}

// TestCrashResume kills the real buildd-mail with SIGKILL at random points
// while a backlog drains, restarts it, and checks that every mail acted
// exactly once: the right end state, fail texts not doubled, no error
// replies (a resumed mail must not be refused as a replay or a wrong state).
func TestCrashResume(t *testing.T) {
	w := newWorld(t)
	q := mqueue.New(w.h.MQueueDir())
	kws := []string{"retry", "fail\nbroken build %d", "dep-wait libfoo-dev (>= %d)", "giveback", "not-for-us", "manual"}
	want := map[string]string{}
	const n = 60
	for i := 0; i < n; i++ {
		pkgv := fmt.Sprintf("pkg%02d_1.0-1", i)
		w.take(pkgv)
		kw := kws[i%len(kws)]
		if strings.Contains(kw, "%d") {
			kw = fmt.Sprintf(kw, i)
		}
		want[pkgv] = kw
		if _, err := q.Store(bytes.NewReader(w.reply(pkgv, kw, i))); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	kills := 0
	for round := 0; round < 500; round++ {
		left, _ := q.List()
		if len(left) == 0 {
			break
		}
		cmd := exec.Command(w.bin, "--config", w.conf, "--process")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: %v", round, err)
			}
		case <-time.After(time.Duration(rng.Intn(40)) * time.Millisecond):
			cmd.Process.Kill()
			<-done
			kills++
		}
	}
	if left, _ := q.List(); len(left) != 0 {
		t.Fatalf("%d mails left after the crash rounds", len(left))
	}
	t.Logf("%d kills", kills)
	es, _, _ := w.h.REDO().Read()
	redo := map[string]int{}
	for _, e := range es {
		redo[e.PkgVersion]++
	}
	for pkgv, kw := range want {
		info, err := w.cl.Info(context.Background(), pkgv)
		if err != nil {
			t.Fatal(err)
		}
		word := strings.Fields(kw)[0]
		var ok bool
		switch word {
		case "retry":
			ok = info.State == "Building" && redo[pkgv] == 1
		case "fail":
			reason := strings.SplitN(kw, "\n", 2)[1]
			ok = info.State == "Failed" && strings.Count(info.FailedText, reason) == 1
		case "dep-wait":
			ok = info.State == "Dep-Wait"
		case "giveback":
			ok = info.State == "Needs-Build" || info.State == "BD-Uninstallable"
		case "not-for-us":
			ok = info.State == "Not-For-Us"
		case "manual":
			ok = info.State == "Building" && redo[pkgv] == 0
		}
		if !ok {
			t.Errorf("%s after %q: state %s, failed %q, REDO %d", pkgv, word, info.State, info.FailedText, redo[pkgv])
		}
	}
	for _, m := range w.outbox() {
		t.Errorf("unexpected mail:\n%s", m)
	}
}

func BenchmarkWholeProcess(b *testing.B) {
	w := newWorld(b)
	mails := make([][]byte, b.N)
	for i := range mails {
		pkgv := fmt.Sprintf("p%06d_1.0-1", i)
		w.take(pkgv)
		mails[i] = w.reply(pkgv, "giveback", i)
	}
	b.ResetTimer()
	for i := range mails {
		if err := w.run(mails[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if m := w.outbox(); len(m) > 0 {
		b.Fatalf("error replies: %s", m[0])
	}
}

func BenchmarkBacklog1000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := newWorld(b)
		q := mqueue.New(w.h.MQueueDir())
		for j := 0; j < 1000; j++ {
			pkgv := fmt.Sprintf("p%04d_1.0-1", j)
			w.take(pkgv)
			if _, err := q.Store(bytes.NewReader(w.reply(pkgv, "retry", j))); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if err := w.run(nil, "--process"); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		b.StopTimer()
		b.ReportMetric(1000/el.Seconds(), "mails/s")
		if left, _ := q.List(); len(left) != 0 {
			b.Fatalf("%d left", len(left))
		}
		if m := w.outbox(); len(m) > 0 {
			b.Fatalf("error replies: %s", m[0])
		}
	}
}

// purgeMail is an unsigned purge reply, as the classic suite accepts it.
func purgeMail(i int) []byte {
	return []byte(fmt.Sprintf("From: admin@example.org\nTo: buildd@example.org\nSubject: Re: Log for failed build of p%06d_1.0-1 (dist=bookworm)\nMessage-ID: <u%d@example.org>\nIn-Reply-To: <log.p%06d_1.0-1@buildd>\n\npurge\np%06d_1.0-1\n", i, i, i, i))
}

// BenchmarkClassicPerlPurge runs the classic /usr/bin/buildd-mail (HOME a
// temporary directory with a ~/.builddrc) once per unsigned purge mail.
func BenchmarkClassicPerlPurge(b *testing.B) {
	if _, err := os.Stat("/usr/bin/buildd-mail"); err != nil {
		b.Skip("LOUD SKIP: the classic buildd-mail (Debian package buildd) is not installed")
	}
	dir := b.TempDir()
	for _, d := range []string{"build", "upload", "upload-security"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, ".builddrc"), []byte(`$admin_mail = 'buildd-admin@example.org';
$distributions = [ { dist_name => "bookworm", built_architecture => "amd64", wanna_build_db_user => "buildd-test" } ];
1;
`), 0o644)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("/usr/bin/buildd-mail")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(purgeMail(i))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}

// BenchmarkGoPurge runs our buildd-mail once per purge mail: the same
// unsigned mails as the classic one gets (refused, with an error reply up
// to error_reply_rate: they all come from one address), and signed ones
// (acted on).
func BenchmarkGoPurge(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run(map[bool]string{false: "unsigned", true: "signed"}[signed], func(b *testing.B) {
			w := newWorld(b)
			mails := make([][]byte, b.N)
			for i := range mails {
				pkgv := fmt.Sprintf("p%06d_1.0-1", i)
				w.take(pkgv)
				mails[i] = purgeMail(i)
				if signed {
					mails[i] = w.reply(pkgv, "purge", i)
				}
			}
			b.ResetTimer()
			for i := range mails {
				if err := w.run(mails[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got := len(w.outbox()); signed && got != 0 || !signed && got != min(b.N, w.cfg.ErrorReplyRate) {
				b.Fatalf("%d error replies", got)
			}
		})
	}
}

// TestNewVersionNoticePair sends the mail the real wanna-build's merge sends
// when a new version supersedes one being built into the real buildd-mail:
// the pair must agree on its form, so that new-version handling takes
// effect (outdated-packages and SKIP name the superseded version).
func TestNewVersionNoticePair(t *testing.T) {
	w := newWorld(t)
	wb := filepath.Join(w.dir, "wanna-build")
	if out, err := exec.Command("go", "build", "-o", wb, "../wannabuild/wanna-build").CombinedOutput(); err != nil {
		t.Fatalf("go build wanna-build: %v\n%s", err, out)
	}
	src := func(version string) string {
		dir := filepath.Join(w.dir, "archive-"+version)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "Packages"), nil, 0o644)
		stanza := "Package: hello\nBinary: hello\nVersion: " + version + "\nArchitecture: any\nSection: devel\nPriority: optional\n"
		os.WriteFile(filepath.Join(dir, "Sources"), []byte(stanza), 0o644)
		return dir
	}
	merge := func(dir string) {
		cmd := exec.Command(wb, "--config", w.conf, "--dist", "bookworm", "--arch", "amd64", "--merge-v3", filepath.Join(dir, "Packages"), ".", filepath.Join(dir, "Sources"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("wanna-build --merge-v3: %v\n%s", err, out)
		}
	}
	merge(src("1.0-1"))
	w.take("hello_1.0-1")
	merge(src("1.0-2"))
	mails := w.outbox()
	if len(mails) != 1 || !strings.Contains(mails[0], "Subject: new version of hello_1.0-1 (dist=bookworm)") {
		t.Fatalf("wanna-build sent %d mails, want the new-version notice:\n%s", len(mails), strings.Join(mails, "\n---\n"))
	}
	if err := w.run([]byte(mails[0])); err != nil {
		t.Fatal(err)
	}
	d, _ := w.cfg.DistArch("bookworm", "amd64")
	means := func(dist, arch string) (bool, error) { return w.cfg.Means(d, dist, arch) }
	if nv, ok, err := w.h.Outdated().IsOutdated("hello_1.0-1", means); err != nil || !ok || nv != "hello_1.0-2" {
		t.Errorf("outdated-packages: %q %v %v, want hello_1.0-1 superseded by hello_1.0-2", nv, ok, err)
	}
	if found, err := w.h.Skip().Take("hello_1.0-1", means); err != nil || !found {
		t.Errorf("SKIP does not name hello_1.0-1 in bookworm (%v)", err)
	}
	if b, _ := os.ReadFile(filepath.Join(w.cfg.Home, "outdated-packages")); strings.Contains(string(b), "hello_1.0-1_1.0-1") {
		t.Errorf("outdated-packages names the version twice:\n%s", b)
	}
}

// BenchmarkDeepMail pipes the 20,000-deep mail into the real binary: the
// whole run (store, parse refused, forward to admin_mail).
func BenchmarkDeepMail(b *testing.B) {
	w := newWorld(b)
	mail := deepMultipart(20000)
	b.SetBytes(int64(len(mail)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := w.run(mail); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if left, _ := mqueue.New(w.h.MQueueDir()).List(); len(left) != 0 {
		b.Fatalf("%d mails left in mqueue", len(left))
	}
}

// BenchmarkHugeMailRSS reports the real binary's peak RSS for a 50 MB
// mail on stdin against its peak for a small unsigned one (idle). GNU time
// measures it: a child of this (large) test process would inherit its peak
// through vfork and exec.
func BenchmarkHugeMailRSS(b *testing.B) {
	w := newWorld(b)
	small := filepath.Join(w.dir, "small.mail")
	huge := filepath.Join(w.dir, "huge.mail")
	os.WriteFile(small, purgeMail(1), 0o644)
	f, err := os.Create(huge)
	if err != nil {
		b.Fatal(err)
	}
	f.Write(purgeMail(2))
	line := bytes.Repeat([]byte("0123456789abcdef"), 4)
	line[len(line)-1] = '\n'
	for n := 0; n < 50<<20; n += len(line) {
		f.Write(line)
	}
	f.Close()
	rss := func(mail string) int64 {
		in, err := os.Open(mail)
		if err != nil {
			b.Fatal(err)
		}
		defer in.Close()
		cmd := exec.Command("/usr/bin/time", "-f", "%M", w.bin, "--config", w.conf)
		cmd.Stdin = in
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		lines := strings.Fields(stderr.String())
		kb, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if err != nil {
			b.Fatalf("/usr/bin/time: %v: %s", err, stderr.String())
		}
		return kb << 10
	}
	var idle, peak int64
	for i := 0; i < b.N; i++ {
		idle = max(idle, rss(small))
		peak = max(peak, rss(huge))
	}
	b.ReportMetric(float64(idle)/(1<<20), "idle-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "50MB-mail-MiB")
	b.ReportMetric(float64(peak-idle)/(1<<20), "above-idle-MiB")
}

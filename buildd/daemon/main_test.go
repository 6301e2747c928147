package daemon

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/mailer/smtptest"
	"buildd/internal/queue/pg/pgtest"
)

// bin is the real buildd binary the process tests run, built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "buildd-daemon-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "buildd")
	out, err := exec.Command("go", "build", "-o", bin, "buildd/buildd").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build buildd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Main(m) // stops the PostgreSQL cluster a test started
	os.RemoveAll(dir)
	os.Exit(code)
}

var wannaBuildOnce sync.Once
var wannaBuildBin string

// wannaBuild builds the real wanna-build CLI once.
func wannaBuild(t testing.TB) string {
	wannaBuildOnce.Do(func() {
		p := filepath.Join(filepath.Dir(bin), "wanna-build")
		out, err := exec.Command("go", "build", "-o", p, "buildd/wannabuild/wanna-build").CombinedOutput()
		if err != nil {
			t.Logf("go build wanna-build: %v\n%s", err, out)
			return
		}
		wannaBuildBin = p
	})
	if wannaBuildBin == "" {
		t.Fatal("wanna-build does not build")
	}
	return wannaBuildBin
}

// env is a buildd home with its config, and the SMTP server its mail goes to.
type env struct {
	t        testing.TB
	home     string
	machines string
	conf     string
	smtp     *smtptest.Server
}

func newEnv(t testing.TB, machinesDir, extra string, dists string) *env {
	t.Helper()
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &env{t: t, home: t.TempDir(), machines: machinesDir, smtp: srv}
	e.conf = filepath.Join(e.home, "buildd.conf")
	if dists == "" {
		dists = "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n"
	}
	e.writeConf(extra, dists)
	return e
}

func (e *env) writeConf(extra, dists string) {
	if !strings.Contains(extra, "idle_sleep_time") {
		extra = "idle_sleep_time = 1\n" + extra
	}
	conf := fmt.Sprintf(`home = %q
machines_dir = %q
admin_mail = "admin@example.org"
mail_from = "buildd@example.org"
smtp = %q
%s
%s`, e.home, e.machines, e.smtp.Addr, extra, dists)
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) path(p ...string) string { return filepath.Join(append([]string{e.home}, p...)...) }

// daemonLog is daemon.log's text.
func (e *env) daemonLog() string {
	b, _ := os.ReadFile(e.path("daemon.log"))
	return string(b)
}

// proc is a buildd process started by a test.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func (e *env) start(args ...string) *proc {
	e.t.Helper()
	p := &proc{stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"--config", e.conf}, args...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	e.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("buildd did not exit within %v; stderr:\n%s", timeout, p.stderr)
		return -1
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) waitLog(timeout time.Duration, s string) {
	e.t.Helper()
	waitFor(e.t, timeout, fmt.Sprintf("%q in daemon.log", s), func() bool { return strings.Contains(e.daemonLog(), s) })
}

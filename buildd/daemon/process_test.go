package daemon

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"buildd/internal/home"
	"buildd/internal/machine/machinetest"
)

// TestLifecycle runs the real binary in the foreground on an empty queue:
// ordered, timestamped stages; the pid file; a second instance refused;
// SIGHUP reopening daemon.log; EXIT-DAEMON-PLEASE ending it.
func TestLifecycle(t *testing.T) {
	machinetest.Require(t)
	e := newEnv(t, machinetest.NewDir(t), "", "")
	p := e.start("--no-detach")
	e.waitLog(60*time.Second, "Stage 5: loop")

	log := e.daemonLog()
	var at []int
	for _, s := range []string{"Stage 1: config", "Stage 2: instance...", "Stage 2: instance done", "Stage 3: machines...", "Stage 3: machines done", "Stage 4: queue...", "Stage 4: queue done", "Stage 5: loop"} {
		i := strings.Index(log, s)
		if i < 0 {
			t.Fatalf("%q not in daemon.log:\n%s", s, log)
		}
		at = append(at, i)
	}
	for i := 1; i < len(at); i++ {
		if at[i] < at[i-1] {
			t.Fatalf("stages out of order in daemon.log:\n%s", log)
		}
	}
	line := regexp.MustCompile(`^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d buildd\[(\d+)\]: `)
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || m[1] != strconv.Itoa(p.cmd.Process.Pid) {
			t.Fatalf("daemon.log line without the classic prefix: %q", l)
		}
	}
	if !strings.Contains(p.stderr.String(), "Stage 5: loop") {
		t.Errorf("--no-detach does not log to stderr too:\n%s", p.stderr)
	}

	pidText, err := os.ReadFile(e.path("build", "buildd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte(strconv.Itoa(p.cmd.Process.Pid)); string(pidText) != string(append([]byte(strings.Repeat(" ", 5-len(want))), append(want, '\n')...)) {
		t.Fatalf("pid file %q, want %%5d of %d", pidText, p.cmd.Process.Pid)
	}

	second := e.start("--no-detach")
	if code := second.wait(t, 30*time.Second); code != 1 {
		t.Fatalf("second instance exit %d", code)
	}
	if want := "Another buildd (pid " + strconv.Itoa(p.cmd.Process.Pid) + ") is already running."; !strings.Contains(second.stderr.String(), want) {
		t.Fatalf("second instance said:\n%s\nwant %q", second.stderr, want)
	}

	if err := os.Rename(e.path("daemon.log"), e.path("daemon.log.old")); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	e.waitLog(10*time.Second, "SIGHUP: daemon log reopened")

	if err := os.WriteFile(e.path(home.ExitDaemonPlease), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after EXIT-DAEMON-PLEASE; stderr:\n%s", code, p.stderr)
	}
	if _, err := os.Stat(e.path("build", "buildd.pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind: %v", err)
	}
	if _, err := os.Stat(e.path(home.ExitDaemonPlease)); !os.IsNotExist(err) {
		t.Fatal("EXIT-DAEMON-PLEASE left behind")
	}
	if !strings.Contains(e.daemonLog(), "received SIGNONE (flag file exit) -- shutting down") {
		t.Fatalf("no shutdown line:\n%s", e.daemonLog())
	}
}

// TestStageFailureDiagnostic: machines_dir not on btrfs stops buildd at
// stage machines with one clear diagnostic, printed and mailed.
func TestStageFailureDiagnostic(t *testing.T) {
	e := newEnv(t, t.TempDir(), "", "")
	p := e.start("--no-detach")
	if code := p.wait(t, 30*time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var diag []string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, "cannot start") {
			diag = append(diag, l)
		}
	}
	if len(diag) != 1 || !strings.Contains(diag[0], "stage machines: ") || !strings.Contains(diag[0], e.machines) {
		t.Fatalf("want one diagnostic naming stage machines and %s; stderr:\n%s", e.machines, p.stderr)
	}
	mails := e.smtp.Wait(1, 10*time.Second)
	if len(mails) != 1 {
		t.Fatalf("%d mails, want the diagnostic", len(mails))
	}
	raw := string(mails[0].Data)
	if !strings.Contains(raw, "cannot start") || !strings.Contains(raw, "stage machines") || mails[0].To[0] != "admin@example.org" {
		t.Fatalf("diagnostic mail:\n%s", raw)
	}
	if _, err := os.Stat(e.path("build", "buildd.pid")); !os.IsNotExist(err) {
		t.Fatal("pid file left behind after a failed start")
	}
}

// TestDetach: without --no-detach buildd starts itself again in a new
// session and returns; the daemon writes its pid, and SIGTERM ends it.
func TestDetach(t *testing.T) {
	machinetest.Require(t)
	e := newEnv(t, machinetest.NewDir(t), "", "")
	p := e.start()
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("detaching parent exit %d:\n%s", code, p.stderr)
	}
	pid, err := home.ReadPID(e.path("build", "buildd.pid"))
	if err != nil || pid == 0 || pid == p.cmd.Process.Pid {
		t.Fatalf("pid file: %d %v (parent %d)", pid, err, p.cmd.Process.Pid)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Fatalf("daemon %d is not a session leader (sid %d, %v)", pid, sid, err)
	}
	if !strings.Contains(p.stderr.String(), "started (pid "+strconv.Itoa(pid)+")") {
		t.Fatalf("parent said:\n%s", p.stderr)
	}
	e.waitLog(30*time.Second, "Stage 5: loop")
	syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, 30*time.Second, "the daemon to exit", func() bool { return !home.Alive(pid) || isZombie(pid) })
	if !strings.Contains(e.daemonLog(), "received SIGTERM -- shutting down") {
		t.Fatalf("daemon.log:\n%s", e.daemonLog())
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// TestReexecOnConfigChange: a changed config file makes the idle daemon
// start itself again, same pid; SIGUSR1 re-reads it without a restart.
func TestReexecOnConfigChange(t *testing.T) {
	machinetest.Require(t)
	e := newEnv(t, machinetest.NewDir(t), "", "")
	p := e.start("--no-detach")
	e.waitLog(60*time.Second, "Stage 5: loop")

	e.writeConf("max_build = 1", "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n")
	p.cmd.Process.Signal(syscall.SIGUSR1)
	e.waitLog(10*time.Second, "SIGUSR1: config "+e.conf+" re-read (max_build=1)")

	e.writeConf("max_build = 3", "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n")
	e.waitLog(30*time.Second, "has changed -- restarting myself (pid="+strconv.Itoa(p.cmd.Process.Pid)+")")
	waitFor(t, 30*time.Second, "the restarted daemon", func() bool {
		return strings.Contains(e.daemonLog(), "loop: daemon started (pid="+strconv.Itoa(p.cmd.Process.Pid)+", max_build=3)")
	})
	if strings.Contains(e.daemonLog(), "already running") {
		t.Fatalf("the re-executed daemon found itself running:\n%s", e.daemonLog())
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

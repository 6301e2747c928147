package watch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/home"
	"buildd/internal/machine/machinetest"
)

// TestRestartRealBuildd kills a real buildd daemon (built from ./buildd,
// started detached by the watcher as cron would, with a real machines
// volume) and lets the watcher bring it back.
func TestRestartRealBuildd(t *testing.T) {
	e := machinetest.New(t)
	bin := filepath.Join(t.TempDir(), "buildd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "buildd/buildd").CombinedOutput(); err != nil {
		t.Fatalf("go build buildd: %v\n%s", err, out)
	}
	h, w := newWatcher(t, fmt.Sprintf("machines_dir = %q\nidle_sleep_time = 3600\nbuildd_command = [%q, \"--config\", \"@CONFIG@\"]", e.Dir, bin))
	w.Cfg.BuilddCommand[2] = w.Cfg.File
	os.Remove(h.Home.Path(home.NoDaemonPlease))
	stopDaemon := func() {
		if pid, _ := home.ReadPID(h.Cfg.PIDFile); pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 100 && home.Alive(pid); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	t.Cleanup(stopDaemon)

	var pids []int
	for round := 0; round < 2; round++ {
		r, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		log, _ := os.ReadFile(h.Cfg.DaemonLogFile)
		if r.Restarted == 0 {
			t.Fatalf("round %d: not restarted: %+v\n%s", round, r, log)
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", r.Restarted))
		if strings.TrimSpace(string(comm)) != "buildd" {
			t.Fatalf("round %d: pid %d is %q, not buildd\n%s", round, r.Restarted, comm, log)
		}
		if st := w.CheckDaemon(); st.Restart || st.PID != r.Restarted {
			t.Fatalf("round %d: after restart %+v", round, st)
		}
		pids = append(pids, r.Restarted)
		// Left alone while it runs.
		if r, _ := w.Run(context.Background()); r.Restarted != 0 {
			t.Fatalf("round %d: restarted a running buildd", round)
		}
		// SIGKILL ends a process only once it leaves the kernel: on a
		// loaded host that can take a while (the check of round 1 failed
		// after a 5 s wait once).
		syscall.Kill(r.Restarted, syscall.SIGKILL)
		for deadline := time.Now().Add(2 * time.Minute); running(r.Restarted); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: pid %d still running 2 min after SIGKILL", round, r.Restarted)
			}
		}
	}
	if pids[0] == pids[1] {
		t.Errorf("same pid twice: %v", pids)
	}
}

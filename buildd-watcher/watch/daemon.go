package watch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"buildd/buildd/home"
)

// DaemonStatus is what the pid file says about buildd.
type DaemonStatus struct {
	PID     int    // the live daemon's pid, 0 when none
	Restart bool   // buildd is not running and should be started
	Problem string // why, or what is wrong with the pid file
}

// CheckDaemon reads the pid file. Missing, or naming a process that is dead
// or was started after the file was written (the pid was reused, say after
// a reboot): restart. A file that is not a pid: no restart, a message that
// names the file and its contents, because a daemon may well be running.
func (w *Watcher) CheckDaemon() DaemonStatus {
	path := w.Cfg.PIDFile
	pid, err := home.ReadPID(path)
	switch {
	case err != nil:
		return DaemonStatus{Problem: fmt.Sprintf("%v; not restarting buildd: remove the file if no buildd is running", err)}
	case pid == 0:
		return DaemonStatus{Restart: true, Problem: "daemon not running (no pid file " + path + ")"}
	case !home.Alive(pid):
		return DaemonStatus{Restart: true, Problem: fmt.Sprintf("pid file exists, but process %d doesn't exist", pid)}
	}
	if st, err := os.Stat(path); err == nil {
		if started, err := processStart(pid); err == nil && started.After(st.ModTime().Add(2*time.Second)) {
			return DaemonStatus{Restart: true, Problem: fmt.Sprintf("pid file %s is older than process %d (started %s): stale", path, pid, started.Format(time.DateTime))}
		}
	}
	return DaemonStatus{PID: pid}
}

// processStart is when process pid started, from /proc.
func processStart(pid int) (time.Time, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, err
	}
	// Fields after the command, which is in parentheses and may hold blanks.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22: starttime
	if err != nil {
		return time.Time{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	b, err := bootTime()
	if err != nil {
		return time.Time{}, err
	}
	const hz = 100 // USER_HZ, fixed at 100 on Linux for /proc
	return b.Add(time.Duration(ticks) * time.Second / hz), nil
}

func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat: btime %q: %w", v, err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat: no btime")
}

// restartGrace is how long Restart watches the new process: a buildd that
// detaches exits 0 within it, one that fails exits non-zero, one that runs
// in the foreground is still running at its end.
const restartGrace = 2 * time.Second

// Restart starts buildd (config buildd_command, else the buildd program
// beside this one with --config) in a session of its own, its output
// appended to daemon.log. It returns the pid it started.
func (w *Watcher) Restart() (int, error) {
	argv := w.Cfg.BuilddCommand
	if len(argv) == 0 {
		argv = []string{builddProgram(), "--config", w.Cfg.File}
	}
	out, err := os.OpenFile(w.Cfg.DaemonLogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.Home.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return 0, fmt.Errorf("%s: %v (its output is in %s)", strings.Join(argv, " "), err, w.Cfg.DaemonLogFile)
		}
		pid, _ = home.ReadPID(w.Cfg.PIDFile)
		w.Log.Printf("started %s (it detached, pid file says %d)", strings.Join(argv, " "), pid)
	case <-time.After(restartGrace):
		w.Log.Printf("started %s, pid %d", strings.Join(argv, " "), pid)
	}
	return pid, nil
}

// builddProgram is the buildd installed beside this program, else "buildd"
// from $PATH.
func builddProgram() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "buildd")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return "buildd"
}

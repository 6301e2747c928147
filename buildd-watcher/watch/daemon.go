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

	"buildd/internal/home"
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
	case !running(pid):
		return DaemonStatus{Restart: true, Problem: fmt.Sprintf("pid file exists, but process %d doesn't exist", pid)}
	}
	if st, err := os.Stat(path); err == nil {
		if started, err := processStart(pid); err == nil && started.After(st.ModTime().Add(2*time.Second)) {
			return DaemonStatus{Restart: true, Problem: fmt.Sprintf("pid file %s is older than process %d (started %s): stale", path, pid, started.Format(time.DateTime))}
		}
	}
	return DaemonStatus{PID: pid}
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	if !home.Alive(pid) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill(pid, 0)
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || !bytes.HasPrefix(stat[i+1:], []byte(" Z"))
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

// restartWait bounds how long Restart waits for the new buildd to write
// its pid file (the daemon's start-up stages may take a while).
const restartWait = 90 * time.Second

// Restart starts buildd (config buildd_command, else the buildd program
// beside this one with --config) in a session of its own, its output
// appended to daemon.log, and waits until the pid file names a live
// process anew: the buildd that detached, or the command itself when it
// stays in the foreground. It returns that pid. A command that exits
// with an error, or ends without a new pid file, is an error.
func (w *Watcher) Restart() (int, error) {
	argv := w.Cfg.BuilddCommand
	if len(argv) == 0 {
		argv = []string{builddProgram(), "--config", w.Cfg.File}
	}
	name := strings.Join(argv, " ")
	out, err := os.OpenFile(w.Cfg.DaemonLogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	before, _ := pidFileVersion(w.Cfg.PIDFile)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.Home.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(restartWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if id, pid := pidFileVersion(w.Cfg.PIDFile); id != before && pid > 0 && running(pid) {
			w.Log.Printf("started %s: buildd running, pid %d", name, pid)
			return pid, nil
		}
		select {
		case err := <-exited:
			if err != nil {
				return 0, fmt.Errorf("%s: %v (its output is in %s)", name, err, w.Cfg.DaemonLogFile)
			}
			exited = nil // detached: wait for the daemon's pid file
		case <-deadline:
			return 0, fmt.Errorf("%s: no new pid in %s after %v", name, w.Cfg.PIDFile, restartWait)
		case <-tick.C:
		}
	}
}

// pidFileVersion tells versions of the pid file apart (its modification
// time and contents) and gives the pid of that same version, 0 when it
// names none. One read serves both, so a writer that truncates and then
// writes ("echo $$ > buildd.pid") cannot pair the new version with the
// old pid: stat comes first, so the contents read are never older.
func pidFileVersion(path string) (string, int) {
	st, err := os.Stat(path)
	if err != nil {
		return "", 0
	}
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		pid = 0
	}
	return fmt.Sprintf("%d %s", st.ModTime().UnixNano(), b), pid
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

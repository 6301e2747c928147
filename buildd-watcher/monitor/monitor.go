// Package monitor owns the host monitor that buildd-watcher runs beside the
// classic tasks, after the Build OS monitor: it cleans the machines volume
// of stray working snapshots and dead machines (with a diagnostics mail),
// holds new builds (the home flag HOLD-BUILDS, which buildd honours) when it
// finds something it does not understand or the build or machines volume
// runs out of space, upgrades the build machines on their schedule, mails a
// "starting" report of the configuration and the CPU/RAM slices per build
// slot, and mails the warnings and errors that appeared in daemon.log since
// its last run (a cursor, as the Build OS monitor keeps on the journal).
//
// Its memory between runs is the file monitor-state in home (JSON, written
// by temporary file and rename).
package monitor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/flock"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/mailer"
	"buildd/internal/maint"
	"buildd/internal/program"
)

// ErrRunning is returned when another monitor run holds the lock.
var ErrRunning = errors.New("another host monitor run is still going")

// Monitor watches one build host.
type Monitor struct {
	program.Env
	// Now is the clock of the machines' ages for Upgrade; nil: time.Now.
	Now func() time.Time
}

// New returns the monitor for cfg, logging to log.
func New(cfg *config.Config, log *daemonlog.Log) *Monitor {
	return &Monitor{Env: program.NewEnv(cfg, log)}
}

// state is monitor-state.
type state struct {
	// ConfigSum is the hash of the configuration the last "starting" mail
	// described.
	ConfigSum string `json:"config_sum"`
	// Log is the daemon.log cursor.
	Log Cursor `json:"daemon_log"`
	// Space is the last level (ok, warn, stop) of each volume.
	Space map[string]string `json:"space"`
	// Emulation is, by architecture, what was mailed of its qemu-user
	// emulation being gone.
	Emulation map[string]string `json:"emulation,omitempty"`
}

// Report says what a run found and did.
type Report struct {
	Started     bool // the "starting" mail went out
	Clean       machine.CleanReport
	CleanErr    error
	Space       []Volume
	Diagnostics []string          // new daemon.log lines mailed
	Hold        []string          // the reasons in HOLD-BUILDS after the run
	Emulation   map[string]string // architectures whose qemu-user emulation is missing, and why
}

// Run does one monitor pass under the lock buildd-monitor.lock.
func (m *Monitor) Run(ctx context.Context) (*Report, error) {
	lock, err := home.TryLock(m.Home.Path("buildd-monitor"))
	if errors.Is(err, flock.ErrLocked) {
		return nil, ErrRunning
	}
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	st := m.loadState()
	r := &Report{}
	if sum := m.configSum(); sum != st.ConfigSum {
		if err := m.sendStarting(); err != nil {
			m.Log.Printf("starting mail: %v", err)
		} else {
			st.ConfigSum = sum
			r.Started = true
		}
	}
	var machineHold, spaceHold []string
	r.Clean, r.CleanErr, machineHold = m.clean(ctx)
	r.Space, spaceHold = m.checkSpace(st)
	r.Emulation = m.checkEmulation(st)
	hold, err := m.setHold(machineHold, spaceHold)
	if err != nil {
		m.Log.Printf("%s: %v", home.HoldBuilds, err)
	}
	r.Hold = hold
	r.Diagnostics, err = m.diagnostics(&st.Log)
	if err != nil {
		m.Log.Printf("daemon.log diagnostics: %v", err)
	}
	return r, m.saveState(st)
}

func (m *Monitor) statePath() string { return m.Home.Path("monitor-state") }

// loadState reads monitor-state; a missing or unreadable one starts afresh
// (the cursor then starts at the end of daemon.log).
func (m *Monitor) loadState() *state {
	st := &state{}
	b, err := os.ReadFile(m.statePath())
	if err == nil {
		if err := json.Unmarshal(b, st); err != nil {
			m.Log.Printf("%s: %v; starting afresh", m.statePath(), err)
			st = &state{}
		}
	}
	if st.Space == nil {
		st.Space = map[string]string{}
	}
	if st.Emulation == nil {
		st.Emulation = map[string]string{}
	}
	return st
}

func (m *Monitor) saveState(st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(m.statePath(), append(b, '\n'), 0o644)
}

func (m *Monitor) configSum() string {
	var b strings.Builder
	m.Cfg.Dump(&b)
	s := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(s[:])
}

// mail sends a monitor mail to the admin; the subject gets the host name
// in brackets, as the Build OS monitor's do. A mail that cannot be
// delivered now waits in the mailer's spool; the error is only logged.
func (m *Monitor) mail(subject, body string) error {
	host := mailer.Hostname()
	err := m.Mail.Send(&mailer.Message{To: []string{m.Cfg.AdminMail}, Subject: "[" + host + "] " + subject, Body: body,
		Header: map[string]string{"Auto-Submitted": "auto-generated"}})
	if err != nil {
		m.Log.Printf("mail %q: %v", subject, err)
	}
	return err
}

// Hold reasons are lines of HOLD-BUILDS starting with these prefixes. Those
// for the machines stay until the admin removes the file; those for space
// go when the space is back.
const (
	holdMachines = "machines: "
	holdSpace    = "space: "
)

// setHold writes HOLD-BUILDS: the machine reasons already there and the new
// ones, the current space reasons, and any line someone else wrote. With
// no line left the file is removed. It returns the reasons in effect.
func (m *Monitor) setHold(machines, space []string) ([]string, error) {
	path := m.Home.Path(home.HoldBuilds)
	l, err := home.LockFile(path, home.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	var old []string
	if b, err := os.ReadFile(path); err == nil {
		old = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
	existed := len(old) > 0
	seen := map[string]bool{}
	var lines []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			lines = append(lines, s)
		}
	}
	for _, s := range old {
		if !strings.HasPrefix(s, holdSpace) {
			add(s)
		}
	}
	for _, s := range machines {
		add(holdMachines + s)
	}
	for _, s := range space {
		add(holdSpace + s)
	}
	if strings.Join(lines, "\n") == strings.Join(old, "\n") {
		return lines, nil
	}
	if len(lines) == 0 {
		if existed {
			m.Log.Printf("space is back: %s removed, builds go on", home.HoldBuilds)
		}
		return nil, os.Remove(path)
	}
	if !existed {
		m.Log.Printf("holding new builds: %s", strings.Join(lines, "; "))
	}
	return lines, atomicfile.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// clean runs machine.Store.Clean and mails its diagnostics: what it
// deleted (info) and what it did not understand or could not delete
// (error). The errors are returned as hold reasons.
func (m *Monitor) clean(ctx context.Context) (machine.CleanReport, error, []string) {
	var rep machine.CleanReport
	if _, err := os.Stat(m.Cfg.MachinesDir); errors.Is(err, os.ErrNotExist) {
		return rep, nil, nil // no machine made yet
	}
	store, err := machine.Open(m.Cfg.MachinesDir)
	if err != nil {
		return rep, err, []string{err.Error()}
	}
	rep, err = store.Clean(ctx)
	var diag, hold []string
	for _, p := range rep.Deleted {
		diag = append(diag, p+": info: deleted")
	}
	for _, p := range rep.NotUnderstood {
		diag = append(diag, "error: "+p)
		hold = append(hold, p)
	}
	if err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			diag = append(diag, "error: "+e)
			hold = append(hold, e)
		}
	}
	if len(diag) == 0 {
		return rep, err, nil
	}
	sort.Strings(hold)
	subject := "cleaned up entries in " + m.Cfg.MachinesDir
	if len(hold) > 0 {
		subject = "invalid entries in " + m.Cfg.MachinesDir + ", holding new builds"
		if m.alreadyHeld(hold) && len(rep.Deleted) == 0 {
			return rep, err, hold
		}
	}
	body := "  " + strings.Join(diag, "\n  ") + "\n"
	if len(hold) > 0 {
		body += fmt.Sprintf("\nbuildd starts no new build while %s exists.\nCorrect the entries above, then remove %s.\n",
			m.Home.Path(home.HoldBuilds), m.Home.Path(home.HoldBuilds))
	}
	m.Log.Printf("%s\n%s", subject, body)
	m.mail(subject, body)
	return rep, err, hold
}

// alreadyHeld reports whether HOLD-BUILDS names every reason already, so
// that the same problem is mailed once.
func (m *Monitor) alreadyHeld(reasons []string) bool {
	b, err := os.ReadFile(m.Home.Path(home.HoldBuilds))
	if err != nil {
		return false
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		have[l] = true
	}
	for _, r := range reasons {
		if !have[holdMachines+r] {
			return false
		}
	}
	return true
}

// Upgrade is the upgrade_schedule job: the machine maintenance of package
// maint (`buildd machine maint -k`: create what is missing, upgrade what
// is older than upgrade_after, prune, push to push_hosts), its progress
// in the daemon log, and a mail to the admin naming the failed jobs, with
// their logs' tails, when any failed.
func (m *Monitor) Upgrade(ctx context.Context) error {
	store, err := machine.Open(m.Cfg.MachinesDir)
	if err != nil {
		m.mail("machine maintenance failed", err.Error()+"\n")
		return err
	}
	var out strings.Builder
	now := time.Time{}
	if m.Now != nil {
		now = m.Now()
	}
	res, err := maint.Run(ctx, m.Cfg, store, maint.Options{Jobs: m.Cfg.MaintJobs, KeepGoing: true, Out: io.MultiWriter(&out, logWriter{m.Log}), Now: now})
	if err == nil && !res.OK() {
		err = fmt.Errorf("machine maintenance: failed %s; skipped %s", strings.Join(res.Failed, ", "), strings.Join(res.Skipped, ", "))
	}
	if err != nil {
		m.mail("machine maintenance failed", err.Error()+"\n\nA machine's current revision changes only when its upgrade is whole. Each job's log is in "+maint.LogDir(m.Cfg)+".\n\n"+out.String())
	}
	return err
}

// logWriter feeds the output of upgrade commands to the log, a line at a
// time.
type logWriter struct{ l *daemonlog.Log }

func (w logWriter) Write(p []byte) (int, error) {
	if s := strings.TrimRight(string(p), "\n"); s != "" {
		w.l.Printf("%s", s)
	}
	return len(p), nil
}

package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/flock"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/mailer"
	"buildd/internal/program"
)

// DetachedEnv marks the re-executed, detached daemon.
const DetachedEnv = "BUILDD_DETACHED"

// CheckEvery is how often the running daemon looks at its flag files, at
// its binary and config for changes, and at the machines of the dists
// held back for their revision, between rounds.
var CheckEvery = 5 * time.Second

// Options are buildd's command-line options.
type Options struct {
	program.Options
	NoDetach bool
	Once     bool
}

// ParseFlags parses buildd's command line.
func ParseFlags(args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("buildd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.Flags(fs)
	fs.BoolVar(&o.NoDetach, "no-detach", false, "stay in the foreground, logging to daemon.log and stderr")
	fs.BoolVar(&o.Once, "once", false, "one round (REDO, then the queue, up to max_build builds), wait for the builds, exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: buildd [--config FILE] [--no-detach] [--once] [--dump-config]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("buildd: unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// Main runs buildd with args (without the program name) and returns the
// exit status: 0, 1 when it cannot start, 2 for a usage error.
func Main(args []string, parts Parts) int {
	o, err := ParseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfgPath := o.ConfigPath()
	c, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildd: stage config: %v\n", err)
		return 1
	}
	if o.DumpConfig {
		if err := c.Dump(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "buildd:", err)
			return 1
		}
		return 0
	}
	detached := os.Getenv(DetachedEnv) != ""
	if !o.NoDetach && !o.Once && !detached && !c.NoDetach {
		return detach(c, args)
	}
	var also io.Writer = os.Stderr
	if detached {
		also = nil
	}
	if err := home.New(c.Home).Init(); err != nil {
		fmt.Fprintf(os.Stderr, "buildd: stage config: home %s: %v\n", c.Home, err)
		return 1
	}
	lg := &daemonlog.Log{Path: c.DaemonLogFile, Prog: "buildd", Echo: also, Stdio: detached}
	err = lg.Reopen()
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildd: stage config: %v\n", err)
		return 1
	}
	defer lg.Close()
	r := &runner{o: o, cfgPath: cfgPath, log: lg}
	return r.run(c, parts)
}

// detach starts the daemon again in its own session with stdout and
// stderr on daemon.log, and returns once it is up (its pid file written)
// or has failed, saying which.
func detach(c *config.Config, args []string) int {
	if pid, running := instanceRunning(c); running {
		fmt.Fprintf(os.Stderr, "buildd: Another buildd (pid %d) is already running.\n", pid)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildd: cannot find my binary:", err)
		return 1
	}
	if err := home.New(c.Home).Init(); err != nil {
		fmt.Fprintf(os.Stderr, "buildd: home %s: %v\n", c.Home, err)
		return 1
	}
	lf, err := os.OpenFile(c.DaemonLogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildd:", err)
		return 1
	}
	defer lf.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), DetachedEnv+"=1")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "buildd: cannot start the daemon:", err)
		return 1
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-exited:
			tail, _, _ := home.Tail(c.DaemonLogFile, 5)
			fmt.Fprintf(os.Stderr, "buildd: the daemon exited during start-up (%v); the end of %s:\n%s", err, c.DaemonLogFile, tail)
			return 1
		case <-deadline:
			fmt.Fprintf(os.Stderr, "buildd: started (pid %d), still starting up; see %s\n", cmd.Process.Pid, c.DaemonLogFile)
			return 0
		case <-time.After(50 * time.Millisecond):
			if pid, _ := home.ReadPID(c.PIDFile); pid == cmd.Process.Pid {
				fmt.Fprintf(os.Stderr, "buildd: started (pid %d), logging to %s\n", pid, c.DaemonLogFile)
				return 0
			}
		}
	}
}

// instanceRunning reports a live buildd holding the instance lock.
func instanceRunning(c *config.Config) (int, bool) {
	l, err := home.TryLock(c.PIDFile)
	if err == nil {
		l.Unlock()
		return 0, false
	}
	pid, _ := home.ReadPID(c.PIDFile)
	return pid, errors.Is(err, flock.ErrLocked)
}

// runner is the daemon's life: its stages, then its loop.
type runner struct {
	o       Options
	cfgPath string
	log     *daemonlog.Log
	d       *Daemon
	lock    *home.Lock
	cfg     *config.Config
	self    fileID // the binary as started
	cfgID   fileID // the config as read
	exe     string
}

// stage runs one start-up stage, logging its start, end and duration.
func (r *runner) stage(n int, name string, fn func() error) error {
	start := time.Now()
	r.log.Printf("Stage %d: %s...", n, name)
	if err := fn(); err != nil {
		r.log.Printf("Stage %d: %s FAILED after %v", n, name, time.Since(start).Round(time.Millisecond))
		return fmt.Errorf("stage %s: %w", name, err)
	}
	r.log.Printf("Stage %d: %s done (%v)", n, name, time.Since(start).Round(time.Millisecond))
	return nil
}

// fail is the one clear diagnostic of a failed essential stage: logged,
// printed, and mailed to the admin.
func (r *runner) fail(c *config.Config, err error) int {
	host := mailer.Hostname()
	msg := fmt.Sprintf("buildd on %s cannot start: %v", host, err)
	r.log.Printf("%s", msg)
	m := mailer.New(c)
	body := msg + "\n\nThe daemon log is " + c.DaemonLogFile + ".\n"
	if serr := m.Send(&mailer.Message{To: []string{c.AdminMail}, Subject: "buildd on " + host + " cannot start", Body: body}); serr != nil {
		r.log.Printf("Mail to %s: %v", c.AdminMail, serr)
	}
	r.release(c)
	return 1
}

func (r *runner) release(c *config.Config) {
	if r.lock != nil {
		os.Remove(c.PIDFile)
		r.lock.Unlock()
		r.lock = nil
	}
}

func (r *runner) run(c *config.Config, parts Parts) int {
	r.cfg = c
	// Signals are caught from the first stage on: one that comes while
	// buildd starts (or right after it said so) waits in sigs for the loop
	// instead of killing it.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	r.log.Printf("Stage 1: config %s read", r.cfgPath)
	var err error
	if r.exe, err = os.Executable(); err == nil {
		r.self, _ = statID(r.exe)
	}
	r.cfgID, _ = statID(r.cfgPath)

	if err := r.stage(2, "instance", func() error { return r.takeInstance(c) }); err != nil {
		r.log.Printf("%v", err)
		return 1
	}
	d := New(c, parts, r.log)
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.stage(3, "machines", func() error { return r.machines(ctx, c, parts) }); err != nil {
		return r.fail(c, err)
	}
	if err := r.stage(4, "queue", func() error { return r.queue(ctx, c) }); err != nil {
		return r.fail(c, err)
	}
	r.log.Printf("Stage 5: loop: daemon started (pid=%d, max_build=%d)", os.Getpid(), c.MaxBuild)
	if r.o.Once {
		go func() {
			for s := range sigs {
				if s == syscall.SIGTERM || s == syscall.SIGINT {
					r.log.Printf("buildd (%d) received %s -- stopping the builds", os.Getpid(), signalName(s))
					d.Stop()
					return
				}
			}
		}()
		started := d.Round(ctx)
		done := make(chan struct{})
		go func() { d.Wait(); close(done) }()
		tick := time.NewTicker(LeaseEvery(c))
		for waiting := true; waiting; {
			select {
			case <-tick.C:
				d.Leases(ctx) // builds can outlast a lease
			case <-done:
				waiting = false
			}
		}
		tick.Stop()
		d.CompleteEndings()
		if n := d.Endings(); n > 0 {
			r.log.Printf("--once: %d ended builds are not yet reported, spooled or mailed; they are in %s for the next start", n, d.home.Finished().Path())
		}
		d.DeliverLogs(ctx)
		if n, err := d.mailer().Flush(); err != nil {
			r.log.Printf("%d mails still wait in the spool: %v", n, err)
		}
		r.log.Printf("--once: %d builds done, exiting", started)
		r.release(c)
		return 0
	}
	return r.loop(ctx, sigs)
}

// takeInstance takes the single-instance lock and writes the pid file.
func (r *runner) takeInstance(c *config.Config) error {
	l, err := home.TryLock(c.PIDFile)
	if errors.Is(err, flock.ErrLocked) {
		pid, _ := home.ReadPID(c.PIDFile)
		return fmt.Errorf("Another buildd (pid %d) is already running.", pid)
	}
	if err != nil {
		return err
	}
	if pid, _ := home.ReadPID(c.PIDFile); pid > 0 && pid != os.Getpid() {
		r.log.Printf("Removing stale pid file (process %d dead)", pid)
	}
	if err := home.WritePID(c.PIDFile, os.Getpid()); err != nil {
		l.Unlock()
		return err
	}
	r.lock = l
	return nil
}

// machines opens the machines volume and deletes stray snapshots (builds
// a crash left behind).
func (r *runner) machines(ctx context.Context, c *config.Config, parts Parts) error {
	m, err := parts.Machines(c)
	if err != nil {
		return err
	}
	deleted, odd, inUse, err := m.Clean(ctx)
	for _, p := range deleted {
		r.log.Printf("Deleted stray snapshot %s", p)
	}
	for _, p := range odd {
		r.log.Printf("Not understood on the machines volume (left alone): %s", p)
	}
	// This buildd builds nothing yet: what is in use is another
	// process's, e.g. the build of another buildd sharing the volume.
	for _, p := range inUse {
		r.log.Printf("Left alone on the machines volume, in use by another buildd or buildd machine command: %s", p)
	}
	if err != nil {
		return err
	}
	r.checkEmulation(c)
	r.d.mu.Lock()
	r.d.machines = m
	r.d.builder = parts.Builder(c, m)
	r.d.mu.Unlock()
	return nil
}

// checkEmulation says, for each dist built in a machine this host runs
// through qemu-user, whether the emulation is there (binfmt_misc): a
// build without it is given back, saying what to install or mount, and
// the watcher's monitor mails when it goes.
func (r *runner) checkEmulation(c *config.Config) {
	for _, d := range c.Dists {
		if d.BuildMode == "cross" {
			continue
		}
		if emu, err := machine.Emulated(d.BuiltArchitecture); err != nil || !emu {
			continue
		}
		if err := machine.CheckEmulation(d.BuiltArchitecture); err != nil {
			r.log.Printf("%s/%s: cannot build here until this is fixed (its builds are given back): %v", d.DistName, d.BuiltArchitecture, err)
			continue
		}
		r.log.Printf("%s/%s: built in machine %s, emulated through qemu-user", d.DistName, d.BuiltArchitecture, d.Machine)
	}
}

// queue takes up the ended builds whose end a crash interrupted
// (FINISHED), puts the other jobs it interrupted (BUILDING) back in REDO,
// and checks that each dist's queue, for each architecture, answers; it
// fails only when none does. Records of both files that name their dist
// alone (written before records carried the architecture) get the dist's
// architecture first, when the host builds it for one.
func (r *runner) queue(ctx context.Context, c *config.Config) error {
	h := home.New(c.Home)
	archOf := func(dist string) string {
		if d, err := c.Resolve(dist, ""); err == nil {
			return d.BuiltArchitecture
		}
		return ""
	}
	ended, err := r.d.resumeEndings(archOf)
	if err != nil {
		return fmt.Errorf("reading %s: %w", h.Finished().Path(), err)
	}
	var lost []home.RedoEntry
	if err := h.Building().Update(func(es []home.RedoEntry) []home.RedoEntry {
		var keep []home.RedoEntry
		for _, e := range es {
			if e.Arch == "" {
				e.Arch = archOf(e.Dist)
			}
			if slices.ContainsFunc(ended, sameJob(e)) {
				keep = append(keep, e)
			} else {
				lost = append(lost, e)
			}
		}
		return keep
	}); err != nil {
		return err
	}
	if len(lost) > 0 {
		if err := h.REDO().Add(lost...); err != nil {
			h.Building().Add(lost...)
			return fmt.Errorf("putting interrupted builds back in REDO: %w", err)
		}
		for _, e := range lost {
			r.log.Printf("%s was building when buildd died -- back in REDO", e.Named())
		}
	}
	var errs []string
	for i := range c.Dists {
		d := &c.Dists[i]
		qctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		listed, err := r.d.queue(c, d).NeedsBuild(qctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Sprintf("dist %s: %v", d.Where(), err))
			r.log.Printf("Queue of %s: %v", d.Where(), err)
			continue
		}
		r.log.Printf("Queue of %s: %d packages need building", d.Where(), len(listed))
	}
	if len(errs) == len(c.Dists) {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// loop is the daemon's main loop: rounds when a slot frees, when
// idle_sleep_time has passed, after signals, and when the machine of a
// dist held back for its revision is on another one (MachineMoved); the
// flag files, the binary and config and those machines are checked every
// CheckEvery.
func (r *runner) loop(ctx context.Context, sigs <-chan os.Signal) int {
	d := r.d
	d.ListenQueues(ctx)
	idle := time.NewTimer(time.Hour)
	check := time.NewTicker(CheckEvery)
	defer check.Stop()
	leases := time.NewTicker(LeaseEvery(d.config()))
	defer leases.Stop()
	due, draining := true, false
	for {
		if d.home.Flag(home.ExitDaemonPlease) {
			os.Remove(d.home.Path(home.ExitDaemonPlease))
			return r.shutdown("NONE (flag file exit)")
		}
		if why := r.changed(); why != "" && !draining {
			draining = true
			r.log.Printf("%s -- restarting myself (pid=%d) once the %d running builds are done", why, os.Getpid(), d.Running())
		}
		if draining && d.Running() == 0 {
			r.reexec()
			draining = false
		}
		if due && !draining {
			c := d.config()
			sleep := time.Duration(c.IdleSleepTime) * time.Second
			if started := d.Round(ctx); started == 0 && d.Running() == 0 {
				r.log.Printf("Nothing to do -- sleeping %d seconds", c.IdleSleepTime)
			}
			idle.Reset(sleep)
			due = false
		}
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGTERM, syscall.SIGINT:
				return r.shutdown(strings.TrimPrefix(signalName(s), "SIG"))
			case syscall.SIGHUP:
				if err := r.log.Reopen(); err != nil {
					fmt.Fprintln(os.Stderr, "buildd: SIGHUP:", err)
				}
				r.log.Printf("SIGHUP: daemon log reopened")
			case syscall.SIGUSR1:
				r.reload()
				leases.Reset(LeaseEvery(d.config()))
				due = true
			case syscall.SIGUSR2:
				d.EndQuarantine("SIGUSR2")
				due = true
			}
		case <-d.Wake():
			due = true
		case <-idle.C:
			due = true
		case <-check.C:
			due = due || d.MachineMoved()
		case <-leases.C:
			d.Leases(ctx)
		}
	}
}

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return s.String()
}

// shutdown stops the builds (back to REDO), removes the pid file and
// returns the exit status.
func (r *runner) shutdown(why string) int {
	r.log.Printf("buildd (%d) received SIG%s -- shutting down", os.Getpid(), why)
	r.d.Stop()
	r.release(r.d.config())
	if err := r.d.Close(); err != nil {
		r.log.Printf("closing the queues: %v", err)
	}
	r.log.Printf("exiting now")
	return 0
}

// reload re-reads the config (SIGUSR1); a config with an error is
// reported and the old one kept.
func (r *runner) reload() {
	c, err := config.Load(r.cfgPath)
	if err != nil {
		r.log.Printf("SIGUSR1: config not re-read, keeping the old one: %v", err)
		return
	}
	r.d.SetConfig(c)
	r.cfgID, _ = statID(r.cfgPath)
	r.log.Printf("SIGUSR1: config %s re-read (max_build=%d)", r.cfgPath, c.MaxBuild)
}

// fileID tells whether a file was replaced or changed.
type fileID struct {
	dev, ino uint64
	mtime    time.Time
	size     int64
}

func statID(path string) (fileID, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	id := fileID{mtime: st.ModTime(), size: st.Size()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(sys.Dev), sys.Ino
	}
	return id, nil
}

// changed says why buildd should restart itself: its binary or its config
// file changed since it started.
func (r *runner) changed() string {
	if r.exe != "" {
		if id, err := statID(r.exe); err == nil && id != r.self {
			return "My binary has been updated"
		}
	}
	if id, err := statID(r.cfgPath); err == nil && id != r.cfgID {
		return "My config file " + r.cfgPath + " has changed"
	}
	return ""
}

// reexec replaces the process with its binary, same arguments and
// environment: the same pid, so the pid file stays right; the instance
// lock (close-on-exec) is taken again by the new image.
func (r *runner) reexec() {
	r.log.Printf("Restarting myself: %s %s", r.exe, strings.Join(os.Args[1:], " "))
	r.lock.Unlock()
	r.lock = nil
	err := syscall.Exec(r.exe, append([]string{r.exe}, os.Args[1:]...), os.Environ())
	r.log.Printf("Restart failed, going on as I am: %v", err)
	r.self, _ = statID(r.exe)
	r.cfgID, _ = statID(r.cfgPath)
	if err := r.takeInstance(r.d.config()); err != nil {
		r.log.Printf("%v", err)
	}
}

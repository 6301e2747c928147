// Package daemon owns the buildd daemon: its start-up in ordered stages
// (config, instance, machines, queue, loop), the loop of the classic
// buildd (REDO first in distribution order, then each dist's needs-build
// list), up to max_build builds at once each in its own snapshot, a dist
// built for several architectures taken from each (dist, arch) queue
// with its own machine and kept apart everywhere (jobs, leases, gates,
// give-backs, the home's records), a queue taken from only while its
// machine is on the revision it requires, the results reported to the
// queue (with the build's class and what it used) and mailed as logs,
// the builder's health (health.go: heartbeats, quarantine after
// infrastructure failures in a row, placement by memory), and the
// daemon's habits: pid file and single instance, detaching, daemon.log,
// signals, re-exec when its binary or config changes, EXIT-DAEMON-PLEASE
// and HOLD-BUILDS.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"buildd/buildd/build"
	"buildd/buildd/logmail"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/pool"
	"buildd/internal/queue"
)

// TailLines is how much of a failed job's log goes into daemon.log: the
// summary block (about 25 lines) and the build output just before it.
const TailLines = 50

// StopWait bounds how long a stopping daemon waits for its builds to end.
const StopWait = 2 * time.Minute

// Daemon is one running buildd.
type Daemon struct {
	parts    Parts
	home     home.Home
	log      *daemonlog.Log
	pool     *pool.Pool
	machines Machines
	wake     chan struct{} // a build finished: a slot is free

	mu          sync.Mutex
	cfg         *config.Config
	mail        *mailer.Mailer
	builder     Builder
	running     map[string]*job
	ending      map[string]*ending // builds ended, their end not yet known to all (ending.go)
	stopping    bool
	fails       []home.InfraFailure   // infrastructure failures in a row (health.go), build/INFRA-FAILURES
	failsRead   bool                  // fails was read from the file
	quarantined bool                  // build/QUARANTINE seen
	probe       context.CancelFunc    // cancels the running probe build, nil when none (health.go)
	probed      time.Time             // when the last probe build started
	heard       map[string]time.Time  // per dist and arch (Dist.Where): the last heartbeat
	held        bool                  // HOLD-BUILDS seen and logged
	badREDO     map[string]bool       // bad REDO lines already logged
	renewed     map[string]time.Time  // per dist and arch (Dist.Where): the last lease renewal
	ports       map[string]queue.Port // per dist's queue settings (portKey)
	gates       map[string]*gate      // per dist and arch (Dist.Where): its machine's revision and the queue's (revision.go)
	jobs        sync.WaitGroup
}

// job is a running build: what buildd/build is given, and the REDO entry
// it was started from (REDO and BUILDING hold that form, without +bN;
// its Arch is always given).
type job struct {
	build.Job
	entry       home.RedoEntry
	cancel      context.CancelFunc
	leased      bool   // its lease is renewed while it builds
	interrupted bool   // cancelled by a stopping daemon: back to REDO
	quarantined bool   // cancelled by the builder's quarantine: given back
	taken       string // why it was cancelled: the queue no longer has the package as ours
}

// jobKey keys the builds of running and ending: a package version in a
// dist for an architecture.
func jobKey(e home.RedoEntry) string { return e.Where() + " " + e.PkgVersion }

// on names a dist and its architecture after a package version, as log
// mail subjects do: "on ARCH (dist=DIST)".
func on(d *config.Dist) string {
	return fmt.Sprintf("on %s (dist=%s)", d.BuiltArchitecture, d.DistName)
}

// New returns a daemon for the config, logging to log.
func New(c *config.Config, parts Parts, log *daemonlog.Log) *Daemon {
	return &Daemon{
		parts:   parts,
		home:    home.New(c.Home),
		log:     log,
		pool:    pool.NewPool(c.MaxBuild),
		wake:    make(chan struct{}, 1),
		cfg:     c,
		mail:    mailer.New(c),
		running: map[string]*job{},
		ending:  map[string]*ending{},
		renewed: map[string]time.Time{},
		heard:   map[string]time.Time{},
		ports:   map[string]queue.Port{},
		gates:   map[string]*gate{},
	}
}

// queue is the port of dist's queue, opened once and kept while the
// settings it is made of stay the same (a re-read config with other
// settings gets another; Close closes them all).
func (d *Daemon) queue(c *config.Config, dist *config.Dist) queue.Port {
	key := portKey(c, dist)
	d.mu.Lock()
	defer d.mu.Unlock()
	q, ok := d.ports[key]
	if !ok {
		q = d.parts.Queue(c, dist)
		d.ports[key] = q
	}
	return q
}

// portKey is what a dist's port is made of.
func portKey(c *config.Config, dist *config.Dist) string {
	return fmt.Sprintf("%q %q %q %q %d %v %q %q %q %q %q", c.WannaBuildDB, dist.DistName, dist.BuiltArchitecture,
		dist.WannaBuildDBUser, dist.Lease(), c.CheckInstall, dist.WannaBuildSSHHost, dist.WannaBuildSSHUser,
		dist.WannaBuildSSHSocket, dist.WannaBuildSSHOptions, c.Home)
}

// Close closes the queue ports the daemon keeps.
func (d *Daemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	for key, q := range d.ports {
		err = errors.Join(err, q.Close())
		delete(d.ports, key)
	}
	return err
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *Daemon) mailer() *mailer.Mailer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mail
}

// SetConfig puts a re-read config in place: new rounds and new jobs use
// it; running jobs keep theirs.
func (d *Daemon) SetConfig(c *config.Config) {
	d.mu.Lock()
	d.cfg = c
	d.mail = mailer.New(c)
	if d.machines != nil {
		d.builder = d.parts.Builder(c, d.machines)
	}
	d.mu.Unlock()
	d.pool.Resize(c.MaxBuild)
}

// Running is the number of builds running.
func (d *Daemon) Running() int { return d.pool.InUse() }

// Round is one pass of the loop: flush the mail spool, then, unless builds
// are held or paused or the disk is full, start jobs for the free slots:
// from REDO first, then from each dist's queue in the config's order,
// leaving the dists whose machine is not on the revision their queue
// requires (revision.go). It returns how many builds it started.
func (d *Daemon) Round(ctx context.Context) int {
	c := d.config()
	if n, err := d.mailer().Flush(); err != nil {
		d.log.Printf("%d mails still wait in the spool: %v", n, err)
	}
	d.CompleteEndings()
	d.DeliverLogs(ctx)
	d.heartbeats(ctx, c)
	if d.quarantineState() != nil {
		d.probeBuild(c)
		return 0
	}
	if d.home.Flag(home.HoldBuilds) {
		if !d.held {
			d.log.Printf("%s exists -- starting no new build while it does", d.home.Path(home.HoldBuilds))
			d.held = true
		}
		return 0
	}
	d.held = false
	if d.stopped() {
		return 0
	}
	free := d.pool.Free()
	if free == 0 {
		return 0
	}
	if kb, where, low := d.lowSpace(c); low {
		d.log.Printf("Delaying build, because free space is low (%d KB in %s)", kb, where)
		return 0
	}
	var dists []config.Dist
	for i := range c.Dists {
		if d.mayTake(ctx, c, &c.Dists[i]) {
			dists = append(dists, c.Dists[i])
		}
	}
	started := 0
	for _, e := range d.fromREDO(c, dists, free) {
		dist, _ := c.DistArch(e.Dist, e.Arch)
		if d.skip(c, dist, e) {
			continue
		}
		leased, ok := d.claim(ctx, c, dist, e)
		if ok && d.start(c, dist, e, leased) {
			started++
		}
	}
	for i := range c.Dists {
		if d.pool.Free() == 0 || ctx.Err() != nil {
			break
		}
		if slices.ContainsFunc(dists, func(t config.Dist) bool { return t.Where() == c.Dists[i].Where() }) {
			started += d.fromQueue(ctx, c, &c.Dists[i], d.pool.Free())
		}
	}
	return started
}

// skip consumes the lines in build/SKIP that name e's build (in dist for
// its architecture), if there are any: that build is not to be done (a
// newer version superseded it there, or the admin said so). A line that
// names the package in the dist without the architecture the host builds
// it for several of names nothing; it is logged.
func (d *Daemon) skip(c *config.Config, dist *config.Dist, e home.RedoEntry) bool {
	found, err := d.home.Skip().Take(e.PkgVersion, func(dn, arch string) (bool, error) { return c.Means(dist, dn, arch) })
	var le *home.LineError
	switch {
	case errors.As(err, &le):
		d.log.Printf("Ignoring a line of SKIP for %s (kept in the file; fix or remove it): %v", e.Named(), err)
	case err != nil:
		d.log.Printf("Can't read SKIP: %v", err)
	}
	if found {
		d.log.Printf("%s found in SKIP file -- skipping building it", e.Named())
	}
	return found
}

func (d *Daemon) stopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping
}

// busy reports whether e's build (its package version in its dist for its
// architecture) is running, or has ended and its end is not yet known to
// all.
func (d *Daemon) busy(e home.RedoEntry) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running[jobKey(e)] != nil || d.ending[jobKey(e)] != nil
}

// lowSpace reports the free KiB of the build area (the machines volume)
// or of the home (logs, results, state files), whichever has less, when
// it is under min_free_space, and where.
func (d *Daemon) lowSpace(c *config.Config) (int64, string, bool) {
	least, where := int64(-1), ""
	for _, dir := range []string{c.MachinesDir, c.Home} {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			continue
		}
		if kb := int64(st.Bavail) * int64(st.Bsize) / 1024; least < 0 || kb < least {
			least, where = kb, dir
		}
	}
	return least, where, least >= 0 && least < int64(c.MinFreeSpace)
}

// fromREDO takes up to n entries of dists out of REDO, distribution
// order first, each with its architecture; the other dists' entries stay,
// and bad lines, and lines naming a dist without the architecture the
// host builds it for several of, stay in the file for the admin to fix
// and are logged once.
func (d *Daemon) fromREDO(c *config.Config, dists []config.Dist, n int) []home.RedoEntry {
	redo := d.home.REDO()
	entries, bad, err := redo.Read()
	if err != nil {
		d.log.Printf("File REDO exists, but can't read it: %v", err)
		return nil
	}
	d.logBadREDO(bad)
	if len(entries) == 0 && len(bad) == 0 {
		return nil
	}
	var take []home.RedoEntry
	err = redo.Update(func(es []home.RedoEntry) []home.RedoEntry {
		var keep []home.RedoEntry
		take, keep, bad = SelectREDO(c, es, dists, n, d.busy)
		return keep
	})
	if err != nil {
		d.log.Printf("Can't rewrite REDO: %v", err)
		return nil
	}
	d.logBadREDO(bad)
	return take
}

// logBadREDO logs each bad line of REDO once.
func (d *Daemon) logBadREDO(bad []error) {
	for _, b := range bad {
		if d.badREDO == nil {
			d.badREDO = map[string]bool{}
		}
		if !d.badREDO[b.Error()] {
			d.badREDO[b.Error()] = true
			d.log.Printf("Ignoring bad line in REDO (kept in the file; fix or remove it): %v", b)
		}
	}
}

// claim makes sure that the queue has e's package as this builder's
// before its build from REDO starts, when e's dist has leases: a builder
// killed and started again finds its interrupted builds in REDO, and
// their leases may have ended meanwhile, the packages given back by
// another builder (and perhaps taken by a third). A package still
// Building by this builder has its lease renewed; one in Needs-Build is
// taken again; one Built or Build-Attempted by this builder (the admin
// asked for a retry) is built without a lease, as no other builder can
// take it; any other is not built, and its REDO line is gone. A queue
// that fails puts e back in REDO: nothing is lost. leased reports whether
// the build's lease is to be renewed.
func (d *Daemon) claim(ctx context.Context, c *config.Config, dist *config.Dist, e home.RedoEntry) (leased, ok bool) {
	if dist.Lease() <= 0 {
		return false, true
	}
	q := d.queue(c, dist)
	failed := func(op string, err error) (bool, bool) {
		d.backToREDO(e, fmt.Sprintf("wanna-build %s --dist=%s --arch=%s failed: %v", op, e.Dist, e.Arch, err))
		return false, false
	}
	notOurs := func(why string) (bool, bool) {
		d.log.Printf("%s in REDO is not this builder's in the queue: %s -- not building it", e.Named(), why)
		return false, false
	}
	info, err := q.Info(ctx, e.PkgVersion)
	if queue.IsRefused(err) {
		return notOurs(err.Error())
	}
	if err != nil {
		return failed("--info", err)
	}
	pv := debversion.SplitPkgVersion(e.PkgVersion)
	mine := info.Builder == dist.WannaBuildDBUser && info.Version == pv.Version
	switch {
	case mine && info.State == queue.Building:
		lost, err := q.Renew(ctx, e.PkgVersion)
		if err != nil {
			return failed("--renew", err)
		}
		if len(lost) == 0 {
			d.log.Printf("%s in REDO is still this builder's in the queue (lease renewed)", e.Named())
			return true, true
		}
		// Its lease ended and another builder gave it back just now.
	case mine && (info.State == queue.Built || info.State == queue.BuildAttempted):
		d.log.Printf("%s in REDO is %s by this builder in the queue: building it again, without a lease", e.Named(), info.State)
		return false, true
	case info.State != queue.NeedsBuild:
		return notOurs("it is " + describe(info))
	}
	err = q.Take(ctx, e.PkgVersion)
	if queue.IsRefused(err) {
		return notOurs(err.Error())
	}
	if err != nil {
		return failed("--take", err)
	}
	d.stats("taken", 1)
	last := ""
	if info.LastChange != "" {
		last = " (last change: " + info.LastChange + ")"
	}
	d.log.Printf("%s in REDO was Needs-Build in the queue again%s: taken again", e.Named(), last)
	return true, true
}

// fromQueue lists dist's needs-build packages, takes up to n of them and
// starts their builds. A package whose previous version failed is taken
// but not built: the admin is asked first ("Should I build").
func (d *Daemon) fromQueue(ctx context.Context, c *config.Config, dist *config.Dist, n int) int {
	q := d.queue(c, dist)
	listed, err := q.NeedsBuild(ctx)
	if err != nil {
		d.log.Printf("wanna-build --list=needs-build --dist=%s --arch=%s failed: %v", dist.DistName, dist.BuiltArchitecture, err)
		return 0
	}
	if len(listed) == 0 {
		return 0
	}
	d.log.Printf("%s: total %d packages to build.", dist.Where(), len(listed))
	cands, skipped, err := SelectQueue(dist, listed, d.slice(c).RAMKiB, func(pkgv string) bool {
		return d.busy(home.RedoEntry{PkgVersion: pkgv, Dist: dist.DistName, Arch: dist.BuiltArchitecture})
	})
	if err != nil {
		d.log.Printf("%v", err)
		return 0
	}
	for _, s := range skipped {
		if strings.HasPrefix(s.Why, "too big") {
			d.log.Printf("%s %s: %s", s.PkgVersion, on(dist), s.Why)
		}
	}
	started := 0
	for _, l := range cands {
		if started >= n || ctx.Err() != nil {
			break
		}
		pkgv := l.PkgVersion()
		e := home.RedoEntry{PkgVersion: pkgv, Dist: dist.DistName, Arch: dist.BuiltArchitecture, BinNMU: l.BinNMU}
		if d.skip(c, dist, e) {
			continue
		}
		if err := q.Take(ctx, pkgv); err != nil {
			if queue.IsRefused(err) {
				d.log.Printf("Can't take %s %s: %v", pkgv, on(dist), err)
				continue
			}
			d.log.Printf("wanna-build --take --dist=%s --arch=%s %s failed: %v", dist.DistName, dist.BuiltArchitecture, pkgv, err)
			break
		}
		d.stats("taken", 1)
		if c.ShouldBuildMsgs || l.BinNMU > 0 {
			info, err := q.Info(ctx, l.Name)
			if err != nil {
				d.log.Printf("wanna-build --info --dist=%s --arch=%s %s failed: %v -- building it", dist.DistName, dist.BuiltArchitecture, l.Name, err)
				info = &queue.Info{}
			}
			if old := strings.TrimSpace(info.OldFailed); c.ShouldBuildMsgs && old != "" {
				d.askShouldBuild(c, dist, pkgv, old)
				continue
			}
			e.Changelog = info.BinNMUChangelog
		}
		if d.start(c, dist, e, dist.Lease() > 0) {
			started++
		}
	}
	return started
}

// askShouldBuild mails the admin the "Should I build" question about a
// package taken whose previous version failed; the answer, through
// buildd-mail, builds it (REDO) or fails it.
func (d *Daemon) askShouldBuild(c *config.Config, dist *config.Dist, pkgv, failed string) {
	d.log.Printf("%s %s previously failed -- asking admin first", pkgv, on(dist))
	msg := logmail.Question(c, dist, pkgv, failed)
	err := logmail.Send(d.mailer(), d.home, msg, dist, pkgv, logmail.KindShouldBuild)
	if errors.Is(err, logmail.ErrNotSent) {
		// No answer could be matched: give the package back rather than
		// hold it with no question asked.
		d.log.Printf("%v -- giving %s back", err, pkgv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := d.queue(c, dist).GiveBack(ctx, pkgv); err != nil {
			d.log.Printf("wanna-build --give-back --dist=%s --arch=%s %s failed: %v", dist.DistName, dist.BuiltArchitecture, pkgv, err)
		}
		return
	}
	if err != nil {
		d.log.Printf("%v", err)
	}
}

// start starts the build of e (its Arch given: dist's) in a free slot;
// leased: its lease is to be renewed while it builds. A job it cannot
// start goes back to REDO.
func (d *Daemon) start(c *config.Config, dist *config.Dist, e home.RedoEntry, leased bool) bool {
	tok, ok := d.pool.TryAcquire()
	if !ok {
		d.backToREDO(e, "no free slot")
		return false
	}
	if err := d.home.Building().Add(e); err != nil {
		d.log.Printf("Can't record %s in BUILDING: %v", e.Named(), err)
	}
	f, err := home.CreateLog(d.home.LogsDir(), subjectPkgv(e), dist.BuiltArchitecture, time.Now())
	if err != nil {
		tok.Release()
		d.log.Printf("Can't start %s: %v", e.Named(), err)
		d.backToREDO(e, "no log file")
		d.home.Building().Remove(sameJob(e))
		return false
	}
	f.Close()
	slice := d.slice(c)
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{Job: build.Job{
		Dist: dist, PkgVersion: e.PkgVersion, BinNMU: e.BinNMU, BinNMUChangelog: e.Changelog,
		Parallel: slice.CPUs, Memory: slice.RAMKiB << 10, LogPath: f.Name(),
	}, entry: e, cancel: cancel, leased: leased}
	d.mu.Lock()
	d.running[jobKey(e)] = j
	builder := d.builder
	d.mu.Unlock()
	binNMU := ""
	if e.BinNMU > 0 {
		binNMU = fmt.Sprintf("!%d!", e.BinNMU)
	}
	d.log.Printf("Starting build (dist=%s) of %s%s on %s (slot %d of %d, parallel=%d, %d MiB; log %s)",
		e.Dist, binNMU, e.PkgVersion, e.Arch, tok.Slot()+1, d.pool.Size(), slice.CPUs, slice.RAMKiB/1024, j.LogPath)
	d.stats("builds", 1)
	d.jobs.Add(1)
	go func() {
		defer d.jobs.Done()
		out, err := builder.Build(ctx, j.Job)
		cancel()
		d.finish(c, j, out, err)
		tok.Release()
		d.poke()
	}()
	return true
}

// subjectPkgv is the package version as mails and logs name it: a binNMU
// carries +bN.
func subjectPkgv(e home.RedoEntry) string {
	return debversion.SplitPkgVersion(e.PkgVersion).WithBinNMU(e.BinNMU).String()
}

func (d *Daemon) backToREDO(e home.RedoEntry, why string) {
	if err := d.home.REDO().Add(e); err != nil {
		d.log.Printf("%s: %s, and it cannot go back to REDO: %v", e.Named(), why, err)
		return
	}
	d.log.Printf("%s: %s -- back in REDO", e.Named(), why)
}

// mailLog mails the log of the ended job j, built for dist, if it has
// one; an error wrapping logmail.ErrNotSent means nothing was sent.
func (d *Daemon) mailLog(c *config.Config, dist *config.Dist, j *job, status build.Status, changes string) error {
	if st, err := os.Stat(j.LogPath); err != nil || st.Size() == 0 {
		return nil
	}
	pkgv := subjectPkgv(j.entry)
	msg, err := logmail.Message(c, dist, logmail.Build{
		PkgVersion: pkgv, Successful: status == build.Successful,
		LogPath: j.LogPath, ChangesPath: changes,
	})
	if err != nil {
		return fmt.Errorf("log mail of %s %s: %w", pkgv, on(dist), err)
	}
	return logmail.Send(d.mailer(), d.home, msg, dist, pkgv, logmail.KindLog)
}

// Stop interrupts every running build (their snapshots are deleted by the
// build as its context ends) and the probe build of a quarantine, waits
// up to StopWait for them, and leaves the builds in REDO.
func (d *Daemon) Stop() {
	d.mu.Lock()
	d.stopping = true
	n := len(d.running)
	for _, j := range d.running {
		j.interrupted = true
		j.cancel()
	}
	if d.probe != nil {
		d.probe()
		n++
	}
	d.mu.Unlock()
	if n == 0 {
		return
	}
	d.log.Printf("Stopping %d builds; waiting max. %v for them", n, StopWait)
	done := make(chan struct{})
	go func() { d.jobs.Wait(); close(done) }()
	select {
	case <-done:
		d.log.Printf("Builds stopped")
	case <-time.After(StopWait):
		d.log.Printf("Builds did not stop in %v; their BUILDING lines go back to REDO at the next start", StopWait)
	}
}

// Wait waits for every running build to finish.
func (d *Daemon) Wait() { d.jobs.Wait() }

// Wake is told when a build finished.
func (d *Daemon) Wake() <-chan struct{} { return d.wake }

// stats adds val to the counter cat of stats/ (see home.Stats), as the
// classic buildd does; the watcher sums them.
func (d *Daemon) stats(cat string, val int64) {
	if err := d.home.Stats().Add(cat, val); err != nil {
		d.log.Printf("%v", err)
	}
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"buildd/buildd/build"
	"buildd/buildd/logmail"
	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/queue"
)

// The end of a build: once a build has ended, the queue is told its
// outcome, its log is spooled for the log store and mailed, and then its
// BUILDING line goes. Each of these can fail for a while (the queue is
// down, the home is full) and the daemon can die between any two of them,
// so the end is written to build/FINISHED (home.Finished) first and each
// step is marked there when done: every round tries again the steps not
// done, and a buildd started again goes on from there, instead of
// building the package again or leaving it Building for ever. While the
// queue has not been told, the package's lease is renewed as a running
// build's is. A build whose package the queue no longer has as this
// builder's (refused) ends there: nothing of it is mailed, delivered or
// left to upload.

// ending is a build that has ended and whose end is not yet known to all.
type ending struct {
	mu      sync.Mutex // held while a step runs: one at a time
	job     *job
	rec     home.Finished
	durable bool        // rec is in FINISHED
	counted bool        // counted in the infrastructure failures in a row
	held    bool        // the queue held the package for the admin: not counted
	told    atomic.Bool // rec.Reported, for readers that do not hold mu
}

// reported reports whether the queue has been told en's outcome.
func (en *ending) reported() bool { return en.told.Load() }

// finish takes over a build that has ended: a build stopped because its
// package is no longer this builder's is only logged; one interrupted by
// a stopping daemon goes back to REDO, the queue untouched (the package
// stays taken by us); any other ends (see ending).
func (d *Daemon) finish(c *config.Config, j *job, out build.Result, buildErr error) {
	e := j.entry
	d.mu.Lock()
	delete(d.running, jobKey(e))
	interrupted, taken := j.interrupted, j.taken
	d.mu.Unlock()
	if taken != "" {
		d.forget(j, out.ChangesPath, fmt.Sprintf("Build of %s stopped, no longer this builder's: %s", e.Named(), taken))
		return
	}
	if buildErr != nil {
		d.log.Printf("Build of %s failed to run: %v", e.Named(), buildErr)
		out.Status, out.Class = build.GivenBack, queue.ClassInfra
	}
	d.mu.Lock()
	quarantined := j.quarantined
	d.mu.Unlock()
	if quarantined && out.Status != build.Successful {
		out.Status = build.GivenBack
		if out.Class != queue.ClassInfra {
			out.Class = queue.ClassInfra
		}
	}
	out.Class = classOf(&out)
	if out.Class == queue.ClassOOM && out.Status == build.Attempted {
		if by, ok := d.biggerSlot(c, j.Dist, j.Memory>>10); ok {
			d.log.Printf("Build of %s ran out of memory in its slot of %d MiB; %s has bigger slots -- giving it back for them", e.Named(), j.Memory>>20, by)
			out.Status = build.GivenBack
		}
	}
	if interrupted && out.Status == build.GivenBack {
		d.backToREDO(e, "build interrupted")
		d.home.Building().Remove(sameJob(e))
		return
	}
	switch out.Status {
	case build.Successful:
		d.log.Printf("Build of %s succeeded -- marking as built in wanna-build", e.Named())
	case build.Attempted:
		d.log.Printf("Build of %s failed (build failed, stage %s) -- marking as attempted in wanna-build", e.Named(), out.FailStage)
		d.stats("failed", 1)
	default:
		d.log.Printf("Build of %s failed (%s, stage %s) -- giving back", e.Named(), out.Class, out.FailStage)
		d.stats("give-back", 1)
	}
	if out.Status != build.Successful {
		d.logTail(j.LogPath)
	}
	en := &ending{job: j, rec: home.Finished{RedoEntry: e, Status: string(out.Status), FailStage: out.FailStage,
		Class: out.Class, Resources: out.Resources, LogPath: j.LogPath, ChangesPath: out.ChangesPath, Ended: time.Now()}}
	d.mu.Lock()
	d.ending[jobKey(e)] = en
	d.mu.Unlock()
	d.complete(c, en)
}

// logTail puts the end of a failed build's log into daemon.log.
func (d *Daemon) logTail(path string) {
	tail, trimmed, err := home.Tail(path, TailLines)
	if err != nil {
		return
	}
	d.log.Printf("Last lines of %s:", path)
	if trimmed {
		d.log.Printf("...")
	}
	for _, l := range strings.Split(strings.TrimRight(tail, "\n"), "\n") {
		d.log.Printf("  %s", l)
	}
}

// sameJob matches the lines of e's job: its package version in its dist
// for its architecture.
func sameJob(e home.RedoEntry) func(home.RedoEntry) bool {
	return func(b home.RedoEntry) bool {
		return b.PkgVersion == e.PkgVersion && b.Dist == e.Dist && b.Arch == e.Arch
	}
}

// CompleteEndings tries again the steps not yet done of every ended build
// (each round does).
func (d *Daemon) CompleteEndings() {
	c := d.config()
	d.mu.Lock()
	ens := make([]*ending, 0, len(d.ending))
	for _, en := range d.ending {
		ens = append(ens, en)
	}
	d.mu.Unlock()
	for _, en := range ens {
		d.complete(c, en)
	}
}

// Endings is the number of ended builds whose end is not yet known to all.
func (d *Daemon) Endings() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ending)
}

// complete does the steps of en not yet done, in order, each marked in
// FINISHED once done; it stops at the first that fails, to be tried
// again by the next round.
func (d *Daemon) complete(c *config.Config, en *ending) {
	if !en.mu.TryLock() {
		return
	}
	defer en.mu.Unlock()
	e := en.rec.RedoEntry
	if !en.durable {
		if err := d.home.Finished().Put(en.rec); err != nil {
			d.log.Printf("Build of %s ended (%s), but it cannot be recorded in %s: %v -- the queue is told once it can", e.Named(), en.rec.Status, d.home.Finished().Path(), err)
			return
		}
		en.durable = true
	}
	dist, err := c.Resolve(e.Dist, e.Arch)
	if err != nil {
		d.log.Printf("Build of %s ended, but %v -- left in %s", e.Named(), err, d.home.Finished().Path())
		return
	}
	if !en.rec.Reported {
		if !d.report(dist, en) {
			return
		}
		if !d.mark(en, func(r *home.Finished) { r.Reported = true }) {
			return
		}
		en.told.Store(true)
	}
	d.countEnding(c, en)
	if !en.rec.Spooled {
		if err := d.spoolLog(c, dist, en.job, build.Status(en.rec.Status)); err != nil {
			d.log.Printf("Log of %s not yet spooled for the log store (tried again next round): %v", e.Named(), err)
			return
		}
		if !d.mark(en, func(r *home.Finished) { r.Spooled = true }) {
			return
		}
	}
	if !en.rec.Mailed {
		err := d.mailLog(c, dist, en.job, build.Status(en.rec.Status), en.rec.ChangesPath)
		if errors.Is(err, logmail.ErrNotSent) {
			d.log.Printf("Log of %s not yet mailed (tried again next round): %v", e.Named(), err)
			return
		}
		if err != nil {
			d.log.Printf("%v", err)
		}
		if !d.mark(en, func(r *home.Finished) { r.Mailed = true }) {
			return
		}
	}
	if err := d.home.Building().Remove(sameJob(e)); err != nil {
		d.log.Printf("Can't update BUILDING: %v", err)
		return
	}
	if err := d.home.Finished().Remove(e); err != nil {
		d.log.Printf("Can't update %s: %v", d.home.Finished().Path(), err)
		return
	}
	d.endingDone(e)
	d.log.Printf("Build of %s finished (%s).", e.Named(), en.rec.Status)
}

func (d *Daemon) endingDone(e home.RedoEntry) {
	d.mu.Lock()
	delete(d.ending, jobKey(e))
	d.mu.Unlock()
	d.poke()
}

// mark records a step of en as done in FINISHED.
func (d *Daemon) mark(en *ending, done func(*home.Finished)) bool {
	r := en.rec
	done(&r)
	if err := d.home.Finished().Put(r); err != nil {
		d.log.Printf("Can't update %s for %s (tried again next round): %v", d.home.Finished().Path(), r.Named(), err)
		return false
	}
	en.rec = r
	return true
}

// countEnding counts en in the infrastructure failures in a row, once.
func (d *Daemon) countEnding(c *config.Config, en *ending) {
	if en.counted {
		return
	}
	en.counted = true
	d.countFails(c, en)
}

// report tells dist's queue en's outcome and reports whether it is told.
// A queue that refuses (the package is no longer this builder's: the
// lease ended while the builder was stopped or cut off, the admin gave it
// back) ends en there, unless the queue already has this outcome from
// this builder (told before a crash that came before the step was
// marked). A queue that fails leaves en for the next round.
func (d *Daemon) report(dist *config.Dist, en *ending) bool {
	e := en.rec.RedoEntry
	d.mu.Lock()
	taken := en.job.taken
	d.mu.Unlock()
	if taken != "" {
		d.forget(en.job, en.rec.ChangesPath, fmt.Sprintf("Build of %s (%s) not reported: no longer this builder's: %s", e.Named(), en.rec.Status, taken))
		return false
	}
	c := d.config()
	q := d.queue(c, dist)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if en.rec.Class == "" {
		en.rec.Class = classOf(&build.Result{Status: build.Status(en.rec.Status)}) // a record of a buildd before classes
	}
	kept, err := q.End(ctx, e.PkgVersion, buildEnd(c, &en.rec))
	switch {
	case err == nil:
		if kept != nil && kept.Held != "" {
			en.held = true
			d.heldMail(c, dist, e, kept)
		}
		return true
	case queue.IsRefused(err):
		if d.toldBefore(ctx, q, dist, en) {
			d.log.Printf("%s: the queue has its outcome (%s) from this builder already", e.Named(), en.rec.Status)
			return true
		}
		d.forget(en.job, en.rec.ChangesPath, fmt.Sprintf("Build of %s (%s) not reported: the queue refuses it: %v", e.Named(), en.rec.Status, err))
		return false
	}
	d.log.Printf("wanna-build (%s) --dist=%s --arch=%s %s failed: %v -- tried again next round; its lease is renewed meanwhile", en.rec.Status, e.Dist, e.Arch, e.PkgVersion, err)
	return false
}

// toldBefore reports whether the queue has en's outcome from this builder
// already: Built or Build-Attempted by it, or given back by it last.
func (d *Daemon) toldBefore(ctx context.Context, q queue.Port, dist *config.Dist, en *ending) bool {
	info, err := q.Info(ctx, en.rec.PkgVersion)
	if err != nil || info.Version != debversion.SplitPkgVersion(en.rec.PkgVersion).Version {
		return false
	}
	me := dist.WannaBuildDBUser
	switch build.Status(en.rec.Status) {
	case build.Successful:
		return info.Builder == me && info.State == queue.Built
	case build.Attempted:
		return info.Builder == me && info.State == queue.BuildAttempted
	}
	return info.State == queue.NeedsBuild && strings.HasPrefix(info.LastChange, "--give-back by "+me+" at ")
}

// forget ends a build of a package that is no longer this builder's: its
// log stays in logs/ only, its results leave build/ (no answer may upload
// them), and its BUILDING and FINISHED lines go.
func (d *Daemon) forget(j *job, changes, why string) {
	e := j.entry
	d.log.Printf("%s; its log stays in %s only (not mailed or delivered to the log store)", why, j.LogPath)
	if changes != "" {
		d.removeResults(changes)
	}
	if err := d.home.Building().Remove(sameJob(e)); err != nil {
		d.log.Printf("Can't update BUILDING: %v", err)
	}
	if err := d.home.Finished().Remove(e); err != nil {
		d.log.Printf("Can't update %s: %v", d.home.Finished().Path(), err)
	}
	d.endingDone(e)
}

// removeResults removes a build's .changes and the files it lists from
// build/.
func (d *Daemon) removeResults(changes string) {
	if _, err := d.home.RemoveBuild(filepath.Base(changes)); err != nil {
		d.log.Printf("Removing %s and its files from build/: %v", changes, err)
		return
	}
	d.log.Printf("Removed %s and its files from build/", changes)
}

// resumeEndings takes up, at start-up, the builds whose end a dead buildd
// left in FINISHED, and returns them: their BUILDING lines stay, and
// CompleteEndings goes on with them. A record written before records
// carried the architecture first gets its dist's (archOf); one of a dist
// built here for several keeps none, and CompleteEndings leaves it, and
// says so.
func (d *Daemon) resumeEndings(archOf func(dist string) string) ([]home.RedoEntry, error) {
	if err := d.home.Finished().FillArch(archOf); err != nil {
		return nil, err
	}
	recs, bad, err := d.home.Finished().Read()
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		d.log.Printf("Ignoring bad line in %s (kept in the file; fix or remove it): %v", d.home.Finished().Path(), b)
	}
	var out []home.RedoEntry
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		j := &job{Job: build.Job{PkgVersion: r.PkgVersion, BinNMU: r.BinNMU, BinNMUChangelog: r.Changelog, LogPath: r.LogPath},
			entry: r.RedoEntry}
		if dc, ok := d.cfg.DistArch(r.Dist, r.Arch); ok {
			j.Dist, j.leased = dc, dc.Lease() > 0
		}
		en := &ending{job: j, rec: r, durable: true}
		en.told.Store(r.Reported)
		d.ending[jobKey(r.RedoEntry)] = en
		out = append(out, r.RedoEntry)
		d.log.Printf("%s had ended (%s) when buildd died -- going on with its end (told the queue: %v, log spooled: %v, mailed: %v)",
			r.Named(), r.Status, r.Reported, r.Spooled, r.Mailed)
	}
	return out, nil
}

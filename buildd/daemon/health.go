package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/program"
	"buildd/internal/queue"
	"buildd/internal/slicing"
)

// The builder's health (internal/queue/health.go). Each ended build is
// told to its queue with its class and what it used (Port.End); a
// give-back waits there before any builder may take the package again.
// Infrastructure failures in a row (more than max_sbuild_fails) put the
// builder in quarantine (build/QUARANTINE): it takes nothing, gives back
// what it holds, mails the admin what failed, and stays so until the
// admin ends it (buildd quarantine --end, or SIGUSR2) or a probe build
// of quarantine_probe succeeds. Each round it reports a heartbeat to
// each queue, idle or not: its slots, their memory, its builds, its
// quarantine. A slot takes only a package whose measured memory fits it,
// and a build killed by its slot's memory limit is given back (once) when
// a live builder has slots big enough.

// HeartbeatEvery is the least time between two heartbeats to one queue.
var HeartbeatEvery = time.Minute

// slice is each slot's share of the host: slot_memory when set.
func (d *Daemon) slice(c *config.Config) slicing.Slice {
	s, err := slicing.HostSlice(d.pool.Size())
	if err != nil {
		s = slicing.Slice{CPUs: 1}
	}
	if c.SlotMemory > 0 {
		s.RAMKiB = int64(c.SlotMemory) << 10
	}
	return s
}

// retryPolicy is the config's backoff of give-backs.
func retryPolicy(c *config.Config) queue.RetryPolicy {
	return queue.RetryPolicy{Delay: int64(c.DelayAfterGiveBack) * 60, Max: c.GiveBackRetries}
}

// classOf is the build's class: the one it saw, else (a builder that
// does not classify) the one its outcome implies.
func classOf(out *build.Result) queue.Class {
	switch {
	case out.Class != "":
		return out.Class
	case out.Status == build.Successful:
		return queue.ClassOK
	case out.Status == build.Attempted:
		return queue.ClassPackage
	}
	return queue.ClassInfra
}

// buildEnd is what the queue is told of the ended build rec.
func buildEnd(c *config.Config, rec *home.Finished) queue.BuildEnd {
	e := queue.BuildEnd{Outcome: queue.Outcome(rec.Status), Class: rec.Class, Stage: rec.FailStage,
		Resources: rec.Resources, Retry: retryPolicy(c)}
	if e.Outcome == queue.Successful {
		e.Stage = ""
	}
	if e.Class == queue.ClassOOM {
		// Given back for a bigger slot: a builder with one may take it at
		// once.
		e.Retry.Delay = 0
	}
	return e
}

// biggerSlot reports a live builder of dist's queue, not quarantined,
// whose slots hold what a build that ran out of memory in a slot of
// slotKiB is expected to need next (queue.NeedsMemory), and which.
func (d *Daemon) biggerSlot(c *config.Config, dist *config.Dist, slotKiB int64) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sts, err := d.queue(c, dist).Builders(ctx)
	if err != nil {
		d.log.Printf("wanna-build --builders --dist=%s --arch=%s failed: %v", dist.DistName, dist.BuiltArchitecture, err)
		return "", false
	}
	need := queue.NeedsMemory([]*queue.BuildRecord{{Class: queue.ClassOOM, Resources: queue.Resources{SlotMemory: slotKiB}}})
	for _, st := range sts {
		if st.Quarantined == "" && time.Since(time.Unix(st.Heard, 0)) <= queue.SilentAfter && st.SlotMemory >= need {
			return st.Builder, true
		}
	}
	return "", false
}

// countFails counts the builder's infrastructure failures in a row
// (build/INFRA-FAILURES, so that a buildd started again goes on
// counting); one more than max_sbuild_fails puts it in quarantine. A
// failure the queue held for the admin (the package failed on another
// builder too) is the package's, not the builder's: it is not counted.
func (d *Daemon) countFails(c *config.Config, en *ending) {
	f := d.home.InfraFailures()
	d.mu.Lock()
	if !d.failsRead {
		fails, err := f.Read()
		if err != nil {
			d.log.Printf("%v -- counting infrastructure failures in a row from none", err)
		}
		d.fails, d.failsRead = fails, true
	}
	var fails []home.InfraFailure
	switch {
	case en.rec.Class != queue.ClassInfra:
		if len(d.fails) == 0 {
			d.mu.Unlock()
			return
		}
		d.fails = nil
	case en.held || d.quarantined:
		d.mu.Unlock()
		return
	default:
		tail, _, _ := home.Tail(en.job.LogPath, 1000)
		d.fails = append(d.fails, home.InfraFailure{Build: en.rec.Named(), Stage: en.rec.FailStage, Reason: failReason(tail), Log: en.job.LogPath})
		if len(d.fails) > c.MaxSbuildFails {
			fails, d.fails = d.fails, nil
		}
	}
	err := f.Put(d.fails)
	d.mu.Unlock()
	if err != nil {
		d.log.Printf("Can't update %s: %v", f.Path(), err)
	}
	if fails != nil {
		d.quarantine(c, fails, en.job.LogPath)
	}
}

// failReason is the Fail-Reason line of a log's summary, "" if none.
func failReason(tail string) string {
	for _, l := range strings.Split(tail, "\n") {
		if r, ok := strings.CutPrefix(l, "Fail-Reason: "); ok {
			return r
		}
	}
	return ""
}

// quarantine puts the builder in quarantine after fails: it records it,
// gives back its running builds, mails the admin and tells its queues.
func (d *Daemon) quarantine(c *config.Config, fails []home.InfraFailure, lastLog string) {
	last := fails[len(fails)-1]
	q := home.Quarantine{Since: time.Now().UTC(), Reason: fmt.Sprintf("%d infrastructure failures in a row, the last %s at stage %s: %s",
		len(fails), last.Build, last.Stage, last.Reason)}
	if err := d.home.Quarantine().Put(q); err != nil {
		d.log.Printf("Can't write %s: %v -- quarantined until this buildd stops", d.home.Quarantine().Path(), err)
	}
	d.mu.Lock()
	d.quarantined = true
	var given []string
	for _, j := range d.running {
		j.quarantined = true
		j.cancel()
		given = append(given, j.entry.Named())
	}
	d.mu.Unlock()
	d.log.Printf("Quarantined: %s -- taking nothing until the admin ends it (buildd quarantine --end)", q.Reason)
	if len(given) > 0 {
		d.log.Printf("Giving back the running builds: %s", strings.Join(given, ", "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "buildd had %d infrastructure failures in a row (more than max_sbuild_fails = %d)\n"+
		"and takes no package from its queues until it leaves quarantine. The\n"+
		"packages were given back, none failed for it.\n\n", len(fails), c.MaxSbuildFails)
	for _, f := range fails {
		fmt.Fprintf(&b, "  %s: stage %s: %s\n    log %s\n", f.Build, f.Stage, f.Reason, f.Log)
	}
	if len(given) > 0 {
		fmt.Fprintf(&b, "\nRunning builds given back: %s\n", strings.Join(given, ", "))
	}
	b.WriteString("\nDiagnostics:\n")
	for _, dir := range []string{c.MachinesDir, c.Home} {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			fmt.Fprintf(&b, "  %s: %v\n", dir, err)
			continue
		}
		fmt.Fprintf(&b, "  %s: %d MiB free of %d MiB\n", dir, int64(st.Bavail)*int64(st.Bsize)>>20, int64(st.Blocks)*int64(st.Bsize)>>20)
	}
	for i := range c.Dists {
		held, err := d.machineRevisions(c.Dists[i].Machine)
		cur, ok := queue.CurrentOf(held)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "  machine %s: %v\n", c.Dists[i].Machine, err)
		case !ok:
			fmt.Fprintf(&b, "  machine %s: no current revision\n", c.Dists[i].Machine)
		default:
			fmt.Fprintf(&b, "  machine %s: current revision %s (%s)\n", c.Dists[i].Machine, cur.Revision, cur.UUID)
		}
	}
	if tail, _, err := home.Tail(lastLog, TailLines); err == nil {
		fmt.Fprintf(&b, "\nThe last %d lines of the last failed build's log (%s):\n%s\n", TailLines, lastLog, tail)
	}
	b.WriteString("\nEnd the quarantine with `buildd quarantine --end` (or SIGUSR2) once the host is fixed")
	if c.QuarantineProbe != "" {
		fmt.Fprintf(&b, ";\nbuildd ends it itself when a probe build of %s succeeds (one every %d seconds)", c.QuarantineProbe, c.SbuildFailsPause)
	}
	b.WriteString(".\n")
	subject := fmt.Sprintf("Repeated mess with sbuild: quarantined after %d infrastructure failures", len(fails))
	if err := d.mailer().Send(&mailer.Message{To: []string{c.AdminMail}, Subject: subject, Body: b.String()}); err != nil {
		d.log.Printf("Quarantine mail: %v", err)
	}
	d.mu.Lock()
	clear(d.heard)
	d.mu.Unlock()
	d.heartbeats(context.Background(), c)
}

// quarantineState is the builder's quarantine, nil when it takes
// packages. A build/QUARANTINE that cannot be read keeps it quarantined,
// and says why.
func (d *Daemon) quarantineState() *home.Quarantine {
	q, err := d.home.Quarantine().Read()
	if err != nil {
		q = &home.Quarantine{Since: time.Now().UTC(), Reason: err.Error()}
	}
	d.mu.Lock()
	was := d.quarantined
	d.quarantined = q != nil
	d.mu.Unlock()
	if was && q == nil {
		d.log.Printf("Quarantine ended: taking packages again")
	}
	if !was && q != nil {
		d.log.Printf("Quarantined since %s: %s -- taking nothing (buildd quarantine --end ends it)", q.Since.Format(time.DateTime), q.Reason)
	}
	return q
}

// EndQuarantine ends the quarantine, if there is one, for why (SIGUSR2,
// which buildd quarantine --end sends; a probe build).
func (d *Daemon) EndQuarantine(why string) {
	if q, _ := d.home.Quarantine().Read(); q != nil {
		d.log.Printf("%s: quarantine ended", why)
	}
	if err := d.home.Quarantine().End(); err != nil {
		d.log.Printf("Can't end the quarantine: %v", err)
	}
	d.mu.Lock()
	clear(d.heard)
	d.mu.Unlock()
}

// probeBuild builds quarantine_probe, at most every sbuild_fails_pause
// seconds, in a free slot, without taking it from any queue; its results
// are removed and nothing is mailed. Its success ends the quarantine. A
// stopping daemon cancels it (Stop).
func (d *Daemon) probeBuild(c *config.Config) {
	if c.QuarantineProbe == "" || len(c.Dists) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.mu.Lock()
	due := d.probe == nil && !d.stopping && time.Since(d.probed) >= time.Duration(c.SbuildFailsPause)*time.Second
	if due {
		d.probe, d.probed = cancel, time.Now()
	}
	builder := d.builder
	d.mu.Unlock()
	if !due {
		cancel()
		return
	}
	done := func() {
		cancel()
		d.mu.Lock()
		d.probe = nil
		d.mu.Unlock()
	}
	tok, ok := d.pool.TryAcquire()
	if !ok {
		done()
		return
	}
	dist := &c.Dists[0]
	f, err := home.CreateLog(d.home.LogsDir(), c.QuarantineProbe, dist.BuiltArchitecture, time.Now())
	if err != nil {
		tok.Release()
		d.log.Printf("Probe build of %s: %v", c.QuarantineProbe, err)
		done()
		return
	}
	f.Close()
	slice := d.slice(c)
	j := build.Job{Dist: dist, PkgVersion: c.QuarantineProbe, Parallel: slice.CPUs, Memory: slice.RAMKiB << 10, LogPath: f.Name()}
	d.log.Printf("Quarantined: probe build of %s %s (log %s)", c.QuarantineProbe, on(dist), j.LogPath)
	d.jobs.Add(1)
	go func() {
		defer d.jobs.Done()
		defer tok.Release()
		out, err := builder.Build(ctx, j)
		if out.ChangesPath != "" {
			d.removeResults(out.ChangesPath)
		}
		done()
		if err != nil || out.Status != build.Successful {
			d.log.Printf("Probe build of %s failed (%s, stage %s, %v): still quarantined", c.QuarantineProbe, out.Status, out.FailStage, err)
			return
		}
		d.EndQuarantine("Probe build of " + c.QuarantineProbe + " succeeded")
		if err := d.mailer().Send(&mailer.Message{To: []string{c.AdminMail}, Subject: "buildd left quarantine: probe build of " + c.QuarantineProbe + " succeeded",
			Body: fmt.Sprintf("The probe build of %s %s succeeded (log %s): buildd takes packages again.\n", c.QuarantineProbe, on(dist), j.LogPath)}); err != nil {
			d.log.Printf("Quarantine mail: %v", err)
		}
		d.poke()
	}()
}

// heartbeats reports the builder's status to each of its queues, at most
// every HeartbeatEvery to one (Round and Leases call it), idle or not.
func (d *Daemon) heartbeats(ctx context.Context, c *config.Config) {
	q, _ := d.home.Quarantine().Read()
	slotKiB := d.slice(c).RAMKiB
	for i := range c.Dists {
		dist := &c.Dists[i]
		now := time.Now()
		d.mu.Lock()
		due := now.Sub(d.heard[dist.Where()]) >= HeartbeatEvery
		running := 0
		for _, j := range d.running {
			if j.entry.Dist == dist.DistName && j.entry.Arch == dist.BuiltArchitecture {
				running++
			}
		}
		if due {
			d.heard[dist.Where()] = now
		}
		d.mu.Unlock()
		if !due {
			continue
		}
		st := queue.BuilderStatus{Slots: d.pool.Size(), SlotMemory: slotKiB, Running: running}
		if q != nil {
			st.Quarantined, st.QuarantinedSince = q.Reason, q.Since.Unix()
		}
		if len(st.Quarantined) > 1000 {
			st.Quarantined = st.Quarantined[:1000]
		}
		hctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := d.queue(c, dist).Heartbeat(hctx, st)
		cancel()
		if err != nil {
			d.log.Printf("wanna-build --heartbeat --dist=%s --arch=%s failed: %v", dist.DistName, dist.BuiltArchitecture, err)
		}
	}
}

// QuarantineCLI is `buildd quarantine [--end]`: says whether buildd is
// quarantined, and why; --end ends the quarantine and wakes the running
// buildd (SIGUSR2).
func QuarantineCLI(args []string, stdout, stderr *os.File) int {
	o, end, err := parseQuarantineFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	c, err := config.Load(o.ConfigPath())
	if err != nil {
		fmt.Fprintf(stderr, "buildd quarantine: %v\n", err)
		return 1
	}
	f := home.New(c.Home).Quarantine()
	q, err := f.Read()
	switch {
	case err != nil && !end:
		fmt.Fprintf(stderr, "buildd quarantine: %v\n", err)
		return 1
	case q == nil && err == nil:
		fmt.Fprintln(stdout, "not quarantined")
		return 0
	case !end:
		fmt.Fprintf(stdout, "quarantined since %s: %s\n", q.Since.Format(time.DateTime+" MST"), q.Reason)
		return 0
	}
	if err := f.End(); err != nil {
		fmt.Fprintf(stderr, "buildd quarantine --end: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "quarantine ended")
	if pid, ok := instanceRunning(c); ok && pid > 0 {
		if err := unix.Kill(pid, unix.SIGUSR2); err != nil && !errors.Is(err, unix.ESRCH) {
			fmt.Fprintf(stderr, "buildd quarantine --end: wake buildd (pid %d): %v\n", pid, err)
		}
	}
	return 0
}

// parseQuarantineFlags parses `buildd quarantine`'s command line.
func parseQuarantineFlags(args []string, stderr io.Writer) (program.Options, bool, error) {
	var o program.Options
	fs := flag.NewFlagSet("buildd quarantine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.Flags(fs)
	end := fs.Bool("end", false, "end the quarantine: buildd takes packages again")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: buildd quarantine [--config FILE] [--end]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "buildd quarantine: unexpected argument %q\n", fs.Arg(0))
		return o, false, errors.New("usage")
	}
	return o, *end, nil
}

// heldMail tells the admin that the queue holds e's package after its
// give-back, and why: the package's problem, not this builder's.
func (d *Daemon) heldMail(c *config.Config, dist *config.Dist, e home.RedoEntry, b *queue.BuildRecord) {
	d.log.Printf("%s is held for the admin: %s", e.Named(), b.Held)
	body := fmt.Sprintf("%s %s was given back (%s, stage %s) and is held for the admin:\n  %s\n\n"+
		"No builder takes it until you say so:\n  wanna-build --dist=%s --arch=%s --retry %s\n",
		e.PkgVersion, on(dist), b.Class, b.Stage, b.Held, dist.DistName, dist.BuiltArchitecture, b.Package)
	if err := d.mailer().Send(&mailer.Message{To: []string{c.AdminMail}, Subject: fmt.Sprintf("%s %s held for the admin", e.PkgVersion, on(dist)), Body: body}); err != nil {
		d.log.Printf("Held mail: %v", err)
	}
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
)

// The kinds of fault.
const (
	evPGRestart  = "postgres-restart"
	evPGStop     = "postgres-stop"
	evKill       = "kill-buildd"
	evFreeze     = "freeze"
	evMailKill   = "kill-buildd-mail"
	evUploadKill = "kill-buildd-uploader"
	evCut        = "ssh-cut"
	evFull       = "home-full"
)

// chaosEvent is one fault of the schedule, all of it drawn from the seed.
type chaosEvent struct {
	at   time.Duration // after the merge
	kind string
	node int           // the builder (index), for faults of one builder
	dur  time.Duration // how long PostgreSQL is stopped, the builder frozen, the home full; before a killed buildd starts again
	frac float64       // where in a buildd-mail or buildd-uploader run it is killed: a fraction of the last such run
	mode string        // PostgreSQL's stop mode; the cut's phase ("before" or "after" the call's change)
}

func (e chaosEvent) String() string {
	switch e.kind {
	case evPGRestart:
		return "PostgreSQL stopped -m immediate and started again at once"
	case evPGStop:
		return fmt.Sprintf("PostgreSQL stopped -m %s for %v", e.mode, e.dur)
	case evKill:
		return fmt.Sprintf("kill -9 buildd of builder %d, started again after %v", e.node+1, e.dur)
	case evFreeze:
		return fmt.Sprintf("SIGSTOP buildd of builder %d (or the next one building), SIGCONT after %v", e.node+1, e.dur)
	case evMailKill:
		return fmt.Sprintf("kill -9 the next buildd-mail run at %.0f%% of the last run's time", 100*e.frac)
	case evUploadKill:
		return fmt.Sprintf("kill -9 the next buildd-uploader run with work at %.0f%% of the last run's time", 100*e.frac)
	case evCut:
		return fmt.Sprintf("cut the ssh connection of the cut builder's next queue call %s its change", e.mode)
	case evFull:
		return fmt.Sprintf("fill the home volume of builder %d for %v", e.node+1, e.dur)
	}
	return e.kind
}

// exclusive faults run one at a time (PostgreSQL's and the freezes), so
// that each keeps its meaning: a freeze past the lease is not blurred by
// an outage in which no lease can end.
func (e chaosEvent) exclusive() bool {
	return e.kind == evPGRestart || e.kind == evPGStop || e.kind == evFreeze
}

// drawSchedule draws the plan's faults within its window.
func drawSchedule(rng *rand.Rand, c *chaos) []chaosEvent {
	p := c.plan
	at := func() time.Duration { return 5*time.Second + time.Duration(rng.Int64N(int64(p.window))) }
	var ev []chaosEvent
	add := func(n int, mk func() chaosEvent) {
		for i := 0; i < n; i++ {
			ev = append(ev, mk())
		}
	}
	add(p.pgRestarts, func() chaosEvent { return chaosEvent{at: at(), kind: evPGRestart} })
	add(p.pgStops, func() chaosEvent {
		mode := []string{pgtest.Immediate, pgtest.Fast}[rng.IntN(2)]
		return chaosEvent{at: at(), kind: evPGStop, mode: mode, dur: ListenRetry + time.Duration(2+rng.IntN(4))*time.Second}
	})
	add(p.builddKills, func() chaosEvent {
		return chaosEvent{at: at(), kind: evKill, node: rng.IntN(len(c.nodes)), dur: time.Duration(1+rng.IntN(5)) * time.Second}
	})
	add(p.freezes, func() chaosEvent {
		// Early: while builds still run.
		at := 5*time.Second + time.Duration(rng.Int64N(int64(p.window/3)))
		return chaosEvent{at: at, kind: evFreeze, node: rng.IntN(len(c.nodes)), dur: chaosLease + 20*time.Second}
	})
	add(p.mailKills, func() chaosEvent {
		return chaosEvent{at: at(), kind: evMailKill, frac: 0.05 + 0.9*rng.Float64()}
	})
	add(p.uploaderKills, func() chaosEvent {
		return chaosEvent{at: at(), kind: evUploadKill, frac: 0.05 + 0.9*rng.Float64()}
	})
	add(p.sshDrops, func() chaosEvent {
		return chaosEvent{at: at(), kind: evCut, mode: []string{"before", "after"}[rng.IntN(2)]}
	})
	add(p.homeFulls, func() chaosEvent {
		return chaosEvent{at: at(), kind: evFull, node: smallHomeNode, dur: time.Duration(10+rng.IntN(11)) * time.Second}
	})
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].at < ev[j].at })
	return ev
}

func (c *chaos) logSchedule() {
	var b strings.Builder
	for _, e := range c.schedule {
		fmt.Fprintf(&b, "\n  %6.1fs %s", e.at.Seconds(), e)
	}
	c.t.Logf("seed %d: %s run, skewed builder 7's queue host %+ds; schedule:%s", c.seed, c.plan.name, c.skew, b.String())
}

// chaosFault is a fault as it happened, and what came of it.
type chaosFault struct {
	at         time.Time
	what       string
	recoveries []string
}

// fault records a fault injected now.
func (c *chaos) fault(format string, args ...any) *chaosFault {
	f := &chaosFault{at: time.Now(), what: fmt.Sprintf(format, args...)}
	c.mu.Lock()
	c.faults = append(c.faults, f)
	c.mu.Unlock()
	c.t.Logf("%6.1fs fault: %s", time.Since(c.began).Seconds(), f.what)
	return f
}

// recovered adds a line to what came of f.
func (c *chaos) recovered(f *chaosFault, format string, args ...any) {
	c.mu.Lock()
	f.recoveries = append(f.recoveries, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// violation records a broken invariant.
func (c *chaos) violation(format string, args ...any) {
	c.mu.Lock()
	c.violations = append(c.violations, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// figure records a line of the run's figures.
func (c *chaos) figure(format string, args ...any) {
	c.mu.Lock()
	c.figures = append(c.figures, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// exclusiveGap separates an exclusive fault from the next, for the
// builders to recover from one before the next.
const exclusiveGap = 8 * time.Second

// runSchedule injects the schedule's faults at their times, the exclusive
// ones one after the other, and returns once every fault is over (each
// builder running again, PostgreSQL up, the volume freed).
func (c *chaos) runSchedule() {
	var wg sync.WaitGroup
	var excl []chaosEvent
	for _, e := range c.schedule {
		if e.exclusive() {
			excl = append(excl, e)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(c.began.Add(e.at)))
			c.inject(e)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, e := range excl {
			time.Sleep(time.Until(c.began.Add(e.at)))
			c.inject(e)
			time.Sleep(exclusiveGap)
		}
	}()
	wg.Wait()
}

// inject injects e and returns when it is over.
func (c *chaos) inject(e chaosEvent) {
	switch e.kind {
	case evPGRestart:
		c.pgDown(e, func() {})
	case evPGStop:
		c.pgDown(e, func() { time.Sleep(e.dur) })
	case evKill:
		c.killBuildd(e)
	case evFreeze:
		c.freeze(e)
	case evMailKill:
		c.mailKills.arm(e.frac)
	case evUploadKill:
		c.upKills.arm(e.frac)
	case evCut:
		c.cutArmed(e)
	case evFull:
		c.fillHome(e)
	}
}

// pgDown stops PostgreSQL (immediate for a restart), waits in down, and
// starts it again; then it measures how long the builders on PostgreSQL
// take to listen again and the queue to change again.
func (c *chaos) pgDown(e chaosEvent, down func()) {
	mode := e.mode
	if e.kind == evPGRestart {
		mode = pgtest.Immediate
	}
	f := c.fault("%s", e)
	c.mu.Lock()
	c.queueDown = true
	c.mu.Unlock()
	if err := c.cluster.Stop(mode); err != nil {
		c.violation("%s: %v", e, err)
	}
	c.admin.releaseHeld()
	down()
	err := c.cluster.Start()
	c.mu.Lock()
	c.queueDown = false
	c.mu.Unlock()
	if err != nil {
		c.violation("%s: %v", e, err)
		return
	}
	up := time.Now()
	c.recovered(f, "queue up again %v after the stop", up.Sub(f.at).Round(100*time.Millisecond))
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		c.measureQueue(f, up)
	}()
}

// measureQueue records when every running builder on PostgreSQL listens
// again after up, and when the queue's history next changes.
func (c *chaos) measureQueue(f *chaosFault, up time.Time) {
	var listening, changed time.Duration
	deadline := up.Add(2 * time.Minute)
	for time.Now().Before(deadline) && (listening == 0 || changed == 0) {
		if listening == 0 && c.allListening() {
			listening = time.Since(up)
		}
		if changed == 0 && c.historySince(up) {
			changed = time.Since(up)
		}
		if !c.pause(200 * time.Millisecond) {
			return
		}
	}
	say := func(d time.Duration) string {
		if d == 0 {
			return "not within 2m"
		}
		return d.Round(100 * time.Millisecond).String()
	}
	c.recovered(f, "builders on PostgreSQL listening again after %s; the queue's next change after %s", say(listening), say(changed))
}

// listeners are the roles with a LISTEN session, by the superuser.
func (c *chaos) listeners() (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.cluster.URL(c.db.Name, "postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT usename FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'", c.db.Name)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out, err
}

// allListening: every running, unfrozen builder on PostgreSQL listens.
func (c *chaos) allListening() bool {
	l, err := c.listeners()
	if err != nil {
		return false
	}
	for _, n := range c.nodes {
		n.mu.Lock()
		live := n.proc != nil && !n.proc.exited() && !n.frozen
		n.mu.Unlock()
		if n.via == "pg" && live && !l[n.name] {
			return false
		}
	}
	return true
}

// historySince reports a transaction of the queue at or after t.
func (c *chaos) historySince(t time.Time) bool {
	v, err := c.look()
	if err != nil {
		return false
	}
	for _, tr := range v.history {
		if tr.Time >= t.Unix() {
			return true
		}
	}
	return false
}

// killBuildd kills a builder's buildd with SIGKILL (its build dies with
// it) and starts it again after e.dur. A frozen builder is left alone.
func (c *chaos) killBuildd(e chaosEvent) {
	n := c.nodes[e.node]
	n.mu.Lock()
	if n.frozen || n.restarting {
		n.mu.Unlock()
		c.fault("%s: skipped, the builder is frozen or not yet started again", e)
		return
	}
	p := n.proc
	n.kills = append(n.kills, time.Now())
	n.restarting = true
	n.mu.Unlock()
	f := c.fault("%s (building: %s)", e, c.building(n.name))
	p.cmd.Process.Kill()
	p.done <- <-p.done // exited, its status left for the others
	time.Sleep(e.dur)
	n.start()
	n.mu.Lock()
	n.restarting = false
	n.restarts++
	n.mu.Unlock()
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		c.measureStart(f, n, time.Now())
	}()
}

// building names what the queue has Building by builder, for the record.
func (c *chaos) building(builder string) string {
	v, err := c.look()
	if err != nil {
		return "? (" + err.Error() + ")"
	}
	var out []string
	for _, r := range v.recs {
		if r.State == queue.Building && r.Builder == builder {
			out = append(out, r.Package)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, " ")
}

// measureStart records when a restarted builder runs its loop again (and
// listens, on PostgreSQL), started by the schedule or, when it could not
// start, by the watcher.
func (c *chaos) measureStart(f *chaosFault, n *chaosNode, started time.Time) {
	deadline := started.Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if n.up() {
			c.recovered(f, "%s up again %v after its start", n.name, time.Since(started).Round(100*time.Millisecond))
			return
		}
		if !c.pause(100 * time.Millisecond) {
			return
		}
	}
	c.recovered(f, "%s not up within 2m of its start", n.name)
}

// freeze stops with SIGSTOP the buildd of the builder e names, or of the
// next one in order that is building a package (the queue has it
// Building by the builder, and the builder's BUILDING journal holds it),
// never the sick builder (its builds fail at once: frozen, it would not
// fail the builds in a row that must put it in quarantine by the end),
// waits e.dur (past the lease; the build goes on) and resumes it; then it
// records what became of the package: its lease ended and another builder
// took it. The resumed builder must not report, mail, deliver or upload
// the build it no longer owns (checked at the end).
func (c *chaos) freeze(e chaosEvent) {
	var n *chaosNode
	var pkg string
	for deadline := time.Now().Add(time.Minute); n == nil && time.Now().Before(deadline); {
		v, err := c.look()
		for i := range c.nodes {
			cand := c.nodes[(e.node+i)%len(c.nodes)]
			if err != nil {
				break
			}
			if cand == c.nodes[sickNode] {
				continue
			}
			if p := cand.runningJob(v); p != "" {
				n, pkg = cand, p
				break
			}
		}
		if n == nil && !c.pause(200*time.Millisecond) {
			return
		}
	}
	if n == nil {
		c.fault("%s: skipped, no builder built anything for a minute", e)
		return
	}
	n.mu.Lock()
	p := n.proc
	n.frozen = true
	n.mu.Unlock()
	f := c.fault("SIGSTOP buildd of %s, building %s; SIGCONT after %v", n.name, pkg, e.dur)
	p.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(e.dur)
	p.cmd.Process.Signal(syscall.SIGCONT)
	n.mu.Lock()
	n.frozen = false
	n.mu.Unlock()
	resumed := time.Now()
	v, err := c.look()
	if err != nil {
		c.recovered(f, "resumed; the queue: %v", err)
		return
	}
	for _, tr := range v.history {
		if tr.Package == pkg && tr.Time >= f.at.Unix() {
			c.recovered(f, "%s at +%ds: %s", pkg, tr.Time-f.at.Unix(), tr.Line("bookworm"))
		}
	}
	c.recovered(f, "resumed after %v", resumed.Sub(f.at).Round(100*time.Millisecond))
}

// runningJob is a package n is building now: Building by n in the queue
// and in n's BUILDING journal; "" if none.
func (n *chaosNode) runningJob(v chaosView) string {
	n.mu.Lock()
	live := n.proc != nil && !n.proc.exited() && !n.restarting && !n.frozen
	n.mu.Unlock()
	if !live {
		return ""
	}
	es, _, err := home.New(n.env.home).Building().Read()
	if err != nil {
		return ""
	}
	for _, e := range es {
		name := strings.SplitN(e.PkgVersion, "_", 2)[0]
		if r := v.recs[name]; r != nil && r.State == queue.Building && r.Builder == n.name {
			return name
		}
	}
	return ""
}

// cutArmed arms the cut of the ssh builder's next call; the proxy reports
// the cut (cutDone).
func (c *chaos) cutArmed(e chaosEvent) {
	if err := c.proxy.arm(e.mode); err != nil {
		c.violation("%s: %v", e, err)
	}
	c.mu.Lock()
	c.cutsArmed = append(c.cutsArmed, time.Now())
	c.mu.Unlock()
}

// cutDone records a cut the proxy made.
func (c *chaos) cutDone(phase, call, what string) {
	c.mu.Lock()
	armed := time.Time{}
	if len(c.cutsArmed) > 0 {
		armed, c.cutsArmed = c.cutsArmed[0], c.cutsArmed[1:]
	}
	c.mu.Unlock()
	f := c.fault("ssh connection of the cut builder cut %s its change: wanna-build %s", phase, call)
	if !armed.IsZero() {
		c.recovered(f, "%s %v after it was armed", what, f.at.Sub(armed).Round(10*time.Millisecond))
	}
}

// fillHome fills the small home volume, frees it after e.dur, and records
// when the builder takes a package again.
func (c *chaos) fillHome(e chaosEvent) {
	n := c.nodes[e.node]
	filler := filepath.Join(n.env.home, fmt.Sprintf("chaos-filler-%d", e.at.Milliseconds()))
	f := c.fault("%s", e)
	if err := fill(filler); err != nil {
		c.violation("%s: %v", e, err)
	}
	time.Sleep(e.dur)
	if err := os.Remove(filler); err != nil {
		c.violation("%s: free: %v", e, err)
	}
	freed := time.Now()
	c.mu.Lock()
	c.fulls = append(c.fulls, fullness{n.name, f.at, freed})
	c.mu.Unlock()
	c.recovered(f, "freed after %v", freed.Sub(f.at).Round(100*time.Millisecond))
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		deadline := freed.Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if v, err := c.look(); err == nil {
				for _, tr := range v.history {
					if tr.User == n.name && tr.Action == "--take" && tr.Time >= freed.Unix() {
						c.recovered(f, "%s took %s %v after the volume was freed", n.name, tr.Package, time.Unix(tr.Time, 0).Sub(freed).Round(time.Second))
						return
					}
				}
			}
			if !c.pause(500 * time.Millisecond) {
				return
			}
		}
		c.recovered(f, "%s took nothing within 2m of the volume being freed", n.name)
	}()
}

// fill writes path until its volume is full: all its free blocks
// allocated, then zeros to the last byte.
func fill(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return fmt.Errorf("statfs %s: %w", filepath.Dir(path), err)
	}
	free := int64(st.Bavail) * st.Bsize
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("fill %s: %w", path, err)
	}
	defer fh.Close()
	for size := free; size > 0; size -= 1 << 20 {
		if unix.Fallocate(int(fh.Fd()), 0, 0, size) == nil {
			break
		}
	}
	if _, err := fh.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("fill %s: %w", path, err)
	}
	_, err = io.Copy(fh, zeros{})
	if !errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("fill %s: want ENOSPC, got %v", path, err)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// runKilled runs cmd; when kill is set, it is killed with SIGKILL that
// long after its start. It returns cmd's error and whether it was killed
// before it exited.
func runKilled(cmd *exec.Cmd, kill *time.Duration) (error, bool) {
	if err := cmd.Start(); err != nil {
		return err, false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if kill == nil {
		return <-done, false
	}
	select {
	case err := <-done:
		return err, false
	case <-time.After(*kill):
		cmd.Process.Kill()
		return <-done, true
	}
}

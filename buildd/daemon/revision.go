package daemon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/queue"
)

// The revision is part of every build: before a round takes packages of
// a dist for an architecture, the daemon reports the revisions of that
// [[dist]]'s machine to its queue (queue.Port.Revisions) and learns the revision the queue
// requires; while the machine's current revision is another one, the
// round takes nothing of that dist, from its queue or from REDO, and
// daemon.log says so once. A queue that cannot take the report (a queue
// host whose wanna-build is older than it) is logged once, and the
// daemon goes on as if nothing were required.

// ReportEvery is how often a dist's revisions are reported at most,
// unless its machine's current revision changed or the dist is held back
// (then every round: the round is what learns that it may take again).
const ReportEvery = time.Minute

// gate is what the last report of a dist for an architecture left; only
// the loop's goroutine (Round, MachineMoved) uses it.
type gate struct {
	reported time.Time // the last report, answered or not
	current  string    // the UUID of the machine's current revision it held, "" none
	required string    // the queue's answer: the UUID it requires, "" none or not known
	held     bool      // the round takes nothing of the dist
	said     string    // the line logged of the hold
	failed   string    // the line logged of a report that failed
}

// heldRevisions are a machine's revisions as a report holds them: those
// with a UUID and a name a report takes, the current one first, then the
// newest, each UUID once, at most queue.MaxHeldRevisions.
func heldRevisions(name string, revs []machine.Revision) []queue.HeldRevision {
	sorted := slices.Clone(revs)
	slices.SortStableFunc(sorted, func(a, b machine.Revision) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return b.Number - a.Number
	})
	var held []queue.HeldRevision
	seen := map[string]bool{}
	for _, r := range sorted {
		if !queue.ValidUUID(r.UUID) || !queue.ValidMachineName(r.Name) || seen[r.UUID] || len(held) == queue.MaxHeldRevisions {
			continue
		}
		seen[r.UUID] = true
		held = append(held, queue.HeldRevision{Machine: name, Revision: r.Name, UUID: r.UUID, Current: r.Current})
	}
	return held
}

// machineRevisions are the revisions of machine name on this host.
func (d *Daemon) machineRevisions(name string) ([]queue.HeldRevision, error) {
	d.mu.Lock()
	m := d.machines
	d.mu.Unlock()
	revs, err := m.Revisions(name)
	if err != nil {
		return nil, err
	}
	return heldRevisions(name, revs), nil
}

// mayTake reports whether the round may take packages of dist: unless
// its queue requires a revision that the dist's machine is not on. It
// reports the machine's revisions first when that is due.
func (d *Daemon) mayTake(ctx context.Context, c *config.Config, dist *config.Dist) bool {
	where := dist.Where()
	g := d.gates[where]
	if g == nil {
		g = &gate{}
		d.gates[where] = g
	}
	held, err := d.machineRevisions(dist.Machine)
	if err != nil {
		d.reportFailed(g, fmt.Sprintf("%s: cannot read the revisions of machine %s: %v -- not reporting them", where, dist.Machine, err))
	}
	cur, _ := queue.CurrentOf(held)
	if err == nil && (g.reported.IsZero() || time.Since(g.reported) >= ReportEvery || cur.UUID != g.current || g.held) {
		required, err := d.queue(c, dist).Revisions(ctx, held)
		g.reported, g.current = time.Now(), cur.UUID
		switch {
		case err != nil:
			g.required = ""
			d.reportFailed(g, fmt.Sprintf("%s: reporting the revisions of machine %s to the queue failed: %v -- going on without its required revision", where, dist.Machine, err))
		case g.failed != "":
			g.required, g.failed = required, ""
			d.log.Printf("%s: the revisions of machine %s are reported to the queue again", where, dist.Machine)
		default:
			g.required = required
		}
	}
	hold := g.required != "" && cur.UUID != g.required
	say := fmt.Sprintf("%s: machine %s has no current revision here, the queue requires UUID %s: taking nothing until it has it", where, dist.Machine, g.required)
	if cur.UUID != "" {
		say = fmt.Sprintf("%s: machine %s is on revision %s (UUID %s), the queue requires UUID %s: taking nothing until it has it",
			where, dist.Machine, cur.Revision, cur.UUID, g.required)
	}
	switch {
	case hold:
		if say != g.said {
			d.log.Printf("%s", say)
		}
	case g.held && g.required != "":
		d.log.Printf("%s: machine %s is on the required revision %s (UUID %s): taking packages again", where, dist.Machine, cur.Revision, cur.UUID)
	case g.held && g.failed == "": // else the failure said that it goes on
		d.log.Printf("%s: the queue requires no revision of machine %s now: taking packages again", where, dist.Machine)
	}
	g.held, g.said = hold, ""
	if hold {
		g.said = say
	}
	return !hold
}

// reportFailed logs why the report of g's dist failed, once until it
// fails otherwise or works again.
func (d *Daemon) reportFailed(g *gate, why string) {
	if why != g.failed {
		d.log.Printf("%s", why)
		g.failed = why
	}
}

// MachineMoved reports whether the machine of a dist held back is on
// another current revision than the one its last report held: a round
// then reports it, and may take again. The loop asks every CheckEvery.
func (d *Daemon) MachineMoved() bool {
	c := d.config()
	for i := range c.Dists {
		dist := &c.Dists[i]
		g := d.gates[dist.Where()]
		if g == nil || !g.held {
			continue
		}
		held, err := d.machineRevisions(dist.Machine)
		if err != nil {
			continue
		}
		if cur, _ := queue.CurrentOf(held); cur.UUID != g.current {
			return true
		}
	}
	return false
}

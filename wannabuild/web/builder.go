package web

import (
	"fmt"
	"time"

	"buildd/internal/queue"
)

// builderPage is "/builder/NAME": what the builder is building, in every
// queue, since when, when it was last heard from, its last heartbeat in
// each queue it reports in to (builders.go: idle or not, silent,
// quarantined), and the revisions of its build machines it reported,
// with the queues whose required revision its machine is not on (it
// takes nothing from them).
type builderPage struct {
	Builder       string         `json:"builder"`
	Since         string         `json:"building_since,omitempty"` // the oldest of its builds' start, queue.TimeFormat UTC
	SinceUnix     int64          `json:"building_since_unix,omitempty"`
	LastHeard     string         `json:"last_heard,omitempty"` // its newest change of the queue, lease renewal or heartbeat, queue.TimeFormat UTC
	LastHeardUnix int64          `json:"last_heard_unix,omitempty"`
	LastHeardAgo  string         `json:"last_heard_ago,omitempty"` // how long before now, e.g. "3 h 5 min"
	Building      []builderRow   `json:"building"`
	Queues        []builderState `json:"queues"` // its heartbeats, one per queue it reports in to
	Machines      []machineQueue `json:"machines"`
}

// machineQueue is what the builder reported of its machine for one queue,
// and what the queue requires.
type machineQueue struct {
	Dist        string        `json:"dist"`
	Arch        string        `json:"arch"`
	Required    string        `json:"required,omitempty"` // the UUID the queue requires
	Behind      bool          `json:"behind"`             // its current revision is not the required one: it takes nothing from the queue
	Current     string        `json:"current,omitempty"`  // its current revision's name and UUID, "" when none was reported current
	CurrentUUID string        `json:"current_uuid,omitempty"`
	Revisions   []revisionRow `json:"revisions"`
}

// revisionRow is one reported revision.
type revisionRow struct {
	Machine      string `json:"machine"`
	Revision     string `json:"revision"`
	UUID         string `json:"uuid"`
	Current      bool   `json:"current"`
	Reported     string `json:"reported"` // queue.TimeFormat UTC
	ReportedUnix int64  `json:"reported_unix"`
	ReportedAgo  string `json:"reported_ago"`
}

// builderRow is one package the builder has taken.
type builderRow struct {
	Dist       string `json:"dist"`
	Arch       string `json:"arch"`
	Package    string `json:"package"`
	Version    string `json:"version"`
	Since      string `json:"since,omitempty"`
	SinceUnix  int64  `json:"since_unix,omitempty"`
	Lease      string `json:"lease_until,omitempty"` // when its lease ends, if it has one
	LeaseUnix  int64  `json:"lease_until_unix,omitempty"`
	LeaseEnded bool   `json:"lease_ended,omitempty"`
}

func builderData(q *request) (any, error) {
	name := q.r.PathValue("name")
	if err := checkBuilder(name); err != nil {
		return nil, err
	}
	p := &builderPage{Builder: name, Building: []builderRow{}}
	var heard int64 // its newest lease renewal or heartbeat
	rn := renewals{}
	err := eachQueue(q.db, func(pr queue.Pair, tx queue.Tx) error {
		return tx.ForEachInState(queue.Building, func(r *queue.Record) error {
			if r.Builder != name {
				return nil
			}
			row := builderRow{Dist: pr.Dist, Arch: pr.Arch, Package: text(r.Package), Version: text(r.FullVersion())}
			if r.StateChange != 0 {
				row.Since, row.SinceUnix = r.StateChangeTime().Format(queue.TimeFormat), r.StateChange
			}
			heard = max(heard, r.LeaseRenewed)
			rn.add(pr, r)
			if r.LeaseUntil != 0 {
				row.Lease = time.Unix(r.LeaseUntil, 0).UTC().Format(queue.TimeFormat)
				row.LeaseUnix, row.LeaseEnded = r.LeaseUntil, r.LeaseUntil <= q.now.Unix()
			}
			p.Building = append(p.Building, row)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, row := range p.Building {
		if row.SinceUnix != 0 && (p.SinceUnix == 0 || row.SinceUnix < p.SinceUnix) {
			p.Since, p.SinceUnix = row.Since, row.SinceUnix
		}
	}
	if p.Queues, err = builderStates(q.db, name, rn, q.now); err != nil {
		return nil, err
	}
	for _, st := range p.Queues {
		heard = max(heard, st.LastHeardUnix)
	}
	if p.Machines, err = machineQueues(q, name); err != nil {
		return nil, err
	}
	digests, err := q.s.digests(q.db)
	if err != nil {
		return nil, err
	}
	if t := max(lastHeard(digests, name), heard); t != 0 {
		p.LastHeard, p.LastHeardUnix = time.Unix(t, 0).UTC().Format(queue.TimeFormat), t
		p.LastHeardAgo = ago(q.now.Unix() - t)
	}
	return p, nil
}

// machineQueues are the revisions name reported, by queue, with what
// each queue requires.
func machineQueues(q *request, name string) ([]machineQueue, error) {
	reports, err := q.db.Revisions(name, queue.Pair{})
	if err != nil {
		return nil, err
	}
	required, err := q.db.RequiredRevisions()
	if err != nil {
		return nil, err
	}
	out := []machineQueue{}
	for _, r := range reports {
		if n := len(out); n == 0 || out[n-1].Dist != r.Dist || out[n-1].Arch != r.Arch {
			mq := machineQueue{Dist: text(r.Dist), Arch: text(r.Arch)}
			for _, req := range required {
				if req.Pair == r.Pair {
					mq.Required = text(req.UUID)
				}
			}
			out = append(out, mq)
		}
		mq := &out[len(out)-1]
		mq.Revisions = append(mq.Revisions, revisionRow{Machine: text(r.Machine), Revision: text(r.Revision), UUID: text(r.UUID), Current: r.Current,
			Reported: time.Unix(r.Reported, 0).UTC().Format(queue.TimeFormat), ReportedUnix: r.Reported, ReportedAgo: ago(q.now.Unix() - r.Reported)})
		if r.Current {
			mq.Current, mq.CurrentUUID = text(r.Revision), text(r.UUID)
		}
	}
	for i := range out {
		out[i].Behind = out[i].Required != "" && out[i].CurrentUUID != out[i].Required
	}
	return out, nil
}

// ago is a duration in seconds as a person reads it: "45 s", "3 min",
// "2 h 5 min", "3 d 4 h"; a time in the future is "0 s".
func ago(secs int64) string {
	secs = max(secs, 0)
	switch {
	case secs < 60:
		return fmt.Sprintf("%d s", secs)
	case secs < 3600:
		return fmt.Sprintf("%d min", secs/60)
	case secs < 86400:
		return fmt.Sprintf("%d h %d min", secs/3600, secs%3600/60)
	}
	return fmt.Sprintf("%d d %d h", secs/86400, secs%86400/3600)
}

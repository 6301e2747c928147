package web

import (
	"time"

	"buildd/internal/queue"
)

// builderPage is "/builder/NAME": what the builder is building, in every
// queue.
type builderPage struct {
	Builder  string       `json:"builder"`
	Building []builderRow `json:"building"`
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
	err := eachQueue(q.db, func(pr queue.Pair, tx queue.Tx) error {
		return tx.ForEachInState(queue.Building, func(r *queue.Record) error {
			if r.Builder != name {
				return nil
			}
			row := builderRow{Dist: pr.Dist, Arch: pr.Arch, Package: text(r.Package), Version: text(r.FullVersion())}
			if r.StateChange != 0 {
				row.Since, row.SinceUnix = r.StateChangeTime().Format(queue.TimeFormat), r.StateChange
			}
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
	return p, nil
}

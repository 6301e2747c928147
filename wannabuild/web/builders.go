package web

import (
	"fmt"
	"time"

	"buildd/internal/queue"
)

// Every builder reports in to each queue it builds for each round, idle
// or not (queue.BuilderStatus): the status web lists them all, with when
// each was last heard (its heartbeat or a renewal of one of its leases
// in that queue, whichever is later), marking those unheard for longer
// than queue.SilentAfter (silent) and those that put themselves in
// quarantine. A builder is live in a queue when it is neither.

// builderState is a builder's last heartbeat in one queue, as the pages
// show it.
type builderState struct {
	Builder              string `json:"builder"`
	Dist                 string `json:"dist"`
	Arch                 string `json:"arch"`
	Slots                int    `json:"slots"`
	SlotMemory           int64  `json:"slot_memory_kib"` // 0: no limit
	Running              int    `json:"running"`
	LastHeard            string `json:"last_heard"` // queue.TimeFormat UTC
	LastHeardUnix        int64  `json:"last_heard_unix"`
	LastHeardAgo         string `json:"last_heard_ago"`
	Silent               bool   `json:"silent"`                // unheard for longer than queue.SilentAfter
	Quarantined          string `json:"quarantined,omitempty"` // why, "" when it takes packages
	QuarantinedSince     string `json:"quarantined_since,omitempty"`
	QuarantinedSinceUnix int64  `json:"quarantined_since_unix,omitempty"`
}

// stateOf is st as the pages show it at now, last heard at its
// heartbeat or at renewed (its newest lease renewal in st's queue),
// whichever is later.
func stateOf(st queue.BuilderStatus, renewed int64, now time.Time) builderState {
	heard := max(st.Heard, renewed)
	b := builderState{
		Builder: text(st.Builder), Dist: text(st.Dist), Arch: text(st.Arch),
		Slots: st.Slots, SlotMemory: st.SlotMemory, Running: st.Running,
		LastHeard: time.Unix(heard, 0).UTC().Format(queue.TimeFormat), LastHeardUnix: heard,
		LastHeardAgo: ago(now.Unix() - heard),
		Silent:       now.Sub(time.Unix(heard, 0)) > queue.SilentAfter,
	}
	if st.Quarantined != "" {
		b.Quarantined = text(st.Quarantined)
		b.QuarantinedSince, b.QuarantinedSinceUnix = time.Unix(st.QuarantinedSince, 0).UTC().Format(queue.TimeFormat), st.QuarantinedSince
	}
	return b
}

// live reports whether the builder takes packages of its queue: heard
// from lately and not quarantined.
func (b *builderState) live() bool { return !b.Silent && b.Quarantined == "" }

// State is what the builder does, in a few words: "taking packages",
// "silent" or "quarantined since T".
func (b *builderState) State() string {
	switch {
	case b.Quarantined != "" && b.Silent:
		return "quarantined since " + b.QuarantinedSince + ", and silent"
	case b.Quarantined != "":
		return "quarantined since " + b.QuarantinedSince
	case b.Silent:
		return "silent"
	}
	return "taking packages"
}

// SlotMemoryText is the memory of each slot as a person reads it.
func (b *builderState) SlotMemoryText() string {
	if b.SlotMemory == 0 {
		return "no limit"
	}
	return size(b.SlotMemory)
}

// renewals are the newest lease renewal of each builder in each queue,
// from its Building packages.
type renewals map[queue.Pair]map[string]int64

func (rn renewals) add(pr queue.Pair, r *queue.Record) {
	if r.Builder == "" || r.LeaseRenewed == 0 {
		return
	}
	m := rn[pr]
	if m == nil {
		m = map[string]int64{}
		rn[pr] = m
	}
	m[r.Builder] = max(m[r.Builder], r.LeaseRenewed)
}

// builderStates are the heartbeats of every queue of db (name: one
// builder's; "" every builder's), in the store's order, with their
// renewals.
func builderStates(db queue.Store, name string, rn renewals, now time.Time) ([]builderState, error) {
	sts, err := db.Builders(queue.Pair{})
	if err != nil {
		return nil, err
	}
	out := []builderState{}
	for _, st := range sts {
		if name == "" || st.Builder == name {
			out = append(out, stateOf(st, rn[st.Pair][st.Builder], now))
		}
	}
	return out, nil
}

// readRenewals reads the renewals of every queue of db.
func readRenewals(db queue.Store) (renewals, error) {
	rn := renewals{}
	err := eachQueue(db, func(pr queue.Pair, tx queue.Tx) error {
		return tx.ForEachInState(queue.Building, func(r *queue.Record) error {
			rn.add(pr, r)
			return nil
		})
	})
	return rn, err
}

// buildersPage is "/builders": every builder's last heartbeat in each
// queue.
type buildersPage struct {
	Builders    []builderState `json:"builders"`
	Silent      int            `json:"silent"`      // of Builders
	Quarantined int            `json:"quarantined"` // of Builders
}

// SilentAfter is queue.SilentAfter as the page says it.
func (p *buildersPage) SilentAfter() string { return ago(int64(queue.SilentAfter / time.Second)) }

func buildersData(q *request) (any, error) {
	rn, err := readRenewals(q.db)
	if err != nil {
		return nil, err
	}
	p := &buildersPage{}
	if p.Builders, err = builderStates(q.db, "", rn, q.now); err != nil {
		return nil, err
	}
	for _, b := range p.Builders {
		if b.Silent {
			p.Silent++
		}
		if b.Quarantined != "" {
			p.Quarantined++
		}
	}
	return p, nil
}

// size is kib KiB as a person reads it: "900 KiB", "512 MiB", "3.5 GiB".
func size(kib int64) string {
	switch {
	case kib < 1<<10:
		return fmt.Sprintf("%d KiB", kib)
	case kib < 1<<20:
		return fmt.Sprintf("%d MiB", kib>>10)
	}
	return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
}

package web

import (
	"sort"
	"strings"
	"time"

	"buildd/internal/queue"
)

// pairCounts is one (distribution, architecture) with its number of
// packages by state, and its depth over the last weeks.
type pairCounts struct {
	Dist   string              `json:"dist"`
	Arch   string              `json:"arch"`
	Counts map[queue.State]int `json:"counts"`
	Total  int                 `json:"total"`
	Depth  []depthPoint        `json:"depth"` // Needs-Build at the end of each of the last days, oldest first
	Graph  graph               `json:"-"`
}

// builderCount is a builder (one building or reporting in, idle or
// not), how many packages it is building, when it was last heard from,
// and what its heartbeats say (builders.go).
type builderCount struct {
	Builder       string   `json:"builder"`
	Building      int      `json:"building"`
	LastHeard     string   `json:"last_heard,omitempty"` // queue.TimeFormat UTC
	LastHeardUnix int64    `json:"last_heard_unix,omitempty"`
	ReportsIn     bool     `json:"reports_in"`               // it sent heartbeats
	Slots         int      `json:"slots"`                    // over every queue it reports in to
	Silent        bool     `json:"silent,omitempty"`         // every heartbeat of it is silent
	QuarantinedIn []string `json:"quarantined_in,omitempty"` // the queues (DIST/ARCH) it is quarantined in
}

// State is the builder's state in a few words.
func (b *builderCount) State() string {
	switch {
	case !b.ReportsIn:
		return "never reported in"
	case len(b.QuarantinedIn) > 0:
		return "quarantined in " + strings.Join(b.QuarantinedIn, ", ")
	case b.Silent:
		return "silent"
	}
	return "taking packages"
}

// overviewPage is "/": every queue's counts by state and depth, and the
// builders.
type overviewPage struct {
	States   []queue.State  `json:"states"` // the states that occur, in the classic order
	Pairs    []pairCounts   `json:"pairs"`
	Builders []builderCount `json:"builders"`

	heard  map[string]int64 // every builder's last heard, for the metrics
	states []builderState   // every heartbeat, for the metrics
}

func overviewData(q *request) (any, error) {
	p, _, err := overview(q.s, q.db, q.now)
	return p, err
}

// overview counts the packages of every queue of db by state, lists the
// builders (those building and those reporting in), and reads the
// digests of their history, which it returns too.
func overview(s *Server, db queue.Store, now time.Time) (*overviewPage, map[queue.Pair]*queue.Digest, error) {
	p := &overviewPage{Pairs: []pairCounts{}, Builders: []builderCount{}}
	counts, err := allCounts(db)
	if err != nil {
		return nil, nil, err
	}
	digests, err := s.digests(db)
	if err != nil {
		return nil, nil, err
	}
	seen := map[queue.State]bool{}
	building := map[string]int{}
	rn := renewals{}
	p.heard = map[string]int64{}
	for _, d := range digests {
		for u, h := range d.Heard {
			if h.Builder {
				p.heard[u] = max(p.heard[u], h.Last)
			}
		}
	}
	err = eachQueue(db, func(pr queue.Pair, tx queue.Tx) error {
		c := pairCounts{Dist: pr.Dist, Arch: pr.Arch, Counts: map[queue.State]int{}}
		for st, n := range counts[pr] {
			if n > 0 {
				c.Counts[st], seen[st] = n, true
				c.Total += n
			}
		}
		c.Depth = depthOf(c.Counts[queue.NeedsBuild], digests[pr], now)
		c.Graph = graphOf(pr.Dist+"/"+pr.Arch, c.Depth)
		p.Pairs = append(p.Pairs, c)
		return tx.ForEachInState(queue.Building, func(r *queue.Record) error {
			if r.Builder != "" {
				building[r.Builder]++
				p.heard[r.Builder] = max(p.heard[r.Builder], r.LeaseRenewed)
				rn.add(pr, r)
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	p.States = orderStates(seen)
	if p.states, err = builderStates(db, "", rn, now); err != nil {
		return nil, nil, err
	}
	builders := map[string]*builderCount{}
	count := func(name string) *builderCount {
		if builders[name] == nil {
			builders[name] = &builderCount{Builder: text(name), Silent: true}
		}
		return builders[name]
	}
	for b, n := range building {
		count(b).Building = n
	}
	for i := range p.states {
		st := &p.states[i]
		c := count(st.Builder)
		c.ReportsIn, c.Slots, c.Silent = true, c.Slots+st.Slots, c.Silent && st.Silent
		if st.Quarantined != "" {
			c.QuarantinedIn = append(c.QuarantinedIn, st.Dist+"/"+st.Arch)
		}
		p.heard[st.Builder] = max(p.heard[st.Builder], st.LastHeardUnix)
	}
	for name, c := range builders {
		c.Silent = c.Silent && c.ReportsIn
		if t := p.heard[name]; t != 0 {
			c.LastHeard, c.LastHeardUnix = time.Unix(t, 0).UTC().Format(queue.TimeFormat), t
		}
		p.Builders = append(p.Builders, *c)
	}
	sort.Slice(p.Builders, func(i, j int) bool { return p.Builders[i].Builder < p.Builders[j].Builder })
	return p, digests, nil
}

// allCounts counts the packages of every queue of db by state: in one
// go when the store can, else one state at a time.
func allCounts(db queue.Store) (map[queue.Pair]map[queue.State]int, error) {
	if c, ok := db.(queue.StateCounter); ok {
		return c.CountStates("", "")
	}
	out := map[queue.Pair]map[queue.State]int{}
	err := eachQueue(db, func(pr queue.Pair, tx queue.Tx) error {
		m := map[queue.State]int{}
		for _, st := range queue.States {
			n, err := tx.Count(st)
			if err != nil {
				return err
			}
			m[st] = n
		}
		out[pr] = m
		return nil
	})
	return out, err
}

// lastHeard is the newest transaction of user in any queue; 0 if none.
// A builder renewing leases is heard from too: see the records.
func lastHeard(digests map[queue.Pair]*queue.Digest, user string) int64 {
	var t int64
	for _, d := range digests {
		if h := d.Heard[user]; h != nil {
			t = max(t, h.Last)
		}
	}
	return t
}

// orderStates lists the states of seen: the classic ones in their order,
// then any other sorted.
func orderStates(seen map[queue.State]bool) []queue.State {
	out := []queue.State{}
	known := map[queue.State]bool{}
	for _, st := range queue.States {
		known[st] = true
		if seen[st] {
			out = append(out, st)
		}
	}
	var other []queue.State
	for st := range seen {
		if !known[st] {
			other = append(other, st)
		}
	}
	sort.Slice(other, func(i, j int) bool { return other[i] < other[j] })
	return append(out, other...)
}

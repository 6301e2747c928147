package web

import (
	"sort"

	"buildd/internal/queue"
)

// distPage is "/dist/DIST/ARCH[?state=STATE][&sort=KEY]": one queue's
// packages, as --list shows them, with its counts by state.
type distPage struct {
	Dist   string              `json:"dist"`
	Arch   string              `json:"arch"`
	State  string              `json:"state,omitempty"` // the filter; "" is all
	Sort   string              `json:"sort"`
	States []queue.State       `json:"states"` // those that occur, in the classic order
	Counts map[queue.State]int `json:"counts"`
	Total  int                 `json:"total"`
	Rows   []distRow           `json:"packages"`
}

// distRow is one package of the list.
type distRow struct {
	Package   string `json:"package"`
	Version   string `json:"version"`
	State     string `json:"state"`
	Builder   string `json:"builder,omitempty"`
	Since     string `json:"since,omitempty"`
	SinceUnix int64  `json:"since_unix,omitempty"`
	Section   string `json:"section,omitempty"`
	Priority  string `json:"priority,omitempty"`
	Notes     string `json:"notes,omitempty"`
	CalPrio   int    `json:"calprio"`
	Days      int    `json:"days"`
	Why       string `json:"why"`
}

// sortKeys are the orders of ?sort=; prio is --list's.
var sortKeys = map[string]func(a, b *queue.Prioritized) bool{
	"name": func(a, b *queue.Prioritized) bool { return a.Package < b.Package },
	"state": func(a, b *queue.Prioritized) bool {
		if ia, ib := stateIndex(a.State), stateIndex(b.State); ia != ib {
			return ia < ib
		}
		return a.Package < b.Package
	},
	"since": func(a, b *queue.Prioritized) bool {
		if a.StateChange != b.StateChange {
			return a.StateChange < b.StateChange
		}
		return a.Package < b.Package
	},
	"prio": nil, // queue.SortForBuild's order
}

// SortOrders are the values of ?sort=, for the page's links.
func (p *distPage) SortOrders() []string { return []string{"name", "state", "since", "prio"} }

func stateIndex(st queue.State) int {
	for i, s := range queue.States {
		if s == st {
			return i
		}
	}
	return len(queue.States)
}

func distData(q *request) (any, error) {
	dist, arch := q.r.PathValue("dist"), q.r.PathValue("arch")
	if err := checkLabel("distribution", dist); err != nil {
		return nil, err
	}
	if err := checkLabel("architecture", arch); err != nil {
		return nil, err
	}
	p := &distPage{Dist: dist, Arch: arch, Sort: q.r.URL.Query().Get("sort"), Counts: map[queue.State]int{}, Rows: []distRow{}}
	if p.Sort == "" {
		p.Sort = "prio"
	}
	less, ok := sortKeys[p.Sort]
	if !ok {
		return nil, badRequest("invalid sort %s: want name, state, since or prio", quote(p.Sort))
	}
	var filter queue.State
	if v := q.r.URL.Query().Get("state"); v != "" {
		if filter, ok = queue.ParseState(v); !ok {
			return nil, badRequest("invalid state %s", quote(v))
		}
		p.State = string(filter)
	}
	if known, err := hasPair(q.db, dist, arch); err != nil {
		return nil, err
	} else if !known {
		return nil, notFound("no queue %s/%s", dist, arch)
	}
	var recs []*queue.Record
	if err := q.db.View(dist, arch, func(tx queue.Tx) error {
		return tx.ForEach(func(r *queue.Record) error {
			p.Counts[r.State]++
			p.Total++
			if filter == "" || r.State == filter {
				recs = append(recs, r)
			}
			return nil
		})
	}); err != nil {
		return nil, err
	}
	seen := map[queue.State]bool{}
	for st := range p.Counts {
		seen[st] = true
	}
	p.States = orderStates(seen)
	sorted := queue.SortForBuild(recs, q.now)
	// A Needs-Build package's place in the build order, before re-sorting.
	ahead := make(map[string]int)
	for _, r := range sorted {
		if r.State == queue.NeedsBuild {
			ahead[r.Package] = len(ahead)
		}
	}
	if less != nil {
		sort.SliceStable(sorted, func(i, j int) bool { return less(&sorted[i], &sorted[j]) })
	}
	for _, r := range sorted {
		n, found := ahead[r.Package]
		if !found {
			n = -1
		}
		row := distRow{
			Package: text(r.Package), Version: text(r.FullVersion()), State: text(string(r.State)),
			Builder: text(r.Builder), Section: text(r.Section), Priority: text(r.Priority), Notes: text(r.Notes),
			CalPrio: r.CalPrio, Days: r.Days, Why: why(r.Record, n),
		}
		if r.StateChange != 0 {
			row.Since, row.SinceUnix = r.StateChangeTime().Format(queue.TimeFormat), r.StateChange
		}
		p.Rows = append(p.Rows, row)
	}
	return p, nil
}

// hasPair reports whether the store holds the queue dist/arch.
func hasPair(db queue.Store, dist, arch string) (bool, error) {
	pairs, err := db.Pairs()
	for _, p := range pairs {
		if p.Dist == dist && p.Arch == arch {
			return true, nil
		}
	}
	return false, err
}

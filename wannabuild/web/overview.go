package web

import (
	"sort"

	"buildd/internal/queue"
)

// pairCounts is one (distribution, architecture) with its number of
// packages by state.
type pairCounts struct {
	Dist   string              `json:"dist"`
	Arch   string              `json:"arch"`
	Counts map[queue.State]int `json:"counts"`
	Total  int                 `json:"total"`
}

// builderCount is a builder and how many packages it is building.
type builderCount struct {
	Builder  string `json:"builder"`
	Building int    `json:"building"`
}

// overviewPage is "/": every queue's counts by state, and the builders.
type overviewPage struct {
	States   []queue.State  `json:"states"` // the states that occur, in the classic order
	Pairs    []pairCounts   `json:"pairs"`
	Builders []builderCount `json:"builders"`
}

func overviewData(q *request) (any, error) { return overview(q.db) }

// overview counts the packages of every queue of db by state.
func overview(db queue.Store) (*overviewPage, error) {
	p := &overviewPage{Pairs: []pairCounts{}, Builders: []builderCount{}}
	seen := map[queue.State]bool{}
	building := map[string]int{}
	err := eachQueue(db, func(pr queue.Pair, tx queue.Tx) error {
		c := pairCounts{Dist: pr.Dist, Arch: pr.Arch, Counts: map[queue.State]int{}}
		for _, st := range queue.States {
			n, err := tx.Count(st)
			if err != nil {
				return err
			}
			if n > 0 {
				c.Counts[st], seen[st] = n, true
				c.Total += n
			}
		}
		p.Pairs = append(p.Pairs, c)
		return tx.ForEachInState(queue.Building, func(r *queue.Record) error {
			if r.Builder != "" {
				building[r.Builder]++
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	p.States = orderStates(seen)
	for b, n := range building {
		p.Builders = append(p.Builders, builderCount{b, n})
	}
	sort.Slice(p.Builders, func(i, j int) bool { return p.Builders[i].Builder < p.Builders[j].Builder })
	return p, nil
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

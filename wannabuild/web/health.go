package web

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"buildd/internal/queue"
)

// queueHealth is what the status web tells of one queue's builders and
// Needs-Build packages: who builds for it (live or not), which names are
// its builders', its kept builds by class, and for each Needs-Build
// package why it is not taken yet and when it may start (estimate.go).
// It is read in one go (readHealth: the heartbeats, the revision
// reports, the Building and Needs-Build records and every kept build,
// once) and kept while the queue does not change, at most cacheTTL
// (Server.health), so a page or /metrics costs a lookup per package.
type queueHealth struct {
	pair       queue.Pair
	now        time.Time           // when it was read
	builders   []builderState      // the queue's heartbeats, by builder
	known      map[string]bool     // the queue's builders: those that reported in or reported revisions
	classes    map[queue.Class]int // its kept builds by class
	slots      int                 // the live builders' slots
	lastHeard  int64               // the newest last heard of a builder not quarantined, 0 when none
	pending    map[string]*pending // its Needs-Build packages
	liveMemory []int64             // each live builder's slot memory (KiB; 0 no limit)
}

// pending is a Needs-Build package of the queue.
type pending struct {
	ahead        int           // Needs-Build packages before it in the build order
	waiting      string        // why it may not be taken (queue.Waiting), "" when it may
	memory       int64         // KiB it is expected to need (queue.NeedsMemory), 0 unknown
	fits         bool          // it fits a live builder's slot (queue.Fits); true when none is live
	duration     time.Duration // expected
	durationFrom string        // fromLast, fromMedian or fromDefault
	start        int64         // estimated start, unix seconds; 0 when none
}

// maxNamed is the most builders a "why" sentence names.
const maxNamed = 5

// health is the health of the queue pr of db at now: kept while db's
// mark stays, at most cacheTTL.
func (s *Server) health(db queue.Store, pr queue.Pair, now time.Time) (*queueHealth, error) {
	v, err := cachedIn(&s.healthCache, db, pr.Dist+"/"+pr.Arch, func() (any, error) { return readHealth(db, pr, now, s.queue().Shared()) })
	if err != nil {
		return nil, fmt.Errorf("health of %s/%s: %w", pr.Dist, pr.Arch, err)
	}
	return v.(*queueHealth), nil
}

// readHealth reads the health of the queue pr of db at now (shared: see
// newHealth).
func readHealth(db queue.Store, pr queue.Pair, now time.Time, shared bool) (*queueHealth, error) {
	sts, err := db.Builders(pr)
	if err != nil {
		return nil, err
	}
	reports, err := db.Revisions("", pr)
	if err != nil {
		return nil, err
	}
	reporters := make([]string, len(reports))
	for i, r := range reports {
		reporters[i] = r.Builder
	}
	var building, needs []*queue.Record
	var seen *buildsSeen
	err = db.View(pr.Dist, pr.Arch, func(tx queue.Tx) error {
		building, needs = nil, nil
		keep := func(list *[]*queue.Record) func(*queue.Record) error {
			return func(r *queue.Record) error {
				*list = append(*list, r)
				return nil
			}
		}
		if err := tx.ForEachInState(queue.Building, keep(&building)); err != nil {
			return err
		}
		if err := tx.ForEachInState(queue.NeedsBuild, keep(&needs)); err != nil {
			return err
		}
		wanted := make(map[string]bool, len(needs))
		for _, r := range needs {
			wanted[r.Package] = true
		}
		seen = newBuildsSeen(wanted)
		return tx.Builds("", seen.add)
	})
	if err != nil {
		return nil, err
	}
	return newHealth(pr, now, shared, sts, reporters, building, needs, seen), nil
}

// newHealth makes the health of the queue pr at now from what was read:
// its heartbeats, the builders that reported revisions, its Building
// and Needs-Build packages, and its kept builds; shared: the queue is
// shared by the hosts of a network, whose builders each take packages
// in an order of their own (queue.BuilderOrder).
func newHealth(pr queue.Pair, now time.Time, shared bool, sts []queue.BuilderStatus, reporters []string, building, needs []*queue.Record, seen *buildsSeen) *queueHealth {
	h := &queueHealth{pair: pr, now: now, known: map[string]bool{}, classes: seen.classes, pending: make(map[string]*pending, len(needs))}
	durations := seen.durations()
	rn := renewals{}
	for _, r := range building {
		rn.add(pr, r)
	}
	live := map[string]bool{}
	for _, st := range sts {
		b := stateOf(st, rn[pr][st.Builder], now)
		h.builders = append(h.builders, b)
		h.known[st.Builder] = true
		if b.Quarantined == "" {
			h.lastHeard = max(h.lastHeard, b.LastHeardUnix)
		}
		if b.live() {
			live[st.Builder] = true
			h.slots += b.Slots
			h.liveMemory = append(h.liveMemory, b.SlotMemory)
		}
	}
	for _, b := range reporters {
		h.known[b] = true
	}
	sorted := queue.SortForBuild(needs, now)
	var jobs []job
	var order []*pending
	var eligible []queue.Prioritized
	for i, p := range sorted {
		builds := seen.of[p.Package]
		pd := &pending{ahead: i, waiting: queue.Waiting(builds, now), memory: queue.NeedsMemory(builds), fits: len(h.liveMemory) == 0}
		for _, m := range h.liveMemory {
			if queue.Fits(builds, m) {
				pd.fits = true
				break
			}
		}
		pd.duration, pd.durationFrom = durations.expected(p.Package)
		h.pending[p.Package] = pd
		if pd.waiting == "" && pd.fits && len(jobs) < maxScheduled {
			jobs, order = append(jobs, job{pd.duration, pd.memory}), append(order, pd)
			eligible = append(eligible, p)
		}
	}
	if len(live) == 0 {
		return h
	}
	var farm []farmBuilder
	for _, b := range h.builders {
		if live[b.Builder] {
			farm = append(farm, farmBuilder{name: b.Builder, slots: b.Slots, memory: b.SlotMemory})
		}
	}
	for _, r := range building {
		for i := range farm {
			if farm[i].name == r.Builder {
				d, _ := durations.expected(r.Package)
				farm[i].running = append(farm[i].running, remaining(d, now.Sub(r.StateChangeTime())))
			}
		}
	}
	index := make(map[string]int, len(eligible))
	plain := make([]int, len(eligible))
	for i, p := range eligible {
		index[p.Package], plain[i] = i, i
	}
	byBuilder := func(b int) []int {
		if !shared {
			return plain
		}
		own := queue.BuilderOrder(slices.Clone(eligible), farm[b].name)
		idx := make([]int, len(own))
		for i, p := range own {
			idx[i] = index[p.Package]
		}
		return idx
	}
	for i, at := range schedule(farm, jobs, byBuilder) {
		if at >= 0 {
			order[i].start = now.Add(at).Unix()
		}
	}
	return h
}

// admin reports whether name, a record's or a kept build's builder, is
// no builder of the queue but the admin: the name neither reported in
// nor reported revisions there (the admin's --failed, --dep-wait or
// --retry records the admin's login). False when h is nil (not read).
func (h *queueHealth) admin(name string) bool {
	return h != nil && name != "" && !h.known[name]
}

// byAdmin reports whether r's builder is the admin (admin). A package
// being built is its builder's, whoever took it.
func (h *queueHealth) byAdmin(r *queue.Record) bool {
	return r.State != queue.Building && h.admin(r.Builder)
}

// pendingOf is r as a Needs-Build package of the queue; nil when it is
// not one, or h is nil or does not know it.
func (h *queueHealth) pendingOf(r *queue.Record) *pending {
	if h == nil || r.State != queue.NeedsBuild {
		return nil
	}
	return h.pending[r.Package]
}

// why answers "why isn't it building?" for r, a package of the queue:
// for a Needs-Build one, the first of: it waits after its give-backs
// (held for the admin, or in backoff); no live builder (none ever
// reported in, every one quarantined, or none heard lately); it fits no
// live builder's slot; else its place in the build order and its
// estimated start. Another state's answer is why's; so is a Needs-Build
// package's when h is nil or does not know it (ahead is its place then).
func (h *queueHealth) why(r *queue.Record, ahead int) string {
	p := h.pendingOf(r)
	if p == nil {
		return why(r, ahead)
	}
	if p.waiting != "" {
		return clip(visible(p.waiting), 2*maxLine)
	}
	if s := h.noLiveBuilder(); s != "" {
		return s
	}
	if !p.fits {
		largest := int64(0)
		for _, m := range h.liveMemory {
			largest = max(largest, m)
		}
		return "too big for every live builder of " + h.name() + ": it needs " + size(p.memory) + ", the largest slot has " + size(largest)
	}
	place := strconv.Itoa(p.ahead) + " in the queue before it"
	if p.start == 0 {
		// The live builders report no slots, or it is past the
		// packages the schedule places (maxScheduled).
		return "waiting for a builder (" + place + "; no estimate)"
	}
	return "waiting for a builder (" + place + "; estimated start " + time.Unix(p.start, 0).UTC().Format(queue.TimeFormat) + " UTC)"
}

// noLiveBuilder says why no builder takes the queue's packages: none
// ever reported in, every one is quarantined (naming them), or none was
// heard lately (since when); "" when one is live.
func (h *queueHealth) noLiveBuilder() string {
	var quarantined []string
	for i := range h.builders {
		b := &h.builders[i]
		if b.live() {
			return ""
		}
		if b.Quarantined != "" {
			quarantined = append(quarantined, b.Builder+" since "+b.QuarantinedSince+": "+firstLine(b.Quarantined))
		}
	}
	switch {
	case len(h.builders) == 0:
		return "no builder of " + h.name() + " ever reported in"
	case len(quarantined) == len(h.builders):
		return "every builder of " + h.name() + " is quarantined: " + named(quarantined)
	}
	s := "no live builder of " + h.name() + " since " + time.Unix(h.lastHeard, 0).UTC().Format(queue.TimeFormat) + " UTC (the last heard, " +
		ago(h.now.Unix()-h.lastHeard) + " ago)"
	if len(quarantined) > 0 {
		s += "; quarantined: " + named(quarantined)
	}
	return s
}

// name is the queue's name as a sentence says it.
func (h *queueHealth) name() string { return visible(h.pair.Dist) + "/" + visible(h.pair.Arch) }

// named joins the first maxNamed of list, and says how many more there
// are.
func named(list []string) string {
	if len(list) <= maxNamed {
		return strings.Join(list, "; ")
	}
	return strings.Join(list[:maxNamed], "; ") + fmt.Sprintf("; and %d more", len(list)-maxNamed)
}

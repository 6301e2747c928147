package web

import (
	"slices"
	"time"

	"buildd/internal/queue"
)

// When a Needs-Build package may start, estimated from the kept builds
// (queue.BuildRecord) and the live builders' slots: a package is
// expected to take the wall time of its last successful kept build, else
// the median wall time of the queue's successful kept builds, else
// defaultDuration; a Building package holds a slot for what it is
// expected to take less the time since it started (at least
// minRemaining); then the builders are simulated (schedule): the slot
// that frees first takes, for its builder, the first Needs-Build package
// in that builder's order that fits its memory and has not started: the
// build order (queue.SortForBuild), on a shared queue each builder's own
// (queue.BuilderOrder, as the builders take them), leaving out those that
// wait (queue.Waiting) or fit no live builder's slot. A package's
// estimated start is when its slot frees. It is made once for the whole
// queue (queueHealth), so a page costs a lookup, and for the first
// maxScheduled packages of the build order only.

// defaultDuration is the expected duration of a package of a queue
// that never built one successfully (as far as its kept builds tell).
const defaultDuration = 10 * time.Minute

// minRemaining is the least a Building package is expected to hold its
// slot for: one that took longer than expected is about to end.
const minRemaining = time.Minute

// durations are what a queue's kept builds tell of how long its
// packages take.
type durations struct {
	last   map[string]time.Duration // the wall time of each package's newest successful kept build
	median time.Duration            // of every successful kept build's; 0 when none
}

// The source of an expected duration, as the pages name it.
const (
	fromLast    = "its last build"
	fromMedian  = "the queue's median"
	fromDefault = "the default"
)

// expected is how long pkg is expected to take, and where that comes
// from (fromLast, fromMedian or fromDefault).
func (d *durations) expected(pkg string) (time.Duration, string) {
	if t, ok := d.last[pkg]; ok {
		return t, fromLast
	}
	if d.median > 0 {
		return d.median, fromMedian
	}
	return defaultDuration, fromDefault
}

// buildsSeen accumulates a queue's kept builds, read once (tx.Builds of
// every package): their count by class, the durations, and the builds
// of the packages asked for (wanted) whole.
type buildsSeen struct {
	wanted  map[string]bool
	of      map[string][]*queue.BuildRecord // of the wanted packages, each oldest first
	classes map[queue.Class]int             // the builds by class, the admin's retries left out
	last    map[string]time.Duration
	walls   []time.Duration // of every successful build
}

func newBuildsSeen(wanted map[string]bool) *buildsSeen {
	return &buildsSeen{wanted: wanted, of: map[string][]*queue.BuildRecord{}, classes: map[queue.Class]int{}, last: map[string]time.Duration{}}
}

// add takes the next build; a package's come oldest first.
func (s *buildsSeen) add(b *queue.BuildRecord) error {
	if s.wanted[b.Package] {
		s.of[b.Package] = append(s.of[b.Package], b)
	}
	if b.Class == queue.ClassRetry {
		return nil
	}
	s.classes[b.Class]++
	if b.Class == queue.ClassOK && b.Wall > 0 {
		w := time.Duration(b.Wall) * time.Second
		s.last[b.Package] = w
		s.walls = append(s.walls, w)
	}
	return nil
}

// durations are the durations the builds seen tell: the median is the
// middle wall time, or the mean of the two middle ones.
func (s *buildsSeen) durations() *durations {
	d := &durations{last: s.last}
	if n := len(s.walls); n > 0 {
		slices.Sort(s.walls)
		d.median = (s.walls[(n-1)/2] + s.walls[n/2]) / 2
	}
	return d
}

// remaining is how long a package expected to take expected, started
// elapsed ago, still holds its slot.
func remaining(expected, elapsed time.Duration) time.Duration {
	return max(expected-elapsed, minRemaining)
}

// farmBuilder is a live builder as the schedule sees it: its slots,
// the memory of each, and what its Building packages still hold them
// for.
type farmBuilder struct {
	name    string
	slots   int
	memory  int64           // KiB each slot has; 0: unknown, everything fits
	running []time.Duration // the Building packages' remaining times
}

// job is a Needs-Build package to schedule: its expected duration and
// the memory (KiB) it is expected to need, 0 unknown.
type job struct {
	duration time.Duration
	memory   int64
}

// maxScheduled bounds the jobs a schedule places: the first ones of the
// build order; those after them get no estimate.
const maxScheduled = 5000

// schedule simulates the builders: each slot frees when its running
// build ends (at once when it has none); the slot that frees first is
// given, by its builder, the first job in that builder's order (order(b),
// job indexes) not yet started and that fits the slot's memory, and
// frees again after the job's duration. It returns when each job starts
// (-1: no slot takes it), in O(jobs × builders + slots log slots) after
// the orders.
func schedule(builders []farmBuilder, jobs []job, order func(b int) []int) []time.Duration {
	starts := make([]time.Duration, len(jobs))
	for i := range starts {
		starts[i] = -1
	}
	var h slotHeap
	next := make([]int, len(builders)) // each builder's place in its order
	orders := make([][]int, len(builders))
	for bi, b := range builders {
		orders[bi] = order(bi)
		for i := range b.slots {
			at := time.Duration(0)
			if i < len(b.running) {
				at = b.running[i]
			}
			h.push(slotAt{at, bi})
		}
	}
	for h.len() > 0 {
		s := h.pop()
		b, o := &builders[s.b], orders[s.b]
		for next[s.b] < len(o) {
			j := o[next[s.b]]
			next[s.b]++
			if starts[j] >= 0 || b.memory > 0 && jobs[j].memory > b.memory {
				continue
			}
			starts[j] = s.at
			h.push(slotAt{s.at + jobs[j].duration, s.b})
			break
		}
	}
	return starts
}

// slotAt is a slot of builder b that frees at at.
type slotAt struct {
	at time.Duration
	b  int
}

// slotHeap is a min-heap of slots by the time they free (then builder,
// for a schedule that does not depend on the heap's history).
type slotHeap struct{ s []slotAt }

func (h *slotHeap) len() int { return len(h.s) }

func (h *slotHeap) less(i, j int) bool {
	return h.s[i].at < h.s[j].at || h.s[i].at == h.s[j].at && h.s[i].b < h.s[j].b
}

func (h *slotHeap) push(x slotAt) {
	h.s = append(h.s, x)
	for i := len(h.s) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.s[i], h.s[p] = h.s[p], h.s[i]
		i = p
	}
}

func (h *slotHeap) pop() slotAt {
	top := h.s[0]
	last := len(h.s) - 1
	h.s[0] = h.s[last]
	h.s = h.s[:last]
	for i := 0; ; {
		least := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(h.s) && h.less(c, least) {
				least = c
			}
		}
		if least == i {
			return top
		}
		h.s[i], h.s[least] = h.s[least], h.s[i]
		i = least
	}
}

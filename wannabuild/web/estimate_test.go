package web

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"buildd/internal/queue"
)

// TestSchedule: the slot that frees first takes, for its builder, the
// first job of that builder's order that has not started and fits its
// memory; the Building packages hold their slots first.
func TestSchedule(t *testing.T) {
	m := time.Minute
	jobsOf := func(ds ...time.Duration) []job {
		var js []job
		for _, d := range ds {
			js = append(js, job{duration: d})
		}
		return js
	}
	same := func(n int) func(int) []int {
		return func(int) []int {
			o := make([]int, n)
			for i := range o {
				o[i] = i
			}
			return o
		}
	}
	big := jobsOf(10*m, 10*m, 10*m)
	big[0].memory = 4 << 20
	for _, tc := range []struct {
		name     string
		builders []farmBuilder
		jobs     []job
		order    func(int) []int
		want     []time.Duration
	}{
		{"no slot", nil, jobsOf(m), same(1), []time.Duration{-1}},
		{"free slots", []farmBuilder{{name: "a", slots: 2}}, jobsOf(10*m, 20*m, 5*m), same(3), []time.Duration{0, 0, 10 * m}},
		{"one slot", []farmBuilder{{name: "a", slots: 1}}, jobsOf(10*m, 20*m, 5*m), same(3), []time.Duration{0, 10 * m, 30 * m}},
		{"after the running", []farmBuilder{{name: "a", slots: 2, running: []time.Duration{25 * m, 3 * m}}}, jobsOf(10*m, 10*m, 10*m), same(3), []time.Duration{3 * m, 13 * m, 23 * m}},
		{"the earliest free slot", []farmBuilder{{name: "a", slots: 3, running: []time.Duration{30 * m, 20 * m, 10 * m}}}, jobsOf(m, m, 15*m, m), same(4), []time.Duration{10 * m, 11 * m, 12 * m, 20 * m}},
		{"nothing to start", []farmBuilder{{name: "a", slots: 4, running: []time.Duration{m}}}, nil, same(0), []time.Duration{}},
		{"too big for the small builder", []farmBuilder{{name: "small", slots: 1, memory: 1 << 20}, {name: "big", slots: 1, memory: 8 << 20, running: []time.Duration{30 * m}}}, big, same(3),
			[]time.Duration{30 * m, 0, 10 * m}},
		{"each builder's order", []farmBuilder{{name: "a", slots: 1}, {name: "b", slots: 1}}, jobsOf(5*m, 7*m, 9*m, 11*m),
			func(b int) []int { return [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}}[b] }, []time.Duration{0, 5 * m, 11 * m, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schedule(tc.builders, tc.jobs, tc.order)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("schedule = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestScheduleLarge: many jobs on many slots, in one order and with no
// memory to fit, take what list scheduling gives, checked against a
// plain scan for the earliest slot.
func TestScheduleLarge(t *testing.T) {
	slots, n := 37, 5000
	var running []time.Duration
	var jobs []job
	for i := range slots {
		running = append(running, time.Duration(i*i%97+1)*time.Minute)
	}
	order := make([]int, n)
	for i := range n {
		jobs = append(jobs, job{duration: time.Duration(i*7919%1201+1) * time.Second})
		order[i] = i
	}
	got := schedule([]farmBuilder{{name: "a", slots: slots, running: running}}, jobs, func(int) []int { return order })
	free := slices.Clone(running)
	for i, j := range jobs {
		least := 0
		for k := range free {
			if free[k] < free[least] {
				least = k
			}
		}
		if got[i] != free[least] {
			t.Fatalf("job %d starts at %v, want %v", i, got[i], free[least])
		}
		free[least] += j.duration
	}
}

// TestExpectedDuration: a package is expected to take its last
// successful build's wall time, else the queue's median, else the
// default; a Building package holds its slot for the rest, at least a
// minute.
func TestExpectedDuration(t *testing.T) {
	ok := func(pkg string, wall int64) *queue.BuildRecord {
		return &queue.BuildRecord{Package: pkg, Outcome: queue.Successful, Class: queue.ClassOK, Resources: queue.Resources{Wall: wall}}
	}
	failed := func(pkg string, wall int64) *queue.BuildRecord {
		return &queue.BuildRecord{Package: pkg, Outcome: queue.Attempted, Class: queue.ClassPackage, Resources: queue.Resources{Wall: wall}}
	}
	for _, tc := range []struct {
		name   string
		builds []*queue.BuildRecord // every package's, each oldest first
		pkg    string
		want   time.Duration
		from   string
	}{
		{"its last build", []*queue.BuildRecord{ok("a", 100), failed("a", 5), ok("a", 300), failed("a", 9)}, "a", 300 * time.Second, fromLast},
		{"the median, odd", []*queue.BuildRecord{ok("a", 100), ok("b", 700), ok("c", 300)}, "d", 300 * time.Second, fromMedian},
		{"the median, even", []*queue.BuildRecord{ok("a", 100), ok("b", 700), ok("c", 300), ok("c", 500)}, "d", 400 * time.Second, fromMedian},
		{"failures only", []*queue.BuildRecord{failed("a", 100)}, "a", defaultDuration, fromDefault},
		{"unmeasured", []*queue.BuildRecord{ok("a", 0)}, "a", defaultDuration, fromDefault},
		{"no build", nil, "a", defaultDuration, fromDefault},
		{"retries left out", []*queue.BuildRecord{{Package: "a", Class: queue.ClassRetry, Resources: queue.Resources{Wall: 50}}, ok("b", 60)}, "a", time.Minute, fromMedian},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := newBuildsSeen(nil)
			for _, b := range tc.builds {
				seen.add(b)
			}
			got, from := seen.durations().expected(tc.pkg)
			if got != tc.want || from != tc.from {
				t.Errorf("expected(%s) = %v from %s, want %v from %s", tc.pkg, got, from, tc.want, tc.from)
			}
		})
	}
	for _, tc := range []struct{ expected, elapsed, want time.Duration }{
		{30 * time.Minute, 5 * time.Minute, 25 * time.Minute},
		{30 * time.Minute, 29*time.Minute + 30*time.Second, time.Minute},
		{30 * time.Minute, 3 * time.Hour, time.Minute},
	} {
		if got := remaining(tc.expected, tc.elapsed); got != tc.want {
			t.Errorf("remaining(%v, %v) = %v, want %v", tc.expected, tc.elapsed, got, tc.want)
		}
	}
}

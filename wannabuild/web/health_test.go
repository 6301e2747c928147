package web

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
)

// at is the test's clock moved by d, as pages write times.
func at(d time.Duration) string {
	return time.Unix(now, 0).Add(d).UTC().Format(queue.TimeFormat)
}

// heartbeat is a builder's status of sid/amd64 heard ago before now.
func heartbeat(builder string, ago time.Duration, slots int, slotGiB int64, quarantined string) queue.BuilderStatus {
	st := queue.BuilderStatus{Builder: builder, Pair: queue.Pair{Dist: "sid", Arch: "amd64"}, Slots: slots, SlotMemory: slotGiB << 20,
		Heard: time.Unix(now, 0).Add(-ago).Unix(), Quarantined: quarantined}
	if quarantined != "" {
		st.QuarantinedSince = now - 7200
	}
	return st
}

// TestStateOf: a builder is silent when unheard, by heartbeat and lease
// renewal, for longer than queue.SilentAfter; live when neither silent
// nor quarantined.
func TestStateOf(t *testing.T) {
	clock := time.Unix(now, 0)
	for _, tc := range []struct {
		name    string
		st      queue.BuilderStatus
		renewed int64
		silent  bool
		live    bool
		state   string
		heard   int64
	}{
		{"just heard", heartbeat("a", 0, 2, 4, ""), 0, false, true, "taking packages", now},
		{"at the limit", heartbeat("a", queue.SilentAfter, 2, 4, ""), 0, false, true, "taking packages", now - 600},
		{"past it", heartbeat("a", queue.SilentAfter+time.Second, 2, 4, ""), 0, true, false, "silent", now - 601},
		{"renewing a lease", heartbeat("a", time.Hour, 2, 4, ""), now - 60, false, true, "taking packages", now - 60},
		{"an old renewal", heartbeat("a", time.Minute, 2, 4, ""), now - 3600, false, true, "taking packages", now - 60},
		{"quarantined", heartbeat("a", 0, 2, 4, "disk full"), 0, false, false, "quarantined since " + at(-2*time.Hour), now},
		{"quarantined and silent", heartbeat("a", time.Hour, 2, 4, "disk full"), 0, true, false, "quarantined since " + at(-2*time.Hour) + ", and silent", now - 3600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := stateOf(tc.st, tc.renewed, clock)
			if b.Silent != tc.silent || b.live() != tc.live || b.State() != tc.state || b.LastHeardUnix != tc.heard {
				t.Errorf("silent %v, live %v, state %q, heard %d; want %v, %v, %q, %d", b.Silent, b.live(), b.State(), b.LastHeardUnix, tc.silent, tc.live, tc.state, tc.heard)
			}
		})
	}
}

// TestWhyNeedsBuild: every reason a Needs-Build package is not taken,
// from its queue's health made of heartbeats, records and kept builds,
// in the order they are checked.
func TestWhyNeedsBuild(t *testing.T) {
	gib := int64(1 << 20)
	nb := func(pkg string, prio int) *queue.Record {
		return &queue.Record{Package: pkg, Version: "1", State: queue.NeedsBuild, PermBuildPri: prio, StateChange: now - 86400}
	}
	gaveBack := func(pkg, held string, retryAfter int64) *queue.BuildRecord {
		return &queue.BuildRecord{Package: pkg, Builder: "b", Outcome: queue.GivenBack, Class: queue.ClassInfra, Held: held, RetryAfter: retryAfter}
	}
	measured := func(pkg string, peakGiB, wall int64) *queue.BuildRecord {
		return &queue.BuildRecord{Package: pkg, Builder: "b", Outcome: queue.Successful, Class: queue.ClassOK, Resources: queue.Resources{PeakMemory: peakGiB * gib, Wall: wall}}
	}
	live := []queue.BuilderStatus{heartbeat("b", time.Minute, 1, 4, "")}
	p := []*queue.Record{nb("p", 0)}
	var seven []queue.BuilderStatus
	var five []string
	for i := range 7 {
		name := "q" + strconv.Itoa(i+1)
		seven = append(seven, heartbeat(name, 0, 1, 4, "x"))
		if i < 5 {
			five = append(five, name+" since "+at(-2*time.Hour)+": x")
		}
	}
	for _, tc := range []struct {
		name     string
		sts      []queue.BuilderStatus
		building []*queue.Record
		needs    []*queue.Record // p among them
		builds   []*queue.BuildRecord
		want     string
	}{
		{"held", live, nil, p, []*queue.BuildRecord{gaveBack("p", "given back 3 times in a row", 0)},
			"held for the admin (wanna-build --retry): given back 3 times in a row"},
		{"backoff", live, nil, p, []*queue.BuildRecord{gaveBack("p", "", now+3600)},
			"in backoff until " + at(time.Hour) + " UTC (given back infrastructure by b)"},
		{"backoff ended", live, nil, p, []*queue.BuildRecord{gaveBack("p", "", now-1)},
			"waiting for a builder (0 in the queue before it; estimated start " + at(0) + " UTC)"},
		{"held before no builder", nil, nil, p, []*queue.BuildRecord{gaveBack("p", "given back 3 times in a row", 0)},
			"held for the admin (wanna-build --retry): given back 3 times in a row"},
		{"no builder ever", nil, nil, p, nil, "no builder of sid/amd64 ever reported in"},
		{"every builder quarantined", []queue.BuilderStatus{heartbeat("q1", 0, 2, 4, "disk full\nsee the log"), heartbeat("q2", time.Hour, 2, 4, "no network")}, nil, p, nil,
			"every builder of sid/amd64 is quarantined: q1 since " + at(-2*time.Hour) + ": disk full; q2 since " + at(-2*time.Hour) + ": no network"},
		{"many quarantined", seven, nil, p, nil,
			"every builder of sid/amd64 is quarantined: " + strings.Join(five, "; ") + "; and 2 more"},
		{"every builder silent", []queue.BuilderStatus{heartbeat("s1", 2*time.Hour, 2, 4, ""), heartbeat("s2", 3*time.Hour, 2, 4, "")}, nil, p, nil,
			"no live builder of sid/amd64 since " + at(-2*time.Hour) + " UTC (the last heard, 2 h 0 min ago)"},
		{"silent and quarantined", []queue.BuilderStatus{heartbeat("s1", 20*time.Minute, 2, 4, ""), heartbeat("q1", 0, 2, 4, "disk full")}, nil, p, nil,
			"no live builder of sid/amd64 since " + at(-20*time.Minute) + " UTC (the last heard, 20 min ago); quarantined: q1 since " + at(-2*time.Hour) + ": disk full"},
		{"silent but renewing", []queue.BuilderStatus{heartbeat("b", time.Hour, 1, 4, "")},
			[]*queue.Record{{Package: "r", State: queue.Building, Builder: "b", StateChange: now - 240, LeaseRenewed: now - 60}}, p, nil,
			"waiting for a builder (0 in the queue before it; estimated start " + at(6*time.Minute) + " UTC)"},
		{"too big", live, nil, p, []*queue.BuildRecord{measured("p", 8, 60)},
			"too big for every live builder of sid/amd64: it needs 10.0 GiB, the largest slot has 4.0 GiB"},
		{"too big for the live one", append([]queue.BuilderStatus{heartbeat("big", time.Hour, 1, 64, "")}, live...), nil, p, []*queue.BuildRecord{measured("p", 8, 60)},
			"too big for every live builder of sid/amd64: it needs 10.0 GiB, the largest slot has 4.0 GiB"},
		{"fits one", append([]queue.BuilderStatus{heartbeat("big", 0, 1, 16, "")}, live...), nil, p, []*queue.BuildRecord{measured("p", 8, 60)},
			"waiting for a builder (0 in the queue before it; estimated start " + at(0) + " UTC)"},
		{"no memory limit", []queue.BuilderStatus{heartbeat("b", 0, 1, 0, "")}, nil, p, []*queue.BuildRecord{measured("p", 8, 60)},
			"waiting for a builder (0 in the queue before it; estimated start " + at(0) + " UTC)"},
		{"behind the running and the first", live,
			[]*queue.Record{{Package: "r", State: queue.Building, Builder: "b", StateChange: now - 240}},
			[]*queue.Record{nb("a", 10), nb("p", 0)}, nil,
			"waiting for a builder (1 in the queue before it; estimated start " + at(16*time.Minute) + " UTC)"},
		{"by their durations", []queue.BuilderStatus{heartbeat("b", 0, 2, 4, "")},
			[]*queue.Record{{Package: "r", State: queue.Building, Builder: "b", StateChange: now - 600}},
			[]*queue.Record{nb("a", 10), nb("c", 5), nb("p", 0)},
			[]*queue.BuildRecord{measured("r", 1, 3600), measured("a", 1, 1200), measured("c", 1, 600)},
			"waiting for a builder (2 in the queue before it; estimated start " + at(30*time.Minute) + " UTC)"},
		{"running on a silent builder", []queue.BuilderStatus{heartbeat("b", 0, 1, 4, ""), heartbeat("s", time.Hour, 1, 4, "")},
			[]*queue.Record{{Package: "r", State: queue.Building, Builder: "s", StateChange: now - 60}}, p, nil,
			"waiting for a builder (0 in the queue before it; estimated start " + at(0) + " UTC)"},
		{"passing the waiting and the too big", live, nil,
			[]*queue.Record{nb("held", 30), nb("big", 20), nb("p", 0)},
			[]*queue.BuildRecord{measured("big", 8, 60), gaveBack("held", "given back 3 times in a row", 0)},
			"waiting for a builder (2 in the queue before it; estimated start " + at(0) + " UTC)"},
		{"no slots", []queue.BuilderStatus{heartbeat("b", 0, 0, 4, "")}, nil, p, nil,
			"waiting for a builder (0 in the queue before it; no estimate)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wanted := map[string]bool{}
			for _, r := range tc.needs {
				wanted[r.Package] = true
			}
			seen := newBuildsSeen(wanted)
			for _, b := range tc.builds {
				seen.add(b)
			}
			h := newHealth(queue.Pair{Dist: "sid", Arch: "amd64"}, time.Unix(now, 0), false, tc.sts, nil, tc.building, tc.needs, seen)
			var r *queue.Record
			for _, n := range tc.needs {
				if n.Package == "p" {
					r = n
				}
			}
			if got := h.why(r, -1); got != tc.want {
				t.Errorf("why =\n%q, want\n%q", got, tc.want)
			}
		})
	}
}

// TestByAdmin: a record's builder that neither reported in nor reported
// revisions in the queue is the admin (its --failed or --dep-wait); a
// package being built is its builder's.
func TestByAdmin(t *testing.T) {
	h := newHealth(queue.Pair{Dist: "sid", Arch: "amd64"}, time.Unix(now, 0), false, []queue.BuilderStatus{heartbeat("hb", 0, 1, 4, "")},
		[]string{"rev"}, nil, nil, newBuildsSeen(nil))
	for _, tc := range []struct {
		state   queue.State
		builder string
		want    bool
	}{
		{queue.Failed, "root", true},
		{queue.DepWait, "root", true},
		{queue.Failed, "hb", false},
		{queue.DepWait, "rev", false},
		{queue.Failed, "", false},
		{queue.Building, "root", false},
	} {
		if got := h.byAdmin(&queue.Record{Package: "p", State: tc.state, Builder: tc.builder}); got != tc.want {
			t.Errorf("%s by %q: byAdmin %v, want %v", tc.state, tc.builder, got, tc.want)
		}
	}
	var none *queueHealth
	if none.byAdmin(&queue.Record{State: queue.Failed, Builder: "root"}) {
		t.Errorf("byAdmin without a health read")
	}
}

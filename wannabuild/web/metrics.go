package web

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"buildd/internal/queue"
)

// metrics answers /metrics in the Prometheus text format:
//
//   - the gauge wanna_build_packages{dist,arch,state}, every classic
//     state of every queue (0 included) and any other state that occurs;
//   - the counter wanna_build_builds_finished_total{dist,arch,result}
//     from the history;
//   - the gauge wanna_build_builder_last_heard_seconds{builder}: seconds
//     since the builder's newest transaction, lease renewal or
//     heartbeat, for every builder that took a package or reports in;
//   - the gauge wanna_build_builds_kept{dist,arch,class}: the ended
//     builds each queue keeps (the last queue.MaxBuildsKept of each
//     package), by class, every class of queue.Classes (0 included);
//   - from each builder's last heartbeat in each queue, by
//     {builder,dist,arch}: the gauges wanna_build_builder_slots,
//     wanna_build_builder_running (its builds running),
//     wanna_build_builder_quarantined (1 when it put itself in
//     quarantine, else 0) and
//     wanna_build_builder_heard_timestamp_seconds (when it was last
//     heard there, unix seconds: its heartbeat or a lease renewal,
//     whichever is later; silent when more than queue.SilentAfter ago).
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	type read struct {
		o       *overviewPage
		digests map[queue.Pair]*queue.Digest
		kept    map[queue.Pair]map[queue.Class]int
	}
	var m read
	now := s.now()
	err := s.withStore(func(db queue.Store) error {
		v, err := s.cached(db, "metrics", func() (any, error) {
			o, digests, err := overview(s, db, now)
			if err != nil {
				return nil, err
			}
			kept := map[queue.Pair]map[queue.Class]int{}
			for _, p := range o.Pairs {
				pr := queue.Pair{Dist: p.Dist, Arch: p.Arch}
				h, err := s.health(db, pr, now)
				if err != nil {
					return nil, err
				}
				kept[pr] = h.classes
			}
			return read{o, digests, kept}, nil
		})
		if err == nil {
			m = v.(read)
		}
		return err
	})
	if err != nil {
		s.fail(w, true, err)
		return
	}
	var b bytes.Buffer
	writeMetrics(&b, m.o.Pairs)
	writeFinished(&b, m.o.Pairs, m.digests)
	writeHeard(&b, m.o.heard, now)
	writeKept(&b, m.o.Pairs, m.kept)
	writeBuilders(&b, m.o.states)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

func writeMetrics(b *bytes.Buffer, pairs []pairCounts) {
	b.WriteString("# HELP wanna_build_packages Source packages in the wanna-build queue, by distribution, architecture and state.\n")
	b.WriteString("# TYPE wanna_build_packages gauge\n")
	for _, p := range pairs {
		seen := map[queue.State]bool{}
		for _, st := range queue.States {
			seen[st] = true
		}
		for st := range p.Counts {
			seen[st] = true
		}
		for _, st := range orderStates(seen) {
			fmt.Fprintf(b, "wanna_build_packages{dist=%s,arch=%s,state=%s} %d\n",
				label(p.Dist), label(p.Arch), label(string(st)), p.Counts[st])
		}
	}
}

// results name the ends of a build, by the state a package left Building
// for; any other state is its own name in lower case.
var results = []struct {
	state queue.State
	name  string
}{
	{queue.Built, "built"},
	{queue.BuildAttempted, "attempted"},
	{queue.NeedsBuild, "given-back"},
	{queue.DepWait, "dep-wait"},
	{queue.Failed, "failed"},
}

// writeFinished writes the builds that ended in each queue, by result:
// every result above (0 included), then any other that occurs.
func writeFinished(b *bytes.Buffer, pairs []pairCounts, digests map[queue.Pair]*queue.Digest) {
	b.WriteString("# HELP wanna_build_builds_finished_total Builds that ended (a package leaving Building, from the history), by distribution, architecture and result.\n")
	b.WriteString("# TYPE wanna_build_builds_finished_total counter\n")
	for _, p := range pairs {
		finished := map[queue.State]int{}
		if d := digests[queue.Pair{Dist: p.Dist, Arch: p.Arch}]; d != nil {
			finished = d.Finished
		}
		known := map[queue.State]bool{}
		for _, r := range results {
			known[r.state] = true
			fmt.Fprintf(b, "wanna_build_builds_finished_total{dist=%s,arch=%s,result=%s} %d\n",
				label(p.Dist), label(p.Arch), label(r.name), finished[r.state])
		}
		other := map[queue.State]bool{}
		for st := range finished {
			if !known[st] {
				other[st] = true
			}
		}
		for _, st := range orderStates(other) {
			fmt.Fprintf(b, "wanna_build_builds_finished_total{dist=%s,arch=%s,result=%s} %d\n",
				label(p.Dist), label(p.Arch), label(strings.ToLower(string(st))), finished[st])
		}
	}
}

// writeHeard writes, for every builder (a user that ever took a
// package, or that reports in), the seconds since it was last heard
// from.
func writeHeard(b *bytes.Buffer, heard map[string]int64, now time.Time) {
	b.WriteString("# HELP wanna_build_builder_last_heard_seconds Seconds since the builder last changed the queue, renewed a lease or reported in.\n")
	b.WriteString("# TYPE wanna_build_builder_last_heard_seconds gauge\n")
	for _, u := range slices.Sorted(maps.Keys(heard)) {
		fmt.Fprintf(b, "wanna_build_builder_last_heard_seconds{builder=%s} %d\n", label(u), now.Unix()-heard[u])
	}
}

// writeKept writes each queue's kept builds by class: every class (0
// included).
func writeKept(b *bytes.Buffer, pairs []pairCounts, kept map[queue.Pair]map[queue.Class]int) {
	b.WriteString("# HELP wanna_build_builds_kept Ended builds the queue keeps (the last " + strconv.Itoa(queue.MaxBuildsKept) + " of each package), by distribution, architecture and class.\n")
	b.WriteString("# TYPE wanna_build_builds_kept gauge\n")
	for _, p := range pairs {
		classes := kept[queue.Pair{Dist: p.Dist, Arch: p.Arch}]
		for _, c := range queue.Classes {
			fmt.Fprintf(b, "wanna_build_builds_kept{dist=%s,arch=%s,class=%s} %d\n", label(p.Dist), label(p.Arch), label(string(c)), classes[c])
		}
	}
}

// writeBuilders writes what each builder's last heartbeat in each queue
// says.
func writeBuilders(b *bytes.Buffer, states []builderState) {
	for _, g := range []struct {
		name, help string
		value      func(*builderState) int64
	}{
		{"wanna_build_builder_slots", "Builds the builder runs at once, as it last reported to the queue.", func(st *builderState) int64 { return int64(st.Slots) }},
		{"wanna_build_builder_running", "Builds the builder was running when it last reported to the queue.", func(st *builderState) int64 { return int64(st.Running) }},
		{"wanna_build_builder_quarantined", "1 when the builder put itself in quarantine (it takes no package of the queue), else 0.", func(st *builderState) int64 {
			if st.Quarantined != "" {
				return 1
			}
			return 0
		}},
		{"wanna_build_builder_heard_timestamp_seconds", "When the builder was last heard from in the queue (its heartbeat or a lease renewal), unix seconds.", func(st *builderState) int64 { return st.LastHeardUnix }},
	} {
		b.WriteString("# HELP " + g.name + " " + g.help + "\n")
		b.WriteString("# TYPE " + g.name + " gauge\n")
		for i := range states {
			st := &states[i]
			fmt.Fprintf(b, "%s{builder=%s,dist=%s,arch=%s} %d\n", g.name, label(st.Builder), label(st.Dist), label(st.Arch), g.value(st))
		}
	}
}

// label is a label value of the text format: quoted, with backslash,
// double quote and newline escaped.
func label(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(visible(s)) + `"`
}

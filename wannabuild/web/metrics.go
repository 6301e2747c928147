package web

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"buildd/internal/queue"
)

// metrics answers /metrics in the Prometheus text format: the gauge
// wanna_build_packages{dist,arch,state}, every classic state of every
// queue (0 included) and any other state that occurs; the counter
// wanna_build_builds_finished_total{dist,arch,result} from the history;
// and the gauge wanna_build_builder_last_heard_seconds{builder}.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var o *overviewPage
	var digests map[queue.Pair]*queue.Digest
	now := s.now()
	err := s.withStore(func(db queue.Store) error {
		type read struct {
			o       *overviewPage
			digests map[queue.Pair]*queue.Digest
		}
		v, err := s.cached(db, "metrics", func() (any, error) {
			o, digests, err := overview(s, db, now)
			return read{o, digests}, err
		})
		if err == nil {
			o, digests = v.(read).o, v.(read).digests
		}
		return err
	})
	if err != nil {
		s.fail(w, true, err)
		return
	}
	var b bytes.Buffer
	writeMetrics(&b, o.Pairs)
	writeFinished(&b, o.Pairs, digests)
	writeHeard(&b, o.heard, now)
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
// package), the seconds since it was last heard from.
func writeHeard(b *bytes.Buffer, heard map[string]int64, now time.Time) {
	b.WriteString("# HELP wanna_build_builder_last_heard_seconds Seconds since the builder last changed the queue or renewed a lease.\n")
	b.WriteString("# TYPE wanna_build_builder_last_heard_seconds gauge\n")
	for _, u := range slices.Sorted(maps.Keys(heard)) {
		fmt.Fprintf(b, "wanna_build_builder_last_heard_seconds{builder=%s} %d\n", label(u), now.Unix()-heard[u])
	}
}

// label is a label value of the text format: quoted, with backslash,
// double quote and newline escaped.
func label(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(visible(s)) + `"`
}

package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"

	"buildd/internal/queue"
)

// metrics answers /metrics in the Prometheus text format: the gauge
// wanna_build_packages{dist,arch,state}, every classic state of every
// queue (0 included) and any other state that occurs.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var o *overviewPage
	err := s.withStore(func(db queue.Store) error {
		var err error
		o, err = overview(db)
		return err
	})
	if err != nil {
		s.fail(w, true, err)
		return
	}
	var b bytes.Buffer
	writeMetrics(&b, o.Pairs)
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

// label is a label value of the text format: quoted, with backslash,
// double quote and newline escaped.
func label(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(visible(s)) + `"`
}

package cli

import (
	"context"

	"buildd/internal/queue"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
)

// serveJSON answers a builder host's call in the wire protocol
// (--json=N, internal/queue/port): the call runs on this host's queue
// through the same local port the builder would use, and its answer is
// one JSON line.
func (r *run) serveJSON() int {
	o := r.o
	if o.mode == "list" && o.listState != "needs-build" {
		status, _ := r.fail(exitUsage, "--json: only --list=needs-build is a call of the protocol")
		return status
	}
	h := store.NewHandle(r.dbPath, store.Options{Timeout: r.timeout})
	defer h.Close()
	s := *r.s
	p := port.Local(h, func() *queue.Session { c := s; return &c })
	req := port.Request{Op: o.mode, Args: o.args, Message: r.s.Message}
	if o.mode == "put-log" {
		req.Log = queue.BuildLog{Time: o.logTime, Status: queue.Outcome(o.logStatus), Expires: o.logExpires}
		req.LogData = r.stdin
	}
	switch o.mode {
	case "report-revisions":
		req.Revisions = r.stdin
	case "end", "heartbeat":
		req.Body = r.stdin
	}
	if err := port.Serve(context.Background(), p, req, r.stdout); err != nil {
		status, _ := r.fail(exitUsage, "%v", err)
		return status
	}
	return exitOK
}

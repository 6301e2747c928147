package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"buildd/internal/debversion"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// The health of the builders (internal/queue/health.go): their
// heartbeats (--builders) and the admin's end of a package's backoff or
// hold (--retry). --end and --heartbeat are buildd's calls over ssh
// (with --json) only.

// listBuilders prints the heartbeats of the queue: each builder's slots,
// the memory of each, the builds running, when it was last heard and
// whether it is silent or quarantined (--builders).
func (r *run) listBuilders() int {
	if status, ok := r.noArgs(); !ok {
		return status
	}
	db, status, ok := r.open(true)
	if !ok {
		return status
	}
	defer db.Close()
	sts, err := db.Builders(r.pair())
	if err != nil {
		status, _ := r.fail(exitDB, "%s: %v", store.Name(r.dbPath), err)
		return status
	}
	tw := tabwriter.NewWriter(r.s.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILDER\tSLOTS\tSLOT MEMORY\tRUNNING\tLAST HEARD (UTC)\tSTATE")
	for _, st := range sts {
		state := "taking packages"
		switch {
		case st.Quarantined != "":
			state = "quarantined since " + time.Unix(st.QuarantinedSince, 0).UTC().Format(queue.TimeFormat) + ": " + strings.SplitN(st.Quarantined, "\n", 2)[0]
		case r.s.Now.Sub(time.Unix(st.Heard, 0)) > queue.SilentAfter:
			state = "silent"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d MiB\t%d\t%s\t%s\n", st.Builder, st.Slots, st.SlotMemory>>10, st.Running,
			time.Unix(st.Heard, 0).UTC().Format(queue.TimeFormat), state)
	}
	tw.Flush()
	fmt.Fprintf(r.s.Out, "Total %d builder(s)\n", len(sts))
	return exitOK
}

// retry ends the backoff or hold of each package argument after its
// give-backs (--retry): it may be taken at once, and its give-backs in a
// row count from none again.
func (r *run) retry() int {
	return r.eachArg(func(tx queue.Tx, arg string) error {
		pv := debversion.SplitPkgVersion(arg)
		if debversion.CheckName(pv.Name) != nil {
			return &queue.BadArgument{Arg: arg}
		}
		rec, err := tx.Get(pv.Name)
		if err != nil {
			return err
		}
		if rec == nil {
			fmt.Fprintf(r.s.Out, "%s: not registered yet.\n", pv.Name)
			return &queue.Refused{Pkg: pv.Name, Msg: "not registered yet."}
		}
		err = tx.AddBuild(&queue.BuildRecord{Package: pv.Name, Version: rec.Version, Builder: r.s.User,
			Time: r.s.Now.Unix(), Class: queue.ClassRetry})
		if err != nil {
			return err
		}
		fmt.Fprintf(r.s.Out, "%s: may be taken again at once (its give-backs in a row count from none)\n", pv.Name)
		return nil
	})
}

package cli

import (
	"fmt"
	"time"

	"buildd/internal/debversion"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// info prints the --info block of each package argument: the classic
// lines (queue.Session.Info), then what the queue knows of its health
// (infoHealth). A package the queue does not hold gets the classic
// refusal.
func (r *run) info() int {
	db, status, ok := r.open(true)
	if !ok {
		return status
	}
	defer db.Close()
	sts, err := db.Builders(r.pair())
	if err != nil {
		status, _ := r.fail(exitDB, "%s: heartbeats of %s/%s: %v", store.Name(r.dbPath), r.s.Dist, r.s.Arch, err)
		return status
	}
	heard := map[string]int64{}
	for _, st := range sts {
		heard[st.Builder] = st.Heard
	}
	err = db.View(r.s.Dist, r.s.Arch, func(tx queue.Tx) error {
		for _, a := range r.o.args {
			if err := r.s.Info(tx, a); err != nil {
				if queue.IsPackageError(err) {
					continue
				}
				return err
			}
			if err := r.infoHealth(tx, debversion.SplitPkgVersion(a).Name, heard); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return r.dbError(err)
	}
	return exitOK
}

// infoHealth prints, after the classic lines of --info for the package
// name, those the classic tool has no fields for: when the lease of a
// Building package ends (Lease-Until), when its builder was last heard
// from (Last-Heard: its renewal of the lease or its heartbeat in the
// queue, heard, whichever is later), and why a Needs-Build package that
// was given back may not be taken yet (Waiting: queue.Waiting). Times are
// UTC.
func (r *run) infoHealth(tx queue.Tx, name string, heard map[string]int64) error {
	rec, err := tx.Get(name)
	if err != nil || rec == nil {
		return err
	}
	line := func(key, value string) { fmt.Fprintf(r.s.Out, "  %-20s: %s\n", key, value) }
	if rec.LeaseUntil != 0 {
		line("Lease-Until", time.Unix(rec.LeaseUntil, 0).UTC().Format(queue.TimeFormat))
	}
	if rec.Builder != "" {
		if t := max(rec.LeaseRenewed, heard[rec.Builder]); t != 0 {
			line("Last-Heard", time.Unix(t, 0).UTC().Format(queue.TimeFormat))
		}
	}
	if rec.State != queue.NeedsBuild {
		return nil
	}
	var builds []*queue.BuildRecord
	if err := tx.Builds(name, func(b *queue.BuildRecord) error {
		builds = append(builds, b)
		return nil
	}); err != nil {
		return fmt.Errorf("builds of %s: %w", name, err)
	}
	if w := queue.Waiting(builds, r.s.Now); w != "" {
		line("Waiting", w)
	}
	return nil
}

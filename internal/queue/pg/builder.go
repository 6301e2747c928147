package pg

import (
	"fmt"

	"buildd/internal/queue"
)

// A builder host runs package builds from the archive and may be taken
// over, so its role is an adversary too: the database, not this program,
// keeps it to a builder's list (schema.go, version 5, wb_builder_change),
// whatever SQL it sends. A builder role may, on the queues the admin gave
// it in wb_builder_queues:
//
//   - take a Needs-Build package (--take);
//   - renew the lease of its own Building package (no history);
//   - set its own package built, attempted, uploaded, failed or
//     dep-wait, or give it back;
//   - give back a Building package whose lease has ended, by the
//     database's clock (--expire-leases).
//
// Nothing else: no other state, no other builder's package, no name,
// version, dist, arch, priority or note, no row added or removed. The
// database writes the history row of each change (in the session's role,
// by its own clock, with an id of its own) and the counts by state; the
// role can neither insert history nor count states itself. It may add
// its own build logs and remove expired ones (logs.go), and replace its
// own report of its machine revisions of those queues, at most 16, by
// the database's clock (revisions.go, schema version 6); it cannot
// require a revision.
//
// So a builder's transaction sends no history or counts: before each
// write it names the change's action and the Unix user (wb.action and
// wb.real_user, local to the transaction) for the history row the
// database writes, and the database checks that the action fits the
// change.

// builderHistory is the action to name for each package a builder's
// flush writes: the last one logged for it. History with no write of its
// package is not a builder's.
func (t *tx) builderHistory() (map[string]*queue.Transaction, error) {
	said := make(map[string]*queue.Transaction, len(t.hist))
	for _, tr := range t.hist {
		if _, ok := t.pending[tr.Package]; !ok {
			return nil, fmt.Errorf("%s: %w (a history entry with no change of the package: %s)", tr.Package, ErrRefused, tr.Action)
		}
		said[tr.Package] = tr
	}
	return said, nil
}

package pg

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"buildd/internal/queue"
)

// The machine revisions are rows of wb_revisions, one per reported
// revision, and wb_required_revisions, one per queue that requires one
// (schema.go, version 6). A report is one call of wb_report_revisions,
// which keeps a builder role to its own rows of its own queues, whatever
// it sends; a requirement is the admin's (the table's owner's) write.

// ReportRevisions implements queue.RevisionStore.
func (d *DB) ReportRevisions(builder string, p queue.Pair, held []queue.HeldRevision) (string, error) {
	if err := queue.CheckReport(builder, p, held); err != nil {
		return "", err
	}
	if d.readOnly {
		return "", queue.ErrReadOnly
	}
	n := len(held)
	machines, revisions, uuids, currents := make([]string, n), make([]string, n), make([]string, n), make([]bool, n)
	for i, h := range held {
		machines[i], revisions[i], uuids[i], currents[i] = h.Machine, h.Revision, h.UUID, h.Current
	}
	var required *string
	err := d.conn.QueryRow(context.Background(), "SELECT wb_report_revisions($1, $2, $3, $4, $5, $6, $7)",
		builder, p.Dist, p.Arch, machines, revisions, uuids, currents).Scan(&required)
	if err != nil {
		return "", fmt.Errorf("revisions of %s in %s/%s: database %s: %w", builder, p.Dist, p.Arch, d.url, refused(err))
	}
	if required == nil {
		return "", nil
	}
	return *required, nil
}

// refused wraps ErrRefused around the database's refusal of a change for
// this role (insufficient_privilege).
func refused(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("%w (%s)", ErrRefused, pe.Message)
	}
	return err
}

// Revisions implements queue.RevisionStore.
func (d *DB) Revisions(builder string, p queue.Pair) ([]queue.ReportedRevision, error) {
	rows, err := d.conn.Query(context.Background(), `SELECT builder, dist, arch, machine, revision, uuid::text, current, reported
		FROM wb_revisions WHERE ($1 = '' OR builder = $1) AND ($2 = '' OR dist = $2) AND ($3 = '' OR arch = $3)`, builder, p.Dist, p.Arch)
	if err != nil {
		return nil, fmt.Errorf("reported revisions: database %s: %w", d.url, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.ReportedRevision, error) {
		var r queue.ReportedRevision
		err := row.Scan(&r.Builder, &r.Dist, &r.Arch, &r.Machine, &r.Revision, &r.UUID, &r.Current, &r.Reported)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("reported revisions: database %s: %w", d.url, err)
	}
	queue.SortReported(list)
	return list, nil
}

// RequireRevision implements queue.RevisionStore: the admin's, stamped by
// the database's clock; it notifies the queue's builders as a package
// becoming Needs-Build does, so that an idle one looks again at once.
func (d *DB) RequireRevision(p queue.Pair, uuid, by string) error {
	if err := queue.CheckRequirement(p, uuid, by); err != nil {
		return err
	}
	if d.readOnly {
		return queue.ErrReadOnly
	}
	fail := func(err error) error {
		return fmt.Errorf("required revision of %s/%s: database %s: %w", p.Dist, p.Arch, d.url, refused(err))
	}
	ctx := context.Background()
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(ctx)
	if uuid == "" {
		_, err = tx.Exec(ctx, "DELETE FROM wb_required_revisions WHERE dist = $1 AND arch = $2", p.Dist, p.Arch)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO wb_required_revisions (dist, arch, uuid, set_by, set_at)
			VALUES ($1, $2, $3::uuid, $4, floor(extract(epoch FROM now())))
			ON CONFLICT (dist, arch) DO UPDATE SET uuid = EXCLUDED.uuid, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at`,
			p.Dist, p.Arch, uuid, by)
	}
	if err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", NotifyChannel, p.Dist+"/"+p.Arch); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// RequiredRevisions implements queue.RevisionStore.
func (d *DB) RequiredRevisions() ([]queue.RequiredRevision, error) {
	rows, err := d.conn.Query(context.Background(), "SELECT dist, arch, uuid::text, set_by, set_at FROM wb_required_revisions")
	if err != nil {
		return nil, fmt.Errorf("required revisions: database %s: %w", d.url, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.RequiredRevision, error) {
		var r queue.RequiredRevision
		err := row.Scan(&r.Dist, &r.Arch, &r.UUID, &r.SetBy, &r.Set)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("required revisions: database %s: %w", d.url, err)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		return a.Dist < b.Dist || a.Dist == b.Dist && a.Arch < b.Arch
	})
	return list, nil
}

var _ queue.RevisionStore = (*DB)(nil)

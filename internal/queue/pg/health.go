package pg

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"buildd/internal/queue"
)

// The ended builds are rows of wb_builds and the heartbeats rows of
// wb_builders (schema.go, version 7). A build is added at once, before
// the transaction's pending record writes are sent: the database lets a
// builder role add one only while the package is still its Building
// one, and its change of state comes after.

// AddBuild implements queue.BuildStore.
func (t *tx) AddBuild(b *queue.BuildRecord) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	_, err := t.ptx.Exec(t.ctx, `INSERT INTO wb_builds (dist, arch, package, version, builder, time, outcome, class, stage,
		peak_memory, cpu_ms, disk, wall, slot_memory, retry_after, held) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		t.dist, t.arch, b.Package, b.Version, b.Builder, b.Time, string(b.Outcome), string(b.Class), b.Stage,
		b.PeakMemory, b.CPUTime, b.Disk, b.Wall, b.SlotMemory, b.RetryAfter, b.Held)
	if err != nil {
		return fmt.Errorf("build of %s %s/%s by %s: %w", b.Package, t.dist, t.arch, b.Builder, refused(err))
	}
	return nil
}

// Builds implements queue.BuildStore.
func (t *tx) Builds(name string, fn func(*queue.BuildRecord) error) error {
	q := `SELECT package, version, builder, time, outcome, class, stage, peak_memory, cpu_ms, disk, wall, slot_memory, retry_after, held
		FROM wb_builds WHERE dist = $1 AND arch = $2`
	args := []any{t.dist, t.arch}
	if name != "" {
		q += " AND package = $3"
		args = append(args, name)
	}
	rows, err := t.ptx.Query(t.ctx, q+" ORDER BY package, id", args...)
	if err != nil {
		return err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*queue.BuildRecord, error) {
		b := &queue.BuildRecord{}
		var outcome, class string
		err := row.Scan(&b.Package, &b.Version, &b.Builder, &b.Time, &outcome, &class, &b.Stage,
			&b.PeakMemory, &b.CPUTime, &b.Disk, &b.Wall, &b.SlotMemory, &b.RetryAfter, &b.Held)
		b.Outcome, b.Class = queue.Outcome(outcome), queue.Class(class)
		return b, err
	})
	if err != nil {
		return fmt.Errorf("builds of %s/%s: %w", t.dist, t.arch, err)
	}
	for _, b := range list {
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeat implements queue.BuilderStore.
func (d *DB) Heartbeat(st queue.BuilderStatus) error {
	if err := queue.CheckStatus(&st); err != nil {
		return err
	}
	if d.readOnly {
		return queue.ErrReadOnly
	}
	_, err := d.conn.Exec(context.Background(), "SELECT wb_heartbeat($1, $2, $3, $4, $5, $6, $7, $8)",
		st.Builder, st.Dist, st.Arch, st.Slots, st.SlotMemory, st.Running, st.Quarantined, st.QuarantinedSince)
	if err != nil {
		return fmt.Errorf("heartbeat of %s in %s/%s: database %s: %w", st.Builder, st.Dist, st.Arch, d.url, refused(err))
	}
	return nil
}

// Builders implements queue.BuilderStore.
func (d *DB) Builders(p queue.Pair) ([]queue.BuilderStatus, error) {
	rows, err := d.conn.Query(context.Background(), `SELECT builder, dist, arch, slots, slot_memory, running, quarantined, quarantined_since, heard
		FROM wb_builders WHERE ($1 = '' OR dist = $1) AND ($2 = '' OR arch = $2)`, p.Dist, p.Arch)
	if err != nil {
		return nil, fmt.Errorf("heartbeats: database %s: %w", d.url, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.BuilderStatus, error) {
		var st queue.BuilderStatus
		err := row.Scan(&st.Builder, &st.Dist, &st.Arch, &st.Slots, &st.SlotMemory, &st.Running, &st.Quarantined, &st.QuarantinedSince, &st.Heard)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("heartbeats: database %s: %w", d.url, err)
	}
	queue.SortStatuses(list)
	return list, nil
}

var _ queue.BuilderStore = (*DB)(nil)

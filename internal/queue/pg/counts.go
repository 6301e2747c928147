package pg

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"buildd/internal/queue"
)

// The packages of each queue by state, kept in wb_state_counts (schema
// version 4) by the writes themselves: each flush adds what its writes
// changed, in the same transaction, so the counts are those of the rows
// in every snapshot, and the status web reads a handful of rows instead
// of counting a queue's packages.

// stateCounts is what a flush's writes change in the counts by state.
type stateCounts map[queue.State]int64

// replace counts a write of rec (nil: a deletion) over the row as read.
func (c stateCounts) replace(was seen, rec *queue.Record) {
	if was.rev >= 0 {
		c[was.state]--
	}
	if rec != nil {
		c[rec.State]++
	}
}

// queue adds the changes to b, through wb_count_states, and reports
// whether there were any.
func (c stateCounts) queue(b *pgx.Batch, dist, arch string) bool {
	var states []string
	var ns []int64
	for st, n := range c {
		if n != 0 {
			states = append(states, string(st))
		}
	}
	if len(states) == 0 {
		return false
	}
	slices.Sort(states)
	for _, st := range states {
		ns = append(ns, c[queue.State(st)])
	}
	b.Queue("SELECT wb_count_states($1, $2, $3, $4)", dist, arch, states, ns)
	return true
}

// CountStates implements queue.StateCounter: the sums of the queue's
// rows of wb_state_counts (of every queue when dist is "").
func (d *DB) CountStates(dist, arch string) (map[queue.Pair]map[queue.State]int, error) {
	return countStates(context.Background(), d.conn, d.url, dist, arch)
}

// countStates is CountStates through q (a connection or a transaction).
func countStates(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, url, dist, arch string) (map[queue.Pair]map[queue.State]int, error) {
	sql := "SELECT dist, arch, state, sum(n)::bigint FROM wb_state_counts"
	var args []any
	what := "every queue"
	if dist != "" {
		what = dist + "/" + arch
		sql += " WHERE dist = $1 AND arch = $2"
		args = []any{dist, arch}
	}
	rows, err := q.Query(ctx, sql+" GROUP BY dist, arch, state HAVING sum(n) <> 0", args...)
	if err != nil {
		return nil, fmt.Errorf("database %s: count the packages of %s by state: %w", url, what, err)
	}
	out := map[queue.Pair]map[queue.State]int{}
	var p queue.Pair
	var st string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&p.Dist, &p.Arch, &st, &n}, func() error {
		if out[p] == nil {
			out[p] = map[queue.State]int{}
		}
		out[p][queue.State(st)] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("database %s: count the packages of %s by state: %w", url, what, err)
	}
	return out, nil
}

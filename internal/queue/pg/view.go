package pg

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"buildd/internal/queue"
)

// The status web's questions, each answered without a read of every
// record: the counts by state of every queue (queue.StateCounter,
// counts.go) and one page of a queue's list (queue.Lister): the names
// of the list with their sort key, or in calprio's order from the
// database, then only the page's records.

// calprioSQL is queue.CalPrio as an SQL expression of a wb_records row,
// at the unix time of the parameter @now. A section without a component
// (most) is looked up once, not split. Built on first use, not in every
// process's start-up.
var calprioSQL = sync.OnceValue(func() string {
	priority, section, component, notes := queue.Weights()
	cases := func(expr string, w map[string]int) string {
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("CASE " + expr)
		for _, k := range keys {
			fmt.Fprintf(&b, " WHEN '%s' THEN %d", k, w[k])
		}
		b.WriteString(" ELSE 0 END")
		return b.String()
	}
	slash := "strpos(section, '/')"
	return "(" + strings.Join([]string{
		cases("priority", priority),
		cases("notes", notes),
		fmt.Sprintf("CASE WHEN %s = 0 THEN %d + %s ELSE %s + %s END", slash, component[queue.Component("")], cases("section", section),
			cases("substr(section, 1, "+slash+" - 1)", component), cases("substr(section, "+slash+" + 1)", section)),
		"2 * least(greatest((@now - state_change) / 86400, 0), 6)",
		"- least(greatest(build_time, success_time) / 3600, 15)",
		"buildpri", "permbuildpri",
	}, " + ") + ")"
})

// prioOrder is the ORDER BY of queue.OrderPrio, names compared as bytes
// as Go does.
var prioOrder = sync.OnceValue(func() string { return calprioSQL() + ` DESC, state_change, package COLLATE "C"` })

// sortKeySQL is the key of the other orders, before the name: the
// database reads it and the page is ordered here, which costs less than
// the database's sort by a collation of its own.
var sortKeySQL = map[string]string{
	queue.OrderName:  "0",
	queue.OrderState: "coalesce(array_position(@states::text[], state) - 1, @nstates)",
	queue.OrderSince: "state_change",
}

// ListPage implements queue.Lister, in one snapshot: the queue's counts
// by state (the list's length among them), the page's names in order,
// then the page's rows (calprio and days computed from each), and the
// build order of the Needs-Build packages when the page shows one.
func (d *DB) ListPage(dist, arch string, q queue.PageQuery) (*queue.Page, error) {
	if err := queue.CheckOrder(q.Order); err != nil {
		return nil, err
	}
	fail := func(err error) (*queue.Page, error) {
		return nil, fmt.Errorf("database %s: list %s/%s: %w", d.url, dist, arch, err)
	}
	states := make([]string, len(queue.States))
	for i, st := range queue.States {
		states[i] = string(st)
	}
	args := pgx.NamedArgs{
		"dist": dist, "arch": arch, "state": string(q.State), "now": q.Now.Unix(),
		"states": states, "nstates": len(states), "offset": max(q.Offset, 0),
	}
	ctx := context.Background()
	ptx, err := d.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fail(err)
	}
	defer ptx.Rollback(ctx)
	all, err := countStates(ctx, ptx, d.url, dist, arch)
	if err != nil {
		return nil, err
	}
	p := &queue.Page{Counts: all[queue.Pair{Dist: dist, Arch: arch}]}
	if p.Counts == nil {
		p.Counts = map[queue.State]int{}
	}
	for st, n := range p.Counts {
		if q.State == "" || st == q.State {
			p.Total += n
		}
	}
	names, err := pageNames(ctx, ptx, q, args)
	if err != nil {
		return fail(err)
	}
	recs := make(map[string]*queue.Record, len(names))
	rows, err := ptx.Query(ctx, "SELECT "+recordColumns+", rev FROM wb_records WHERE dist = $1 AND arch = $2 AND package = ANY($3)", dist, arch, names)
	if err != nil {
		return fail(err)
	}
	for rows.Next() {
		r, _, err := scanRecord(rows)
		if err != nil {
			rows.Close()
			return fail(err)
		}
		recs[r.Package] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	ahead := map[string]int{}
	for _, r := range recs {
		if r.State == queue.NeedsBuild {
			ahead[r.Package] = -1
		}
	}
	if len(ahead) > 0 {
		order, err := selectNames(ctx, ptx, "SELECT package FROM wb_records WHERE dist = @dist AND arch = @arch AND state = 'Needs-Build' ORDER BY "+prioOrder(), args)
		if err != nil {
			return fail(err)
		}
		for i, name := range order {
			if _, ok := ahead[name]; ok {
				ahead[name] = i
			}
		}
	}
	for _, name := range names {
		r := recs[name]
		if r == nil {
			return fail(fmt.Errorf("%s: listed, then not found", name))
		}
		n, ok := ahead[name]
		if !ok {
			n = -1
		}
		p.Rows = append(p.Rows, queue.Listed{Prioritized: queue.Prioritized{Record: r, CalPrio: queue.CalPrio(r, q.Now), Days: queue.StateDays(r, q.Now)}, Ahead: n})
	}
	return p, nil
}

// selectNames are the packages sql selects, in its order.
func selectNames(ctx context.Context, ptx pgx.Tx, sql string, args pgx.NamedArgs) ([]string, error) {
	rows, err := ptx.Query(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	var names []string
	var name string
	if _, err := pgx.ForEachRow(rows, []any{&name}, func() error {
		names = append(names, name)
		return nil
	}); err != nil {
		return nil, err
	}
	return names, nil
}

// pageNames are the names of the page q of the list, in order: ordered
// and cut by the database for OrderPrio, else read with their sort key
// (sortKeySQL) and ordered and cut here.
func pageNames(ctx context.Context, ptx pgx.Tx, q queue.PageQuery, args pgx.NamedArgs) ([]string, error) {
	const list = "FROM wb_records WHERE dist = @dist AND arch = @arch AND (@state = '' OR state = @state)"
	if q.Order == queue.OrderPrio {
		limit := ""
		if q.Limit > 0 {
			limit, args["limit"] = " LIMIT @limit", q.Limit
		}
		return selectNames(ctx, ptx, "SELECT package "+list+" ORDER BY "+prioOrder()+" OFFSET @offset"+limit, args)
	}
	sql := "SELECT package, " + sortKeySQL[q.Order] + " " + list
	if q.Order == queue.OrderName {
		// In an index's order, which is the order here under a collation
		// of bytes, and near it under others: less left to sort here.
		sql += " ORDER BY package"
	}
	rows, err := ptx.Query(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	type keyed struct {
		key  int64
		name string
	}
	var all []keyed
	var k keyed
	if _, err := pgx.ForEachRow(rows, []any{&k.name, &k.key}, func() error {
		all = append(all, k)
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b keyed) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	from, to := min(max(q.Offset, 0), len(all)), len(all)
	if q.Limit > 0 {
		to = min(from+q.Limit, len(all))
	}
	names := make([]string, 0, to-from)
	for _, k := range all[from:to] {
		names = append(names, k.name)
	}
	return names, nil
}

// Digests implements queue.Digester.
func (d *DB) Digests() (map[queue.Pair]*queue.Digest, error) {
	out := map[queue.Pair]*queue.Digest{}
	_, _, err := d.DigestsAfter(out, "")
	return out, err
}

// DigestsAfter implements queue.DigestFollower, in one snapshot: the
// transactions committed after the snapshot pos grouped by queue, the
// state the package's transaction before left it in (the window over the
// package's transactions when reading all; a step back in its index for
// each new one), the new state, the user and the day. The position is the
// snapshot read in, always final: a history row belongs to the
// transaction that wrote it (its xid), so a row whose transaction was in
// progress at pos, or began after it, is read the next time, whatever
// order the ids were handed out in; a position from before schema 5 (an
// id) reads everything again.
func (d *DB) DigestsAfter(ds map[queue.Pair]*queue.Digest, pos string) (string, bool, error) {
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("database %s: digest of the history: %w", d.url, err)
	}
	ctx := context.Background()
	ptx, err := d.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fail(err)
	}
	defer ptx.Rollback(ctx)
	var snap string
	if err := ptx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return fail(err)
	}
	sql := `SELECT dist, arch, prev, to_state, wb_user, max(time), count(*) FROM (
			SELECT dist, arch, to_state, wb_user, time,
				coalesce(lag(to_state) OVER (PARTITION BY dist COLLATE "C", arch COLLATE "C", package COLLATE "C" ORDER BY id), from_state) AS prev
			FROM wb_history) h
		GROUP BY dist, arch, prev, to_state, wb_user, floor(time / 86400.0)`
	var args []any
	if strings.Count(pos, ":") == 2 {
		args = []any{pos}
		sql = `SELECT dist, arch, prev, to_state, wb_user, max(time), count(*) FROM (
				SELECT dist, arch, to_state, wb_user, time, coalesce((SELECT b.to_state FROM wb_history b
					WHERE b.dist = h.dist AND b.arch = h.arch AND b.package = h.package AND b.id < h.id
					ORDER BY b.id DESC LIMIT 1), from_state) AS prev
				FROM wb_history h WHERE xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(xid, $1::pg_snapshot)) h
			GROUP BY dist, arch, prev, to_state, wb_user, floor(time / 86400.0)`
	}
	rows, err := ptx.Query(ctx, sql, args...)
	if err != nil {
		return fail(err)
	}
	var p queue.Pair
	var prev, to, user string
	var last int64
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&p.Dist, &p.Arch, &prev, &to, &user, &last, &n}, func() error {
		dg := ds[p]
		if dg == nil {
			dg = queue.NewDigest()
			ds[p] = dg
		}
		dg.AddCount(queue.State(prev), queue.State(to), user, last, n)
		return nil
	}); err != nil {
		return fail(err)
	}
	return snap, true, nil
}

// Mark implements queue.Marker: the database's snapshot (the next
// transaction id and those in progress), which any write to the cluster
// changes: one that begins, or one in progress that ends.
func (d *DB) Mark() (string, error) {
	var mark string
	if err := d.conn.QueryRow(context.Background(), "SELECT pg_current_snapshot()::text").Scan(&mark); err != nil {
		return "", fmt.Errorf("database %s: snapshot: %w", d.url, err)
	}
	return mark, nil
}

// HistoryMark implements queue.Digester: the newest transaction's id,
// and while any write is in progress the snapshot too (a transaction that
// logged lower ids than one that committed before it shows when it ends).
func (d *DB) HistoryMark() (string, error) {
	var id int64
	var snap string
	if err := d.conn.QueryRow(context.Background(), "SELECT coalesce(max(id), 0), pg_current_snapshot()::text FROM wb_history").Scan(&id, &snap); err != nil {
		return "", fmt.Errorf("database %s: history mark: %w", d.url, err)
	}
	mark := strconv.FormatInt(id, 10)
	if !strings.HasSuffix(snap, ":") {
		mark += " " + snap
	}
	return mark, nil
}

// The optional capabilities of a Store that a PostgreSQL database has.
var (
	_ queue.Store          = (*DB)(nil)
	_ queue.Lister         = (*DB)(nil)
	_ queue.Marker         = (*DB)(nil)
	_ queue.StateCounter   = (*DB)(nil)
	_ queue.Digester       = (*DB)(nil)
	_ queue.DigestFollower = (*DB)(nil)
)

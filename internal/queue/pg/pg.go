// Package pg is the wanna-build queue Store on PostgreSQL, for a network of
// build hosts sharing one queue.
//
// Layout (schema.go): wb_records holds one row per (dist, arch, package),
// a column per queue.Record field plus rev, a counter bumped by every
// change; wb_history holds the transactions; wb_logs the build logs
// (logs.go); wb_state_counts the packages of each queue by state
// (counts.go); wb_revisions and wb_required_revisions the builders'
// machine revisions and those the queues require (revisions.go). The
// program creates and migrates the schema itself.
//
// Concurrency: no table or suite lock. A transaction reads rows without
// locking them and remembers each row's rev; a write is a conditional
// update (… WHERE rev = the rev read), so of two transactions changing the
// same package exactly one wins and the other is rolled back and run
// again from the start on the new state (Update's fn must therefore be
// safe to run more than once). A package written without being read is
// read just before its write (or known missing after a read of the whole
// queue), so every write knows the state it replaces: each transaction
// adds its changes of the counts by state (counts.go). Writes are sent
// in one pipeline before the next read and at the commit.
//
// Roles: the schema's owner is the admin. Every other role that may
// connect is a builder: it reads everything, appends history, and may
// change a package only while the package is its own or Needs-Build, and
// never to Not-For-Us; it cannot add or remove packages, so merge and
// forget need the admin (row-level security in schema.go); it reports
// only its own machine revisions, and only the admin requires one.
package pg

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"buildd/internal/queue"
)

// IsURL reports whether a wanna_build_db value names a PostgreSQL database.
func IsURL(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// ErrConflict is what a transaction returns when it lost to a concurrent
// change of the same package more than maxAttempts times.
var ErrConflict = errors.New("changed concurrently, try again")

// ErrRefused is a change the database's row-level security refused: the
// package is another builder's, or the change needs the admin role.
var ErrRefused = queue.ErrRefused

const maxAttempts = 20

// DB is an open queue: a pool of connections (at most Options.MaxConns),
// safe for concurrent use and meant to be kept for the process's life.
type DB struct {
	conn      *pgxpool.Pool
	listen    *pgx.ConnConfig // for Announce's connection of its own
	url       string          // without the password, for messages
	listenURL string          // Options.ListenURL without the password; "" when it is url
	readOnly  bool
	builder   bool // the role is a builder: the database logs and counts its changes (builder.go)
}

// Options of Open.
type Options struct {
	ReadOnly bool
	Timeout  time.Duration // connecting and waiting for the schema lock
	MaxConns int           // connections the pool keeps at most; 0 is 4
	// ListenURL is the URL of Announce's LISTEN connection, when the pool's
	// URL goes through a transaction pooler (pgbouncer), where a session
	// is not kept: the same database, reached directly. "" is the pool's.
	ListenURL string
}

// Open connects to the database at url and makes sure its schema is the
// one this program knows: the admin (the schema's owner, or a role that
// may create it) creates or migrates it; any other role gets an error
// when it is not current.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("cannot open database %s: %v", Redact(url), err)
	}
	pcfg.ConnConfig.ConnectTimeout = opt.Timeout
	// A command runs each statement a few times at most: one round trip
	// each (the extended protocol without a prepare) costs less than
	// preparing it first.
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pcfg.MaxConns = int32(opt.MaxConns)
	if pcfg.MaxConns <= 0 {
		pcfg.MaxConns = 4
	}
	d := &DB{url: Redact(url), readOnly: opt.ReadOnly, listen: pcfg.ConnConfig.Copy()}
	if opt.ListenURL != "" && opt.ListenURL != url {
		if d.listen, err = pgx.ParseConfig(opt.ListenURL); err != nil {
			return nil, fmt.Errorf("cannot open database %s: its listen URL %s: %v", d.url, Redact(opt.ListenURL), err)
		}
		d.listen.ConnectTimeout = opt.Timeout
		d.listenURL = Redact(opt.ListenURL)
	}
	if d.conn, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("cannot open database %s: %v", d.url, err)
	}
	admin, err := d.migrate(ctx, opt.Timeout)
	if err != nil {
		d.conn.Close()
		return nil, fmt.Errorf("database %s: %w", d.url, err)
	}
	d.builder = !admin
	return d, nil
}

// Redact drops the password from a URL for messages.
func Redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil || cfg.Password == "" {
		return url
	}
	return strings.Replace(url, ":"+cfg.Password+"@", ":xxxxx@", 1)
}

// URL is the database's URL without its password.
func (d *DB) URL() string { return d.url }

// Admin reports whether this connection's role owns the schema.
func (d *DB) Admin() bool { return !d.builder }

// Conn is the pool, for the tests' own SQL.
func (d *DB) Conn() *pgxpool.Pool { return d.conn }

// Close closes the pool's connections.
func (d *DB) Close() error {
	d.conn.Close()
	return nil
}

// View implements queue.Store.
func (d *DB) View(dist, arch string, fn func(queue.Tx) error) error {
	ctx := context.Background()
	ptx, err := d.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer ptx.Rollback(ctx)
	return fn(&tx{ctx: ctx, ptx: ptx, dist: dist, arch: arch})
}

// Pairs implements queue.Store.
func (d *DB) Pairs() ([]queue.Pair, error) {
	ctx := context.Background()
	// One step of the primary key's index from each pair to the next,
	// not a read of every row.
	rows, err := d.conn.Query(ctx, `WITH RECURSIVE p AS (
			(SELECT dist, arch FROM wb_records ORDER BY dist, arch LIMIT 1)
			UNION ALL
			SELECT n.dist, n.arch FROM p, LATERAL (SELECT dist, arch FROM wb_records r
				WHERE (r.dist, r.arch) > (p.dist, p.arch) ORDER BY dist, arch LIMIT 1) n)
		SELECT dist, arch FROM p ORDER BY dist COLLATE "C", arch COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", d.url, err)
	}
	defer rows.Close()
	var pairs []queue.Pair
	for rows.Next() {
		var p queue.Pair
		if err := rows.Scan(&p.Dist, &p.Arch); err != nil {
			return nil, fmt.Errorf("database %s: %w", d.url, err)
		}
		pairs = append(pairs, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("database %s: %w", d.url, err)
	}
	return pairs, nil
}

// Update implements queue.Store. fn runs again, from the start, when a
// concurrent transaction changed a package it changes.
func (d *DB) Update(dist, arch string, fn func(queue.Tx) error) error {
	if d.readOnly {
		return queue.ErrReadOnly
	}
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		err := d.update(ctx, dist, arch, fn)
		if !errors.Is(err, errRetry) {
			return err
		}
		if attempt == maxAttempts {
			return ErrConflict
		}
		time.Sleep(time.Duration(rand.IntN(attempt*5)+1) * time.Millisecond)
	}
}

var errRetry = errors.New("retry")

func (d *DB) update(ctx context.Context, dist, arch string, fn func(queue.Tx) error) error {
	ptx, err := d.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer ptx.Rollback(ctx)
	t := &tx{ctx: ctx, ptx: ptx, dist: dist, arch: arch, writable: true, builder: d.builder, revs: map[string]seen{}, pending: map[string]*write{}}
	if err := fn(t); err != nil {
		return err
	}
	if err := t.flush(); err != nil {
		return err
	}
	if t.notify {
		if _, err := ptx.Exec(ctx, "SELECT pg_notify($1, $2)", NotifyChannel, dist+"/"+arch); err != nil {
			return err
		}
	}
	return ptx.Commit(ctx)
}

// NotifyChannel is the channel of the queue's notifications
// (queue.Notification): a transaction that leaves a package in Needs-Build
// notifies "DIST/ARCH"; one that takes a Building package from its
// builder (another role's: a give-back, a failure, a forget, an ended
// lease) notifies "DIST/ARCH/BUILDER" for each builder.
const NotifyChannel = "wanna_build_needs_build"

// seen is a row as this transaction read it: its rev (-1: the row was
// not there), state and builder.
type seen struct {
	rev     int64
	state   queue.State
	builder string
}

// write is a change not yet sent: a record to store, or a deletion.
type write struct {
	rec  *queue.Record // nil: delete
	was  seen          // the row it replaces
	read bool          // whether was is known: read in this transaction
}

type tx struct {
	ctx        context.Context
	ptx        pgx.Tx
	dist, arch string
	writable   bool
	builder    bool            // the database logs and counts the writes (builder.go)
	revs       map[string]seen // each row read or written
	all        bool            // the whole queue was read: a row not in revs was not there
	pending    map[string]*write
	order      []string             // pending names in the order written
	hist       []*queue.Transaction // pending history
	notify     bool
}

func (t *tx) Writable() bool { return t.writable }

const recordColumns = "package, version, state, section, priority, installed_version, previous_state, state_change, " +
	"notes, builder, failed, old_failed, binary_nmu_version, binary_nmu_changelog, buildpri, permbuildpri, " +
	"depends, bd_problem, build_time, success_time, extra_depends, extra_conflicts, lease_until, lease_renewed"

// nColumns is the number of recordColumns.
var nColumns = len(strings.Split(recordColumns, ", "))

func scanRecord(row pgx.Row) (*queue.Record, int64, error) {
	r := &queue.Record{}
	var rev int64
	var state, prev string
	err := row.Scan(&r.Package, &r.Version, &state, &r.Section, &r.Priority, &r.InstalledVersion, &prev, &r.StateChange,
		&r.Notes, &r.Builder, &r.Failed, &r.OldFailed, &r.BinNMU, &r.BinNMUChangelog, &r.BuildPri, &r.PermBuildPri,
		&r.Depends, &r.BDProblem, &r.BuildTime, &r.SuccessTime, &r.ExtraDepends, &r.ExtraConflicts, &r.LeaseUntil, &r.LeaseRenewed, &rev)
	r.State, r.PreviousState = queue.State(state), queue.State(prev)
	return r, rev, err
}

func recordArgs(r *queue.Record) []any {
	return []any{r.Package, r.Version, string(r.State), r.Section, r.Priority, r.InstalledVersion, string(r.PreviousState), r.StateChange,
		r.Notes, r.Builder, r.Failed, r.OldFailed, r.BinNMU, r.BinNMUChangelog, r.BuildPri, r.PermBuildPri,
		r.Depends, r.BDProblem, r.BuildTime, r.SuccessTime, r.ExtraDepends, r.ExtraConflicts, r.LeaseUntil, r.LeaseRenewed}
}

func (t *tx) Get(name string) (*queue.Record, error) {
	if w, ok := t.pending[name]; ok {
		if w.rec == nil {
			return nil, nil
		}
		c := *w.rec
		return &c, nil
	}
	row := t.ptx.QueryRow(t.ctx, "SELECT "+recordColumns+", rev FROM wb_records WHERE dist = $1 AND arch = $2 AND package = $3", t.dist, t.arch, name)
	r, rev, err := scanRecord(row)
	if errors.Is(err, pgx.ErrNoRows) {
		t.remember(name, seen{rev: -1})
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	t.remember(name, seen{rev, r.State, r.Builder})
	return r, nil
}

func (t *tx) remember(name string, s seen) {
	if t.writable {
		if _, ok := t.revs[name]; !ok {
			t.revs[name] = s
		}
	}
}

func (t *tx) stage(name string, rec *queue.Record) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	w, ok := t.pending[name]
	if !ok {
		was, read := t.revs[name]
		if !read && t.all {
			was, read = seen{rev: -1}, true
		}
		w = &write{was: was, read: read}
		t.pending[name] = w
		t.order = append(t.order, name)
	}
	w.rec = rec
	if rec != nil && rec.State == queue.NeedsBuild {
		t.notify = true
	}
	if len(t.pending) >= 5000 {
		return t.flush()
	}
	return nil
}

func (t *tx) Put(r *queue.Record) error {
	c := *r
	return t.stage(r.Package, &c)
}

func (t *tx) Delete(name string) error { return t.stage(name, nil) }

// flush sends the pending writes in one pipeline, with their changes of
// the counts by state; the rows written without being read are read
// first. A write that finds the row changed since it was read (or added
// since it was found missing) aborts the transaction for a retry; one
// that the row-level security hides is refused.
func (t *tx) flush() error {
	if len(t.order) == 0 && len(t.hist) == 0 {
		return nil
	}
	names := t.order
	if err := t.readUnread(); err != nil {
		return err
	}
	// A large batch runs the same few statements many times: prepared once
	// (by name) instead of parsed for every row. Only by the admin, which
	// connects directly: a builder's commands may go through a transaction
	// pooler (pgbouncer), where a statement prepared in one transaction is
	// not there in the next, which pgx would take as prepared.
	stmt := func(sql string) string { return sql }
	if !t.builder && len(names)+len(t.hist) >= 50 {
		stmt = func(sql string) string { return preparedName[sql] }
		for sql, name := range preparedName {
			if _, err := t.ptx.Conn().Prepare(t.ctx, name, sql); err != nil {
				return err
			}
		}
	}
	b := &pgx.Batch{}
	var sent []string
	counts := stateCounts{}
	taken := map[string]bool{} // builders whose Building package a write takes from them
	hist := t.hist
	var said map[string]*queue.Transaction
	if t.builder {
		var err error
		if said, err = t.builderHistory(); err != nil {
			return err
		}
		hist = nil
	}
	for _, name := range names {
		w := t.pending[name]
		if w.rec == nil && w.was.rev == -1 {
			continue // deleting what was not there
		}
		sent = append(sent, name)
		counts.replace(w.was, w.rec)
		if w.was.state == queue.Building && w.was.builder != "" && (w.rec == nil || w.rec.State != queue.Building || w.rec.Builder != w.was.builder) {
			taken[w.was.builder] = true
		}
		if t.builder {
			tr := said[name]
			if tr == nil {
				tr = &queue.Transaction{}
			}
			b.Queue(stmt(sqlSay), tr.Action, tr.RealUser)
		}
		args := []any{t.dist, t.arch}
		switch {
		case w.rec == nil:
			b.Queue(stmt(sqlDelete), append(args, name, w.was.rev)...)
		case w.was.rev >= 0:
			b.Queue(stmt(sqlUpdate), append(append(args, recordArgs(w.rec)...), w.was.rev)...)
		default:
			b.Queue(stmt(sqlInsert), append(args, recordArgs(w.rec)...)...)
		}
	}
	for _, tr := range hist {
		b.Queue(stmt(sqlHistory), t.dist, t.arch, tr.Package, tr.Version, tr.Action, string(tr.From), string(tr.To), tr.RealUser, tr.User, tr.Time)
	}
	counted := !t.builder && counts.queue(b, t.dist, t.arch)
	// The builders whose Building package this takes from them are told
	// at the commit; not of their own change (a build's result).
	// PostgreSQL tells a payload once per transaction.
	notified := slices.Sorted(maps.Keys(taken))
	for _, builder := range notified {
		b.Queue(sqlNotifyTaken, NotifyChannel, t.dist+"/"+t.arch+"/"+builder, builder)
	}
	res := t.ptx.SendBatch(t.ctx, b)
	lost := ""
	for _, name := range sent {
		if t.builder {
			if _, err := res.Exec(); err != nil {
				res.Close()
				return t.dbError(name, err)
			}
		}
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return t.dbError(name, err)
		}
		if tag.RowsAffected() == 0 && lost == "" {
			lost = name
		}
	}
	for _, tr := range hist {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return t.dbError(tr.Package, err)
		}
	}
	if counted {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("count the states of %s/%s: %w", t.dist, t.arch, err)
		}
	}
	for _, builder := range notified {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("notify %s of its packages of %s/%s taken: %w", builder, t.dist, t.arch, err)
		}
	}
	t.hist = t.hist[:0]
	if err := res.Close(); err != nil {
		return err
	}
	if lost != "" {
		return t.lost(lost, t.pending[lost].was.rev)
	}
	for _, name := range names {
		w := t.pending[name]
		delete(t.pending, name)
		switch {
		case w.rec == nil:
			t.revs[name] = seen{rev: -1}
		case w.was.rev >= 0:
			t.revs[name] = seen{w.was.rev + 1, w.rec.State, w.rec.Builder}
		default:
			t.revs[name] = seen{0, w.rec.State, w.rec.Builder} // inserted: rev's default
		}
	}
	t.order = t.order[:0]
	return nil
}

// readUnread reads the rev and state of the pending rows not read yet,
// in one query: a row not there is to be inserted.
func (t *tx) readUnread() error {
	var unread []string
	for _, name := range t.order {
		if w := t.pending[name]; !w.read {
			unread = append(unread, name)
		}
	}
	if len(unread) == 0 {
		return nil
	}
	found := make(map[string]seen, len(unread))
	rows, err := t.ptx.Query(t.ctx, "SELECT package, rev, state, builder FROM wb_records WHERE dist = $1 AND arch = $2 AND package = ANY($3)", t.dist, t.arch, unread)
	if err != nil {
		return fmt.Errorf("read %d packages of %s/%s before writing them: %w", len(unread), t.dist, t.arch, err)
	}
	var name, state, builder string
	var rev int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &rev, &state, &builder}, func() error {
		found[name] = seen{rev, queue.State(state), builder}
		return nil
	}); err != nil {
		return fmt.Errorf("read %d packages of %s/%s before writing them: %w", len(unread), t.dist, t.arch, err)
	}
	for _, name := range unread {
		s, ok := found[name]
		if !ok {
			s = seen{rev: -1}
		}
		t.remember(name, s)
		w := t.pending[name]
		w.was, w.read = s, true
	}
	return nil
}

// The statements of flush: a deletion and an update, each conditional on
// the rev read, and an insert of a row found missing.
var (
	sqlDelete = "DELETE FROM wb_records WHERE dist = $1 AND arch = $2 AND package = $3 AND rev = $4"
	sqlUpdate = "UPDATE wb_records SET (" + recordColumns + ", rev) = (" + placeholders(3, nColumns) + ", rev + 1) " +
		"WHERE dist = $1 AND arch = $2 AND package = $3 AND rev = $" + strconv.Itoa(nColumns+3)
	sqlInsert  = "INSERT INTO wb_records (dist, arch, " + recordColumns + ") VALUES (" + placeholders(1, nColumns+2) + ") ON CONFLICT DO NOTHING"
	sqlHistory = "INSERT INTO wb_history (dist, arch, package, version, action, from_state, to_state, real_user, wb_user, time) " +
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	sqlSay         = "SELECT set_config('wb.action', $1, true), set_config('wb.real_user', $2, true)"
	sqlNotifyTaken = "SELECT pg_notify($1, $2) WHERE $3::text <> session_user"
)

// preparedName names the statements of flush for large batches.
var preparedName = map[string]string{sqlDelete: "wb_delete", sqlUpdate: "wb_update", sqlInsert: "wb_insert", sqlHistory: "wb_history", sqlSay: "wb_say"}

func placeholders(from, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(p, ", ")
}

// lost tells a write that changed no row apart: the row changed since it
// was read, or appeared since it was found missing (a retry), or the
// row-level security hid an unchanged row (refused).
func (t *tx) lost(name string, readRev int64) error {
	var rev int64
	err := t.ptx.QueryRow(t.ctx, "SELECT rev FROM wb_records WHERE dist = $1 AND arch = $2 AND package = $3", t.dist, t.arch, name).Scan(&rev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		rev = -1
	case err != nil:
		return t.dbError(name, err)
	}
	if rev == readRev {
		return fmt.Errorf("%s: %w", name, ErrRefused)
	}
	return errRetry
}

func (t *tx) dbError(name string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42501": // insufficient_privilege, or a row-level security check
			return fmt.Errorf("%s: %w (%s)", name, ErrRefused, pe.Message)
		case "40001", "40P01", "23505": // serialization failure, deadlock, unique violation
			return errRetry
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (t *tx) query(where string, args []any, fn func(*queue.Record) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	rows, err := t.ptx.Query(t.ctx, "SELECT "+recordColumns+", rev FROM wb_records WHERE dist = $1 AND arch = $2"+where+" ORDER BY package",
		append([]any{t.dist, t.arch}, args...)...)
	if err != nil {
		return err
	}
	var recs []*queue.Record
	for rows.Next() {
		r, rev, err := scanRecord(rows)
		if err != nil {
			rows.Close()
			return err
		}
		t.remember(r.Package, seen{rev, r.State, r.Builder})
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if where == "" {
		t.all = true
	}
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ForEach(fn func(*queue.Record) error) error { return t.query("", nil, fn) }

func (t *tx) ForEachInState(st queue.State, fn func(*queue.Record) error) error {
	return t.query(" AND state = $3", []any{string(st)}, fn)
}

func (t *tx) Count(st queue.State) (int, error) {
	if err := t.flush(); err != nil {
		return 0, err
	}
	var n int
	err := t.ptx.QueryRow(t.ctx, "SELECT count(*) FROM wb_records WHERE dist = $1 AND arch = $2 AND state = $3", t.dist, t.arch, string(st)).Scan(&n)
	return n, err
}

func (t *tx) Log(tr *queue.Transaction) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	c := *tr
	t.hist = append(t.hist, &c)
	return nil
}

func (t *tx) History(name string, fn func(*queue.Transaction) error) error {
	if err := t.flush(); err != nil {
		return err
	}
	q := "SELECT package, version, action, from_state, to_state, real_user, wb_user, time FROM wb_history WHERE dist = $1 AND arch = $2"
	args := []any{t.dist, t.arch}
	if name != "" {
		q += " AND package = $3"
		args = append(args, name)
	}
	rows, err := t.ptx.Query(t.ctx, q+" ORDER BY id", args...)
	if err != nil {
		return err
	}
	var list []*queue.Transaction
	for rows.Next() {
		tr := &queue.Transaction{}
		var from, to string
		if err := rows.Scan(&tr.Package, &tr.Version, &tr.Action, &from, &to, &tr.RealUser, &tr.User, &tr.Time); err != nil {
			rows.Close()
			return err
		}
		tr.From, tr.To = queue.State(from), queue.State(to)
		list = append(list, tr)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, tr := range list {
		if err := fn(tr); err != nil {
			return err
		}
	}
	return nil
}

// Announce implements queue.Announcer: it waits on NotifyChannel, on a
// connection of its own (LISTEN needs a session; to Options.ListenURL
// when given, which must reach the pool's database and server), and calls
// fn with each notification (NotifyChannel's payloads), until ctx ends or
// the connection fails; it calls ready once it listens.
func (d *DB) Announce(ctx context.Context, ready func(), fn func(queue.Notification)) error {
	where := d.url
	if d.listenURL != "" {
		where = d.listenURL
	}
	conn, err := pgx.ConnectConfig(ctx, d.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %v", where, err)
	}
	defer conn.Close(context.Background())
	if d.listenURL != "" {
		if err := d.sameServer(ctx, conn); err != nil {
			return fmt.Errorf("listen on %s: %w", where, err)
		}
	}
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listen on %s: %v", where, err)
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("listen on %s: %v", where, err)
		}
		if f := strings.SplitN(n.Payload, "/", 3); len(f) >= 2 {
			fn(queue.Notification{Pair: queue.Pair{Dist: f[0], Arch: f[1]}, Builder: strings.Join(f[2:], "")})
		}
	}
}

// sameServer checks that the listen connection reaches the database the
// pool does, on the same running server: a listener elsewhere would hear
// none of the queue's notifications.
func (d *DB) sameServer(ctx context.Context, listen *pgx.Conn) error {
	const q = "SELECT current_database(), pg_postmaster_start_time()"
	var db, listenDB string
	var started, listenStarted time.Time
	if err := d.conn.QueryRow(ctx, q).Scan(&db, &started); err != nil {
		return fmt.Errorf("which server %s reaches: %v", d.url, err)
	}
	if err := listen.QueryRow(ctx, q).Scan(&listenDB, &listenStarted); err != nil {
		return fmt.Errorf("which server it reaches: %v", err)
	}
	if db != listenDB || !started.Equal(listenStarted) {
		return fmt.Errorf("it reaches database %s of a server started %s, but the queue %s is database %s of a server started %s: not the queue's notifications",
			listenDB, listenStarted.Format(time.RFC3339Nano), d.url, db, started.Format(time.RFC3339Nano))
	}
	return nil
}

var _ queue.Announcer = (*DB)(nil)

package pg

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"buildd/internal/queue"
)

// The build logs are rows of wb_logs (schema.go, version 2), the gzip
// stream in its data column.

// logChunk is how much of a log CopyLog reads at once.
const logChunk = 1 << 20

// PutLog implements queue.LogStore: one transaction inserts the log
// (nothing when its key is there already) and deletes the expired ones.
// A builder role may insert only its own logs (builder = its role name).
func (d *DB) PutLog(l *queue.BuildLog, gz []byte) error {
	if err := l.Check(); err != nil {
		return err
	}
	if d.readOnly {
		return queue.ErrReadOnly
	}
	fail := func(err error) error {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			err = fmt.Errorf("%w (%s)", ErrRefused, pe.Message)
		}
		return fmt.Errorf("log %s: database %s: %w", l.PkgVersion(), d.url, err)
	}
	ctx := context.Background()
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO wb_logs (package, dist, arch, version, time, builder, status, size, expires, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		l.Package, l.Dist, l.Arch, l.Version, l.Time, l.Builder, l.Status, l.Size, l.Expires, gz); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM wb_logs WHERE expires < extract(epoch FROM now())"); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// Logs implements queue.LogStore.
func (d *DB) Logs(name string) ([]queue.BuildLog, error) {
	ctx := context.Background()
	rows, err := d.conn.Query(ctx, `SELECT dist, arch, package, version, time, builder, status, size, octet_length(data), expires
		FROM wb_logs WHERE package = $1 ORDER BY time DESC, dist COLLATE "C", arch COLLATE "C", version COLLATE "C", builder COLLATE "C"`, name)
	if err != nil {
		return nil, fmt.Errorf("logs of %s: database %s: %w", name, d.url, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (queue.BuildLog, error) {
		var l queue.BuildLog
		err := row.Scan(&l.Dist, &l.Arch, &l.Package, &l.Version, &l.Time, &l.Builder, &l.Status, &l.Size, &l.Stored, &l.Expires)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("logs of %s: database %s: %w", name, d.url, err)
	}
	return list, nil
}

// CopyLog implements queue.LogStore, reading the log in slices of
// logChunk bytes in one snapshot, so no more of it than that is held in
// memory.
func (d *DB) CopyLog(l *queue.BuildLog, w io.Writer) error {
	fail := func(err error) error { return fmt.Errorf("log %s: %w", l.PkgVersion(), err) }
	ctx := context.Background()
	tx, err := d.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(ctx)
	const where = " FROM wb_logs WHERE package = $1 AND dist = $2 AND arch = $3 AND version = $4 AND time = $5 AND builder = $6"
	key := []any{l.Package, l.Dist, l.Arch, l.Version, l.Time, l.Builder}
	var size int64
	err = tx.QueryRow(ctx, "SELECT octet_length(data)"+where, key...).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return fail(queue.ErrNoLog)
	}
	if err != nil {
		return fail(err)
	}
	var chunk []byte
	for off := int64(0); off < size; off += logChunk {
		if err := tx.QueryRow(ctx, "SELECT substring(data FROM $7 FOR $8)"+where, append(key, off+1, logChunk)...).Scan(&chunk); err != nil {
			return fail(err)
		}
		if _, err := w.Write(chunk); err != nil {
			return fail(err)
		}
	}
	return nil
}

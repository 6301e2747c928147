package store

import (
	"context"
	"sync"

	"buildd/internal/queue"
)

// Handle is a queue a long-running process keeps for its life (buildd, the
// status web, a port): a PostgreSQL database is opened once, on first use,
// and its pool of connections kept; a bbolt file is opened for each use
// and closed after it, so its lock is never held between uses (other
// processes share the file). Callers never ask which is behind it.
type Handle struct {
	spec string
	opt  Options

	mu   sync.Mutex
	kept queue.Store // the PostgreSQL pool, once opened
}

// NewHandle is the queue spec names, opened on first use.
func NewHandle(spec string, opt Options) *Handle { return &Handle{spec: spec, opt: opt} }

// Name is the queue as messages show it (see Name).
func (h *Handle) Name() string { return Name(h.spec) }

// With runs fn on the queue, read-only when readOnly (or the handle's
// Options are). fn must not keep the Store.
func (h *Handle) With(readOnly bool, fn func(queue.Store) error) error {
	if !isPG(h.spec) {
		opt := h.opt
		opt.ReadOnly = opt.ReadOnly || readOnly
		db, err := Open(h.spec, opt)
		if err != nil {
			return err
		}
		defer db.Close()
		return fn(db)
	}
	db, err := h.pool()
	if err != nil {
		return err
	}
	return fn(db)
}

// pool opens the PostgreSQL pool once; a failed open is tried again by the
// next use.
func (h *Handle) pool() (queue.Store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kept == nil {
		db, err := Open(h.spec, h.opt)
		if err != nil {
			return nil, err
		}
		h.kept = db
	}
	return h.kept, nil
}

// Shared reports whether the queue is one that the hosts of a network
// share (PostgreSQL), not a host's own bbolt file.
func (h *Handle) Shared() bool { return isPG(h.spec) }

// Announce implements queue.Announcer when the queue can tell of its
// changes (PostgreSQL); otherwise it returns queue.ErrNoNotify.
func (h *Handle) Announce(ctx context.Context, ready func(), fn func(queue.Notification)) error {
	if !isPG(h.spec) {
		return queue.ErrNoNotify
	}
	db, err := h.pool()
	if err != nil {
		return err
	}
	a, ok := db.(queue.Announcer)
	if !ok {
		return queue.ErrNoNotify
	}
	return a.Announce(ctx, ready, fn)
}

// Close closes what the handle keeps.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kept == nil {
		return nil
	}
	err := h.kept.Close()
	h.kept = nil
	return err
}

var _ queue.Announcer = (*Handle)(nil)

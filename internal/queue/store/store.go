// Package store opens the queue that a wanna_build_db value (or --db, or
// $WANNA_BUILD_DB) names: a PostgreSQL database for a postgres:// or
// postgresql:// URL, a bbolt file for anything else.
package store

import (
	"context"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/bolt"
	"buildd/internal/queue/pg"
)

// DefaultTimeout is how long opening waits for a lock or a connection.
const DefaultTimeout = bolt.DefaultTimeout

// Options of Open.
type Options struct {
	ReadOnly bool
	Timeout  time.Duration // 0 is DefaultTimeout
	MaxConns int           // a PostgreSQL pool's connections at most; 0 is 4
	// Listen is the PostgreSQL URL Announce's LISTEN connection uses, when
	// spec goes through a transaction pooler (wanna_build_listen_db); ""
	// is spec.
	Listen string
}

// Open opens the queue spec names. Close it at the end of the command.
func Open(spec string, opt Options) (queue.Store, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if isPG(spec) {
		ctx, cancel := context.WithTimeout(context.Background(), opt.Timeout)
		defer cancel()
		return pg.Open(ctx, spec, pg.Options{ReadOnly: opt.ReadOnly, Timeout: opt.Timeout, MaxConns: opt.MaxConns, ListenURL: opt.Listen})
	}
	return bolt.Open(spec, bolt.Options{ReadOnly: opt.ReadOnly, Timeout: opt.Timeout})
}

// isPG reports whether spec names a PostgreSQL database.
func isPG(spec string) bool { return pg.IsURL(spec) }

// Name is spec as messages show it: a URL without its password.
func Name(spec string) string {
	if isPG(spec) {
		return pg.Redact(spec)
	}
	return spec
}

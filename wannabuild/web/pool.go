package web

import (
	"errors"
	"sync"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/store"
)

// maxIdle is the most PostgreSQL connections the server keeps open
// between requests.
const maxIdle = 4

// pool keeps the server's PostgreSQL connections open between requests,
// so a page costs no connection and no schema check. A bbolt file is
// never kept: it is opened for each request, so its lock is not held
// between requests.
type pool struct {
	mu   sync.Mutex
	idle []*pg.DB
}

// withStore opens the queue read-only for one request, or takes an open
// PostgreSQL connection, and runs fn. A connection goes back to the pool
// unless fn failed with something else than a request's own error.
func (s *Server) withStore(fn func(db queue.Store) error) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = store.DefaultTimeout
	}
	if !pg.IsURL(s.DB) {
		db, err := store.Open(s.DB, store.Options{ReadOnly: true, Timeout: timeout})
		if err != nil {
			return err
		}
		defer db.Close()
		return fn(db)
	}
	db, err := s.pool.get(s.DB, timeout)
	if err != nil {
		return err
	}
	err = fn(db)
	var he *httpError
	if err == nil || errors.As(err, &he) {
		s.pool.put(db)
	} else {
		db.Close()
	}
	return err
}

// get takes an idle connection or opens one.
func (p *pool) get(url string, timeout time.Duration) (*pg.DB, error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		db := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !db.Conn().IsClosed() {
			p.mu.Unlock()
			return db, nil
		}
		db.Close()
	}
	p.mu.Unlock()
	db, err := store.Open(url, store.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	return db.(*pg.DB), nil
}

// put keeps db for the next request, or closes it when enough are kept.
func (p *pool) put(db *pg.DB) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < maxIdle && !db.Conn().IsClosed() {
		p.idle = append(p.idle, db)
		return
	}
	db.Close()
}

// Close closes the connections the server keeps.
func (s *Server) Close() error {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	var err error
	for _, db := range s.pool.idle {
		err = errors.Join(err, db.Close())
	}
	s.pool.idle = nil
	return err
}

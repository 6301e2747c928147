package web

import (
	"sync"
	"time"

	"buildd/internal/queue"
)

// The server keeps each page as sent and the metrics' data while the
// store's mark (queue.Marker) stays, for at most cacheTTL (calprio and
// ages move with the clock); each queue's health (health.go), which
// pages and metrics share, is kept the same way in a cache of its own.
// The history's digests are kept apart (depth.go).

// cacheTTL is how long a value is kept at most.
const cacheTTL = time.Minute

// cacheEntries is the most values kept, and maxCachedPage the largest
// page kept: at most 16 MiB of pages.
const (
	cacheEntries  = 64
	maxCachedPage = 256 << 10
)

type cache struct {
	mu      sync.Mutex
	mark    string
	entries map[string]cached
}

type cached struct {
	v  any
	at time.Time
}

// get is the value of key: kept, when mark is the one it was read under,
// else made by fn and kept. Values are shared: nobody changes them.
func (c *cache) get(mark, key string, fn func() (any, error)) (any, error) {
	now := time.Now()
	c.mu.Lock()
	if c.mark != mark {
		c.mark, c.entries = mark, nil
	}
	if e, ok := c.entries[key]; ok && now.Sub(e.at) < cacheTTL {
		c.mu.Unlock()
		return e.v, nil
	}
	c.mu.Unlock()
	v, err := fn()
	if err != nil {
		return nil, err
	}
	if b, ok := v.([]byte); ok && len(b) > maxCachedPage {
		return v, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mark == mark {
		if c.entries == nil {
			c.entries = map[string]cached{}
		}
		if len(c.entries) >= cacheEntries {
			for k, e := range c.entries {
				if now.Sub(e.at) >= cacheTTL || len(c.entries) >= cacheEntries {
					delete(c.entries, k)
				}
			}
		}
		c.entries[key] = cached{v, now}
	}
	return v, nil
}

// cached is the value of key read from db: kept while db's mark
// (queue.Marker) stays, when it has one.
func (s *Server) cached(db queue.Store, key string, fn func() (any, error)) (any, error) {
	return cachedIn(&s.cache, db, key, fn)
}

// cachedIn is cached, kept in c.
func cachedIn(c *cache, db queue.Store, key string, fn func() (any, error)) (any, error) {
	m, ok := db.(queue.Marker)
	if !ok {
		return fn()
	}
	mark, err := m.Mark()
	if err != nil {
		return nil, err
	}
	return c.get(mark, key, fn)
}

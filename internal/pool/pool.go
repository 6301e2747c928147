// Package pool owns how many jobs run at once: a pool of tokens, one per
// running job, each naming its slot, in the manner of the chroot-maint job
// scheduler. The buildd daemon takes tokens for its builds; a job graph
// waits for them.
package pool

import (
	"context"
	"sync"
)

// Pool hands out tokens, one per running job. Each token names a slot
// (0..size-1), the lowest free one, so a job can be told "you are slot 1 of
// 2" and slot-wide resources (a cgroup, a CPU set) can be reused.
type Pool struct {
	mu   sync.Mutex
	size int
	used map[int]bool
	// freed is closed (and forgotten) when a token may have become free:
	// one was released or the pool grew. Acquire waits on it.
	freed chan struct{}
}

// NewPool returns a pool of n tokens (at least 1).
func NewPool(n int) *Pool {
	p := &Pool{used: map[int]bool{}}
	p.Resize(n)
	return p
}

// Token is the authorisation for one job to run. Release it when the job
// is over; releasing twice is harmless.
type Token struct {
	p    *Pool
	slot int
	once sync.Once
}

// Slot is the token's slot number.
func (t *Token) Slot() int { return t.slot }

// Release returns the token to its pool.
func (t *Token) Release() {
	t.once.Do(func() {
		t.p.mu.Lock()
		delete(t.p.used, t.slot)
		t.p.wake()
		t.p.mu.Unlock()
	})
}

// TryAcquire takes a free token, or reports false when all are in use.
func (p *Pool) TryAcquire() (*Token, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.take()
}

// Acquire takes a free token, waiting for one as long as all are in use.
// It returns ctx's error when ctx ends first, also when a token is free
// but ctx had already ended. Waiters are not served in any set order.
func (p *Pool) Acquire(ctx context.Context) (*Token, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p.mu.Lock()
		t, ok := p.take()
		if ok {
			p.mu.Unlock()
			return t, nil
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// take takes the token of the lowest free slot, if the pool has one.
// p.mu is held.
func (p *Pool) take() (*Token, bool) {
	if len(p.used) >= p.size {
		return nil, false
	}
	for s := 0; ; s++ {
		if !p.used[s] {
			p.used[s] = true
			return &Token{p: p, slot: s}, true
		}
	}
}

// wake tells the waiters of Acquire to look again. p.mu is held.
func (p *Pool) wake() {
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// Resize changes the number of tokens (a re-read config). Jobs running
// beyond a smaller size keep their tokens; no new one is given until the
// count falls below the new size.
func (p *Pool) Resize(n int) {
	if n < 1 {
		n = 1
	}
	p.mu.Lock()
	p.size = n
	p.wake()
	p.mu.Unlock()
}

// Size is the number of tokens.
func (p *Pool) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// InUse is the number of tokens held.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// Free is the number of tokens that can be taken now.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.size - len(p.used); f > 0 {
		return f
	}
	return 0
}

// Package pool owns how many builds buildd runs at once: a pool of tokens,
// one per running job, each naming its slot, in the manner of the
// chroot-maint job scheduler.
package pool

import "sync"

// Pool hands out tokens, one per running job. Each token names a slot
// (0..size-1), the lowest free one, so a job can be told "you are slot 1 of
// 2" and slot-wide resources (a cgroup, a CPU set) can be reused.
type Pool struct {
	mu   sync.Mutex
	size int
	used map[int]bool
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
		t.p.mu.Unlock()
	})
}

// TryAcquire takes a free token, or reports false when all are in use.
func (p *Pool) TryAcquire() (*Token, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
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

// Resize changes the number of tokens (a re-read config). Jobs running
// beyond a smaller size keep their tokens; no new one is given until the
// count falls below the new size.
func (p *Pool) Resize(n int) {
	if n < 1 {
		n = 1
	}
	p.mu.Lock()
	p.size = n
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

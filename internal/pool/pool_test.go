package pool

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPool(t *testing.T) {
	p := NewPool(2)
	a, ok := p.TryAcquire()
	if !ok || a.Slot() != 0 {
		t.Fatalf("first token: %v %v", a, ok)
	}
	b, ok := p.TryAcquire()
	if !ok || b.Slot() != 1 {
		t.Fatalf("second token: slot %d %v", b.Slot(), ok)
	}
	if _, ok := p.TryAcquire(); ok {
		t.Fatal("third token given from a pool of 2")
	}
	a.Release()
	a.Release()
	if p.InUse() != 1 || p.Free() != 1 {
		t.Fatalf("after release: in use %d, free %d", p.InUse(), p.Free())
	}
	c, ok := p.TryAcquire()
	if !ok || c.Slot() != 0 {
		t.Fatalf("token after release: slot %d %v; want the lowest free slot 0", c.Slot(), ok)
	}
	p.Resize(1)
	if p.Free() != 0 {
		t.Fatalf("shrunk pool with 2 held has %d free", p.Free())
	}
	b.Release()
	c.Release()
	if p.Free() != 1 || p.Size() != 1 {
		t.Fatalf("free %d size %d", p.Free(), p.Size())
	}
}

// acquired is what a waiting Acquire returned.
type acquired struct {
	tok *Token
	err error
}

// waitingAcquire starts Acquire(ctx) on the full pool p and returns once it
// waits for a token; its result arrives on the channel.
func waitingAcquire(t *testing.T, ctx context.Context, p *Pool) <-chan acquired {
	t.Helper()
	c := make(chan acquired, 1)
	go func() {
		tok, err := p.Acquire(ctx)
		c <- acquired{tok, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		waiting := p.freed != nil
		p.mu.Unlock()
		if waiting {
			return c
		}
		select {
		case a := <-c:
			t.Fatalf("Acquire on a full pool returned %v, %v", a.tok, a.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Acquire never waited")
		}
		runtime.Gosched()
	}
}

// receive is the result of a waiting Acquire, failing t when none comes.
func receive(t *testing.T, c <-chan acquired) acquired {
	t.Helper()
	select {
	case a := <-c:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting Acquire was not woken")
		return acquired{}
	}
}

func TestAcquireWaits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		free     func(p *Pool, held *Token) // frees a token of the full pool
		wantSlot int
	}{
		{"release", func(p *Pool, held *Token) { held.Release() }, 0},
		{"resize", func(p *Pool, held *Token) { p.Resize(2) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPool(1)
			held, _ := p.TryAcquire()
			c := waitingAcquire(t, context.Background(), p)
			tc.free(p, held)
			a := receive(t, c)
			if a.err != nil || a.tok.Slot() != tc.wantSlot {
				t.Fatalf("woken Acquire: %v, %v; want slot %d", a.tok, a.err, tc.wantSlot)
			}
			if p.InUse() != 1+tc.wantSlot {
				t.Fatalf("%d tokens in use", p.InUse())
			}
		})
	}
}

func TestAcquireCancel(t *testing.T) {
	p := NewPool(1)
	held, _ := p.TryAcquire()
	ctx, cancel := context.WithCancel(context.Background())
	c := waitingAcquire(t, ctx, p)
	cancel()
	if a := receive(t, c); !errors.Is(a.err, context.Canceled) || a.tok != nil {
		t.Fatalf("Acquire after cancel: %v, %v", a.tok, a.err)
	}
	held.Release()
	if tok, err := p.Acquire(ctx); err == nil || tok != nil {
		t.Fatalf("Acquire with an ended context and a free token: %v, %v", tok, err)
	}
	if p.InUse() != 0 {
		t.Fatalf("%d tokens in use after cancelled Acquires", p.InUse())
	}
}

func TestPoolConcurrent(t *testing.T) {
	p := NewPool(3)
	var mu sync.Mutex
	running, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			tok, err := p.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			runtime.Gosched()
			mu.Lock()
			running--
			mu.Unlock()
			tok.Release()
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d jobs ran at once with 3 tokens", peak)
	}
	if p.InUse() != 0 {
		t.Fatalf("%d tokens in use after all jobs", p.InUse())
	}
}

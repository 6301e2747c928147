package pool

import (
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

func TestPoolConcurrent(t *testing.T) {
	p := NewPool(3)
	var mu sync.Mutex
	running, peak := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tok, ok := p.TryAcquire()
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				running++
				if running > peak {
					peak = running
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				running--
				mu.Unlock()
				tok.Release()
				return
			}
		}()
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d jobs ran at once with 3 tokens", peak)
	}
}

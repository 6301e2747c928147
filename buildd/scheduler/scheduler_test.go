package scheduler

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

func TestLogName(t *testing.T) {
	at := time.Date(2025, 11, 21, 7, 30, 12, 0, time.UTC)
	for _, c := range []struct{ pkgv, arch, want string }{
		{"hello_1.0-1", "amd64", "hello_1.0-1_amd64-20251121-073012"},
		{"dpkg_1:1.21.22", "arm64", "dpkg_1.21.22_arm64-20251121-073012"},
		{"foo_2.0+b1", "all", "foo_2.0+b1_all-20251121-073012"},
	} {
		if got := LogName(c.pkgv, c.arch, at); got != c.want {
			t.Errorf("LogName(%q, %q) = %q, want %q", c.pkgv, c.arch, got, c.want)
		}
	}
}

func TestCreateLogExclusive(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2025, 11, 21, 7, 30, 12, 0, time.UTC)
	first, err := CreateLog(dir, "hello_1.0-1", "amd64", at)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(first, "first job's log")
	first.Close()

	const n = 20
	names := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := CreateLog(dir, "hello_1.0-1", "amd64", at)
			if err != nil {
				t.Error(err)
				return
			}
			names <- f.Name()
			f.Close()
		}()
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for nm := range names {
		if seen[nm] {
			t.Errorf("log %s handed out twice", nm)
		}
		seen[nm] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct logs for %d jobs", len(seen), n)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "hello_1.0-1_amd64-20251121-073012.build"))
	if string(b) != "first job's log\n" {
		t.Fatalf("first log overwritten: %q", b)
	}
	if _, err := CreateLog(dir, "../evil_1", "amd64", at); err == nil {
		t.Fatal("a package name with a slash made a log")
	}
}

func TestTail(t *testing.T) {
	var long strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&long, "line %d of a long build log\n", i)
	}
	for _, c := range []struct {
		name, text string
		n          int
		want       string
		trimmed    bool
	}{
		{"empty", "", 3, "", false},
		{"short", "a\nb\n", 3, "a\nb\n", false},
		{"exact", "a\nb\nc\n", 3, "a\nb\nc\n", false},
		{"trim", "a\nb\nc\nd\n", 2, "c\nd\n", true},
		{"no final newline", "a\nb\nc", 2, "b\nc", true},
		{"long", long.String(), 2, "line 4999 of a long build log\nline 5000 of a long build log\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "log")
			os.WriteFile(p, []byte(c.text), 0o644)
			got, trimmed, err := Tail(p, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || trimmed != c.trimmed {
				t.Fatalf("Tail = %q, %v; want %q, %v", got, trimmed, c.want, c.trimmed)
			}
		})
	}
}

func TestDivide(t *testing.T) {
	for _, c := range []struct {
		cpus  int
		ram   int64
		slots int
		want  Slice
	}{
		{2, 20 << 20, 2, Slice{1, 10 << 20}},
		{8, 12 << 20, 3, Slice{2, 4 << 20}},
		{2, 8 << 20, 4, Slice{1, 2 << 20}},
		{4, 1 << 20, 0, Slice{4, 1 << 20}},
	} {
		if got := Divide(c.cpus, c.ram, c.slots); got != c.want {
			t.Errorf("Divide(%d, %d, %d) = %+v, want %+v", c.cpus, c.ram, c.slots, got, c.want)
		}
	}
	if r := ReserveKiB(24683520); r != 4<<20 {
		t.Errorf("reserve on 24 GiB: %d", r)
	}
	if r := ReserveKiB(2 << 20); r != 512<<10 {
		t.Errorf("reserve on 2 GiB: %d", r)
	}
}

func TestMemTotal(t *testing.T) {
	for _, c := range []struct {
		file string
		want int64
		err  string
	}{
		{"testdata/meminfo", 24683520, ""},
		{"testdata/meminfo-nototal", 0, "testdata/meminfo-nototal: no MemTotal line"},
		{"testdata/meminfo-bad", 0, `testdata/meminfo-bad:1: bad MemTotal "MemTotal: lots kB"`},
	} {
		got, err := MemTotalKiB(c.file)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %q", c.file, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v", c.file, got, err)
		}
	}
	if s, err := HostSlice(2); err != nil || s.CPUs < 1 || s.RAMKiB <= 0 {
		t.Errorf("HostSlice(2) = %+v, %v", s, err)
	}
}

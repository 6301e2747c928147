package mqueue

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/flock"
)

func TestStoreListRemove(t *testing.T) {
	q := New(filepath.Join(t.TempDir(), "mqueue"))
	var names []string
	for _, body := range []string{"first", "second", "third"} {
		n, err := q.Store(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	got, err := q.List()
	if err != nil || strings.Join(got, " ") != strings.Join(names, " ") {
		t.Fatalf("List %v %v, want arrival order %v", got, err, names)
	}
	if b, _ := q.Read(names[1]); string(b) != "second" {
		t.Errorf("Read %q", b)
	}
	if tmp, _ := os.ReadDir(filepath.Join(q.Dir, "tmp")); len(tmp) != 0 {
		t.Errorf("left in tmp: %v", tmp)
	}
	if err := q.Remove(names[0]); err != nil {
		t.Fatal(err)
	}
	if err := q.Remove(names[0]); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if got, _ := q.List(); len(got) != 2 {
		t.Errorf("after Remove: %v", got)
	}
}

func TestLock(t *testing.T) {
	q := New(filepath.Join(t.TempDir(), "mqueue"))
	q.Init()
	l, err := q.TryLock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.TryLock(); !errors.Is(err, flock.ErrLocked) {
		t.Errorf("second TryLock: %v", err)
	}
	l.Unlock()
	l2, err := q.TryLock()
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()
}

func TestStoreFailure(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mqueue"), nil, 0o644)
	if _, err := New(filepath.Join(dir, "mqueue")).Store(strings.NewReader("x")); err == nil {
		t.Error("stored into a file")
	}
}

func TestArrived(t *testing.T) {
	q := New(t.TempDir())
	before := time.Now()
	n, err := q.Store(strings.NewReader("Subject: x\n\nx\n"))
	if err != nil {
		t.Fatal(err)
	}
	if at, err := q.Arrived(n); err != nil || at.Before(before) || at.After(time.Now()) {
		t.Errorf("Arrived(%s) = %v, %v", n, at, err)
	}
	old := time.Now().Add(-100 * time.Hour).Truncate(time.Second)
	os.WriteFile(filepath.Join(q.Dir, "new", "by-hand"), nil, 0o600)
	os.Chtimes(filepath.Join(q.Dir, "new", "by-hand"), old, old)
	if at, err := q.Arrived("by-hand"); err != nil || !at.Equal(old) {
		t.Errorf("Arrived(by-hand) = %v, %v; want the mtime %v", at, err, old)
	}
}

// xs is an endless mail of x's; read counts the bytes read from it.
type xs struct{ read int64 }

func (x *xs) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	x.read += int64(len(p))
	return len(p), nil
}

// TestStoreSizeCap: a mail up to MaxSize is stored; a larger one is
// ErrTooBig, at most MaxSize+1 bytes of it read, nothing left in tmp/ or
// new/.
func TestStoreSizeCap(t *testing.T) {
	for _, c := range []struct {
		size   int64
		stored bool
	}{
		{0, true},
		{MaxSize, true},
		{MaxSize + 1, false},
		{50 << 20, false},
	} {
		t.Run(strconv.FormatInt(c.size, 10), func(t *testing.T) {
			q := New(filepath.Join(t.TempDir(), "mqueue"))
			src := &xs{}
			n, err := q.Store(io.LimitReader(src, c.size))
			if c.stored {
				if b, rerr := q.Read(n); err != nil || rerr != nil || int64(len(b)) != c.size {
					t.Fatalf("Store: %v; Read: %d bytes, %v", err, len(b), rerr)
				}
				return
			}
			if !errors.Is(err, ErrTooBig) || n != "" {
				t.Fatalf("Store = %q, %v; want ErrTooBig", n, err)
			}
			if src.read > MaxSize+1 {
				t.Errorf("read %d bytes of the mail", src.read)
			}
			for _, d := range []string{"tmp", "new"} {
				if left, _ := os.ReadDir(filepath.Join(q.Dir, d)); len(left) != 0 {
					t.Errorf("left in %s/: %v", d, left)
				}
			}
		})
	}
}

// TestReadRefuses: Read takes a stored mail up to MaxSize and refuses,
// naming it, a larger file (as an older version could store) and what is
// not a regular file.
func TestReadRefuses(t *testing.T) {
	q := New(filepath.Join(t.TempDir(), "mqueue"))
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		make func(path string) error
		err  error  // wrapped
		msg  string // in the message, with the file's path
	}{
		{"max", sized(MaxSize), nil, ""},
		{"over", sized(MaxSize + 1), ErrTooBig, "16777217 bytes: mail larger than 16777216 bytes (16 MiB)"},
		{"64MiB", sized(64 << 20), ErrTooBig, "67108864 bytes"},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, nil, "not a regular file"},
		{"dir", func(p string) error { return os.Mkdir(p, 0o700) }, nil, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(q.Dir, "new", c.name)
			if err := c.make(p); err != nil {
				t.Fatal(err)
			}
			b, err := q.Read(c.name)
			if c.msg == "" {
				if err != nil || len(b) != MaxSize {
					t.Fatalf("Read: %d bytes, %v", len(b), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.msg) || c.err != nil && !errors.Is(err, c.err) {
				t.Errorf("Read: %v; want an error naming %s: %q", err, p, c.msg)
			}
		})
	}
}

// sized makes a (sparse) file of n bytes.
func sized(n int64) func(path string) error {
	return func(p string) error {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(n)
	}
}

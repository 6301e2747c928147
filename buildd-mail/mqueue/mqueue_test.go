package mqueue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd/home"
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
	if _, err := q.TryLock(); !errors.Is(err, home.ErrLocked) {
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

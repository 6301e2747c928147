package bolt

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"buildd/internal/queue"
)

func names(t *testing.T, tx queue.Tx, st queue.State) []string {
	var out []string
	if err := tx.ForEachInState(st, func(r *queue.Record) error { out = append(out, r.Package); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStateIndex: Put and Delete keep the per-state index in step with the
// records, per (dist, arch).
func TestStateIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wb.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update("sid", "amd64", func(tx queue.Tx) error {
		for _, r := range []*queue.Record{
			{Package: "b", Version: "1", State: queue.NeedsBuild},
			{Package: "a", Version: "1", State: queue.NeedsBuild},
			{Package: "c", Version: "1", State: queue.Installed},
		} {
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		if err := tx.Put(&queue.Record{Package: "b", Version: "1", State: queue.Building}); err != nil {
			return err
		}
		return tx.Delete("c")
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View("sid", "amd64", func(tx queue.Tx) error {
		for st, want := range map[queue.State][]string{
			queue.NeedsBuild: {"a"}, queue.Building: {"b"}, queue.Installed: nil,
		} {
			if got := names(t, tx, st); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", st, got, want)
			}
		}
		if r, _ := tx.Get("c"); r != nil {
			t.Errorf("deleted record still there: %+v", r)
		}
		if err := tx.Put(&queue.Record{Package: "x"}); !errors.Is(err, queue.ErrReadOnly) {
			t.Errorf("Put in a read-only transaction: %v", err)
		}
		return nil
	})
	db.View("sid", "arm64", func(tx queue.Tx) error {
		if got := names(t, tx, queue.NeedsBuild); got != nil {
			t.Errorf("arm64 sees sid/amd64's records: %v", got)
		}
		return nil
	})
	if err := db.Update("sid", "amd64", func(queue.Tx) error { return nil }); !errors.Is(err, queue.ErrReadOnly) {
		t.Errorf("Update on a read-only open: %v", err)
	}
}

// TestLockTimeout: a second writer waits for the first and gives up after
// its timeout; readers wait for a writer too.
func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wb.db")
	first, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		start := time.Now()
		_, err := Open(path, Options{ReadOnly: ro, Timeout: 200 * time.Millisecond})
		var oe *OpenError
		if !errors.As(err, &oe) || !errors.Is(err, ErrLocked) || time.Since(start) < 200*time.Millisecond {
			t.Errorf("read-only %v: %v after %s, want ErrLocked after 200ms", ro, err, time.Since(start))
		}
	}
	done := make(chan error)
	go func() {
		second, err := Open(path, Options{Timeout: 5 * time.Second})
		if err == nil {
			second.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	first.Close()
	if err := <-done; err != nil {
		t.Errorf("waiting writer: %v", err)
	}
}

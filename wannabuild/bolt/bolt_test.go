package bolt

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"buildd/wannabuild"
)

func names(t *testing.T, tx wannabuild.Tx, st wannabuild.State) []string {
	var out []string
	if err := tx.ForEachInState(st, func(r *wannabuild.Record) error { out = append(out, r.Package); return nil }); err != nil {
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
	err = db.Update("sid", "amd64", func(tx wannabuild.Tx) error {
		for _, r := range []*wannabuild.Record{
			{Package: "b", Version: "1", State: wannabuild.NeedsBuild},
			{Package: "a", Version: "1", State: wannabuild.NeedsBuild},
			{Package: "c", Version: "1", State: wannabuild.Installed},
		} {
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		if err := tx.Put(&wannabuild.Record{Package: "b", Version: "1", State: wannabuild.Building}); err != nil {
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
	db.View("sid", "amd64", func(tx wannabuild.Tx) error {
		for st, want := range map[wannabuild.State][]string{
			wannabuild.NeedsBuild: {"a"}, wannabuild.Building: {"b"}, wannabuild.Installed: nil,
		} {
			if got := names(t, tx, st); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v, want %v", st, got, want)
			}
		}
		if r, _ := tx.Get("c"); r != nil {
			t.Errorf("deleted record still there: %+v", r)
		}
		if err := tx.Put(&wannabuild.Record{Package: "x"}); !errors.Is(err, wannabuild.ErrReadOnly) {
			t.Errorf("Put in a read-only transaction: %v", err)
		}
		return nil
	})
	db.View("sid", "arm64", func(tx wannabuild.Tx) error {
		if got := names(t, tx, wannabuild.NeedsBuild); got != nil {
			t.Errorf("arm64 sees sid/amd64's records: %v", got)
		}
		return nil
	})
	if err := db.Update("sid", "amd64", func(wannabuild.Tx) error { return nil }); !errors.Is(err, wannabuild.ErrReadOnly) {
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

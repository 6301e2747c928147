package store_test

import (
	"os"
	"reflect"
	"testing"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// TestPairs: Pairs lists every (dist, arch) with records, sorted, on the
// store $BUILDD_TEST_STORE names.
func TestPairs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		put   []queue.Pair
		want  []queue.Pair
		empty bool // the queue was never written
	}{
		{name: "never-written", empty: true},
		{name: "one", put: []queue.Pair{{Dist: "sid", Arch: "amd64"}}, want: []queue.Pair{{Dist: "sid", Arch: "amd64"}}},
		{name: "sorted",
			put:  []queue.Pair{{Dist: "sid", Arch: "arm64"}, {Dist: "bookworm", Arch: "amd64"}, {Dist: "sid", Arch: "amd64"}, {Dist: "sid", Arch: "arm64"}},
			want: []queue.Pair{{Dist: "bookworm", Arch: "amd64"}, {Dist: "sid", Arch: "amd64"}, {Dist: "sid", Arch: "arm64"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := storetest.New(t)
			if !tc.empty {
				db, err := store.Open(spec, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				// A transaction that writes nothing makes no pair.
				if err := db.Update("trixie", "amd64", func(queue.Tx) error { return nil }); err != nil {
					t.Fatal(err)
				}
				for i, p := range tc.put {
					err := db.Update(p.Dist, p.Arch, func(tx queue.Tx) error {
						return tx.Put(&queue.Record{Package: "p" + string(rune('a'+i)), Version: "1", State: queue.NeedsBuild})
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				db.Close()
			}
			db, err := store.Open(spec, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got, err := db.Pairs()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Pairs = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCount: Count follows the records' states through puts, state
// changes and deletions, in the transaction and after it.
func TestCount(t *testing.T) {
	db, err := store.Open(storetest.New(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	count := func(tx queue.Tx, st queue.State) int {
		t.Helper()
		n, err := tx.Count(st)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	err = db.Update("sid", "amd64", func(tx queue.Tx) error {
		for _, name := range []string{"a", "b", "c"} {
			if err := tx.Put(&queue.Record{Package: name, Version: "1", State: queue.NeedsBuild}); err != nil {
				return err
			}
		}
		if n := count(tx, queue.NeedsBuild); n != 3 {
			t.Errorf("in the transaction: %d Needs-Build, want 3", n)
		}
		if err := tx.Put(&queue.Record{Package: "b", Version: "1", State: queue.Building, Builder: "x"}); err != nil {
			return err
		}
		return tx.Delete("c")
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View("sid", "amd64", func(tx queue.Tx) error {
		for st, want := range map[queue.State]int{queue.NeedsBuild: 1, queue.Building: 1, queue.Failed: 0} {
			if n := count(tx, st); n != want {
				t.Errorf("%s: %d, want %d", st, n, want)
			}
		}
		return nil
	})
	db.View("sid", "arm64", func(tx queue.Tx) error {
		if n := count(tx, queue.NeedsBuild); n != 0 {
			t.Errorf("an empty queue counts %d", n)
		}
		return nil
	})
}

package pg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
)

// TestStateCounts: the counts by state that the writes keep are those of
// the records after every kind of write: blind puts and deletes, reads
// then writes, a whole queue read then written, a builder's take, takes
// lost to another, a transaction that fails, and enough small writes to
// fold the counts' rows.
func TestStateCounts(t *testing.T) {
	db := pgtest.New(t)
	admin := open(t, db.URL(pgtest.Admin))
	states := []queue.State{queue.NeedsBuild, queue.Installed, queue.Building, queue.NotForUs}
	check := func(when string) {
		t.Helper()
		got, err := admin.CountStates("", "")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		want := map[queue.Pair]map[queue.State]int{}
		pairs, err := admin.Pairs()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pairs {
			if err := admin.View(p.Dist, p.Arch, func(tx queue.Tx) error {
				return tx.ForEach(func(r *queue.Record) error {
					if want[p] == nil {
						want[p] = map[queue.State]int{}
					}
					want[p][r.State]++
					return nil
				})
			}); err != nil {
				t.Fatal(err)
			}
		}
		if !maps.EqualFunc(got, want, func(a, b map[queue.State]int) bool { return maps.Equal(a, b) }) {
			t.Fatalf("%s: counts %v, want %v", when, got, want)
		}
		one, err := admin.CountStates("sid", "amd64")
		if err != nil || !maps.Equal(one[queue.Pair{Dist: "sid", Arch: "amd64"}], want[queue.Pair{Dist: "sid", Arch: "amd64"}]) {
			t.Fatalf("%s: sid/amd64 counts %v (%v), want %v", when, one, err, want[queue.Pair{Dist: "sid", Arch: "amd64"}])
		}
	}
	update := func(arch string, fn func(tx queue.Tx) error) {
		t.Helper()
		if err := admin.Update("sid", arch, fn); err != nil {
			t.Fatal(err)
		}
	}
	update("amd64", func(tx queue.Tx) error {
		for i := 0; i < 40; i++ {
			if err := tx.Put(&queue.Record{Package: fmt.Sprintf("p%02d", i), Version: "1", State: states[i%len(states)]}); err != nil {
				return err
			}
		}
		return nil
	})
	update("arm64", func(tx queue.Tx) error {
		for i := 0; i < 10; i++ {
			if err := tx.Put(&queue.Record{Package: fmt.Sprintf("p%02d", i), Version: "1", State: queue.Installed}); err != nil {
				return err
			}
		}
		return nil
	})
	check("blind puts")
	update("amd64", func(tx queue.Tx) error {
		for i := 0; i < 5; i++ {
			if err := tx.Put(&queue.Record{Package: fmt.Sprintf("p%02d", i), Version: "2", State: queue.Uploaded}); err != nil {
				return err
			}
		}
		for _, name := range []string{"p10", "p11", "p12", "absent"} {
			if err := tx.Delete(name); err != nil {
				return err
			}
		}
		return tx.Put(&queue.Record{Package: "p10", Version: "3", State: queue.NeedsBuild})
	})
	check("blind puts over records, blind deletes")
	update("amd64", func(tx queue.Tx) error {
		var names []string
		if err := tx.ForEach(func(r *queue.Record) error { names = append(names, r.Package); return nil }); err != nil {
			return err
		}
		for _, name := range names[:6] {
			if err := tx.Delete(name); err != nil {
				return err
			}
		}
		for i := 0; i < 8; i++ {
			if err := tx.Put(&queue.Record{Package: fmt.Sprintf("q%02d", i), Version: "1", State: queue.NeedsBuild}); err != nil {
				return err
			}
		}
		return tx.Put(&queue.Record{Package: names[7], Version: "4", State: queue.Failed})
	})
	check("the whole queue read, then written")
	if err := admin.Update("sid", "amd64", func(tx queue.Tx) error {
		if err := tx.Put(&queue.Record{Package: "q00", Version: "1", State: queue.Built}); err != nil {
			return err
		}
		if _, err := tx.Get("q01"); err != nil {
			return err
		}
		return errors.New("no")
	}); err == nil {
		t.Fatal("a failing transaction succeeded")
	}
	check("a failed transaction")
	db.Grant(t, "buildd_a", queue.Pair{Dist: "sid", Arch: "amd64"})
	builder := open(t, db.URL("buildd_a"))
	take := func(d *pg.DB, name string) (bool, error) {
		won := false
		err := d.Update("sid", "amd64", func(tx queue.Tx) error {
			won = false
			r, err := tx.Get(name)
			if err != nil || r.State != queue.NeedsBuild {
				return err
			}
			s := &queue.Session{Dist: "sid", Arch: "amd64", User: "buildd_a", RealUser: "root", Now: time.Now(), Out: io.Discard}
			// Read committed: Apply reads the package again, and finds it
			// taken (by this role) when another taker won meanwhile.
			var out strings.Builder
			s.Out, s.Verbose = &out, true
			if err := s.Apply(tx, queue.Take, name+"_"+r.Version, 0); err != nil {
				return err
			}
			won = out.String() == name+": ok\n"
			return nil
		})
		return won, err
	}
	if won, err := take(builder, "q01"); !won || err != nil {
		t.Fatalf("the builder's take: %v, %v", won, err)
	}
	check("a builder's take")
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pg.Open(context.Background(), db.URL("buildd_a"), pg.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			won, err := take(c, "q02")
			if err != nil {
				t.Error(err)
			}
			wins <- won
		}()
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d takers won, want 1", n)
	}
	check("takes lost to another")
	for i := 0; i < 300; i++ {
		update("amd64", func(tx queue.Tx) error {
			r, err := tx.Get("q03")
			if err != nil {
				return err
			}
			r.State = states[i%2]
			return tx.Put(r)
		})
	}
	check("300 changes")
	var rows int
	if err := admin.Conn().QueryRow(context.Background(), "SELECT count(*) FROM wb_state_counts WHERE dist = 'sid' AND arch = 'amd64'").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows > 257 {
		t.Errorf("sid/amd64 has %d rows of counts after 300 changes: never folded", rows)
	}
}

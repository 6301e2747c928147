package pg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T, url string) *pg.DB {
	t.Helper()
	d, err := pg.Open(context.Background(), url, pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestStoreRoundTrip(t *testing.T) {
	db := pgtest.New(t)
	d := open(t, db.URL(pgtest.Admin))
	rec := &queue.Record{Package: "hello", Version: "2.10-3", State: queue.NeedsBuild, Section: "devel", BinNMU: 2, Failed: "x\ny"}
	if err := d.Update("bookworm", "amd64", func(tx queue.Tx) error {
		if err := tx.Put(rec); err != nil {
			return err
		}
		return tx.Log(&queue.Transaction{Package: "hello", Version: "2.10-3", Action: "--merge-v3", To: queue.NeedsBuild, Time: 5})
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.View("bookworm", "amd64", func(tx queue.Tx) error {
		got, err := tx.Get("hello")
		if err != nil || got == nil || *got != *rec {
			t.Errorf("Get = %+v, %v; want %+v", got, err, rec)
		}
		n := 0
		tx.ForEachInState(queue.NeedsBuild, func(*queue.Record) error { n++; return nil })
		tx.History("hello", func(*queue.Transaction) error { n++; return nil })
		if n != 2 {
			t.Errorf("ForEachInState + History saw %d, want 2", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.View("bookworm", "arm64", func(tx queue.Tx) error {
		got, _ := tx.Get("hello")
		if got != nil {
			t.Errorf("arm64 sees amd64's record")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentTakes: 16 connections take the same package at once;
// exactly one wins.
func TestConcurrentTakes(t *testing.T) {
	db := pgtest.New(t)
	d := open(t, db.URL(pgtest.Admin))
	d.Update("sid", "amd64", func(tx queue.Tx) error {
		return tx.Put(&queue.Record{Package: "hello", Version: "1", State: queue.NeedsBuild})
	})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pg.Open(context.Background(), db.URL(pgtest.Admin), pg.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			won := false
			err = c.Update("sid", "amd64", func(tx queue.Tx) error {
				won = false
				r, err := tx.Get("hello")
				if err != nil || r.State != queue.NeedsBuild {
					return err
				}
				r.State, won = queue.Building, true
				return tx.Put(r)
			})
			if err != nil {
				t.Error(err)
			}
			if won {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d takers won, want 1", wins)
	}
}

// TestBuilderExpiresDeadLease: a builder may give back another builder's
// package once its lease has ended by the database's clock, never before.
func TestBuilderExpiresDeadLease(t *testing.T) {
	db := pgtest.New(t)
	admin := open(t, db.URL(pgtest.Admin))
	now := time.Now()
	admin.Update("sid", "amd64", func(tx queue.Tx) error {
		tx.Put(&queue.Record{Package: "dead", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now.Unix() - 10})
		return tx.Put(&queue.Record{Package: "live", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now.Unix() + 1000})
	})
	db.Grant(t, "buildd_a", queue.Pair{Dist: "sid", Arch: "amd64"})
	a := open(t, db.URL("buildd_a"))
	s := &queue.Session{Dist: "sid", Arch: "amd64", User: "buildd_a", RealUser: "test", Now: now, Out: io.Discard}
	var expired []queue.Expired
	if err := a.Update("sid", "amd64", func(tx queue.Tx) error {
		var err error
		expired, err = s.ExpireLeases(tx)
		return err
	}); err != nil || len(expired) != 1 || expired[0].Package != "dead" {
		t.Fatalf("expire: %v, %v", expired, err)
	}
	err := a.Update("sid", "amd64", func(tx queue.Tx) error {
		r, _ := tx.Get("live")
		r.State, r.Builder = queue.NeedsBuild, ""
		return tx.Put(r)
	})
	if !errors.Is(err, pg.ErrRefused) {
		t.Errorf("give back a live lease: err = %v, want ErrRefused", err)
	}
}

// TestNotify: a transaction that leaves a package in Needs-Build notifies
// its DIST/ARCH to listeners; one that takes a Building package from its
// builder notifies DIST/ARCH/BUILDER, unless the builder made the change
// itself; one that does neither does not notify. Each case is followed by
// a marker notification, so what a case notified is what came before it.
func TestNotify(t *testing.T) {
	db := pgtest.New(t)
	admin := open(t, db.URL(pgtest.Admin))
	now := time.Now()
	if err := admin.Update("sid", "amd64", func(tx queue.Tx) error {
		for _, r := range []*queue.Record{
			{Package: "given", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now.Unix() + 600},
			{Package: "failed", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now.Unix() + 600},
			{Package: "forgotten", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now.Unix() + 600},
			{Package: "dead", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now.Unix() - 10},
			{Package: "own", Version: "1", State: queue.NeedsBuild},
		} {
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Grant(t, "buildd_a", sidAmd64)
	a := open(t, db.URL("buildd_a"))
	as := &queue.Session{Dist: "sid", Arch: "amd64", User: "buildd_a", RealUser: "root", Lease: 300, Now: now, Out: io.Discard}
	ad := &queue.Session{Dist: "sid", Arch: "amd64", User: pgtest.Admin, RealUser: "root", Override: true, Now: now, Out: io.Discard}
	apply := func(d *pg.DB, s *queue.Session, cmds ...queue.Command) func(arg string) error {
		return func(arg string) error {
			for _, cmd := range cmds {
				if err := d.Update("sid", "amd64", func(tx queue.Tx) error { s.Message = "x"; return s.Apply(tx, cmd, arg, 0) }); err != nil {
					return err
				}
			}
			return nil
		}
	}
	cases := []struct {
		name   string
		change func(arg string) error
		arg    string
		want   []string
	}{
		{"installed elsewhere", func(string) error {
			return admin.Update("sid", "arm64", func(tx queue.Tx) error {
				return tx.Put(&queue.Record{Package: "x", Version: "1", State: queue.Installed})
			})
		}, "", nil},
		{"merged Needs-Build", func(string) error {
			return admin.Update("sid", "amd64", func(tx queue.Tx) error {
				return tx.Put(&queue.Record{Package: "y", Version: "1", State: queue.NeedsBuild})
			})
		}, "", []string{"sid/amd64"}},
		{"given back by the admin", apply(admin, ad, queue.GiveBack), "given_1", []string{"sid/amd64", "sid/amd64 taken from buildd_b"}},
		{"failed by the admin", apply(admin, ad, queue.SetFailed), "failed_1", []string{"sid/amd64 taken from buildd_b"}},
		{"forgotten by the admin", func(arg string) error {
			return admin.Update("sid", "amd64", func(tx queue.Tx) error { return ad.Forget(tx, arg) })
		}, "forgotten", []string{"sid/amd64 taken from buildd_b"}},
		{"lease ended by another builder", func(string) error {
			return a.Update("sid", "amd64", func(tx queue.Tx) error { _, err := as.ExpireLeases(tx); return err })
		}, "", []string{"sid/amd64", "sid/amd64 taken from buildd_b"}},
		{"the builder's own take and result", apply(a, as, queue.Take, queue.SetBuilt), "own_1", nil},
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	got := make(chan string, 100)
	go a.Announce(ctx, func() { close(ready) }, func(n queue.Notification) {
		s := n.Dist + "/" + n.Arch
		if n.Builder != "" {
			s += " taken from " + n.Builder
		}
		got <- s
	})
	<-ready
	for i, c := range cases {
		if err := c.change(c.arg); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		marker := fmt.Sprintf("marker%d", i)
		if err := admin.Update(marker, "amd64", func(tx queue.Tx) error {
			return tx.Put(&queue.Record{Package: "m", Version: "1", State: queue.NeedsBuild})
		}); err != nil {
			t.Fatal(err)
		}
		var notified []string
		for n := ""; n != marker+"/amd64"; {
			select {
			case n = <-got:
				if n != marker+"/amd64" {
					notified = append(notified, n)
				}
			case <-time.After(time.Minute):
				t.Fatalf("%s: no marker notification; got %q", c.name, notified)
			}
		}
		sort.Strings(notified) // a transaction's notifications come in any order
		if strings.Join(notified, "; ") != strings.Join(c.want, "; ") {
			t.Errorf("%s notified %q, want %q", c.name, notified, c.want)
		}
	}
}

// TestSchemaMadeOnceByConcurrentStarts: eight admin processes opening a
// new database at once make its schema exactly once; a builder role
// cannot make it, and says to run a command as the admin first.
func TestSchemaMadeOnceByConcurrentStarts(t *testing.T) {
	db := pgtest.New(t)
	if _, err := pg.Open(context.Background(), db.URL("buildd_a"), pg.Options{}); err == nil || !strings.Contains(err.Error(), "run any wanna-build command once as the admin role") {
		t.Errorf("a builder on an empty database: err = %v", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := pg.Open(context.Background(), db.URL(pgtest.Admin), pg.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			d.Close()
		}()
	}
	wg.Wait()
	d := open(t, db.URL(pgtest.Admin))
	var rows, version int
	if err := d.Conn().QueryRow(context.Background(), "SELECT count(*), max(version) FROM wb_schema").Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != pg.SchemaVersion {
		t.Errorf("wb_schema: %d rows, version %d; want 1 row, version %d", rows, version, pg.SchemaVersion)
	}
}

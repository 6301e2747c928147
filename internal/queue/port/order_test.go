package port_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
)

// TestNeedsBuildOrder: the Needs-Build list is best first on every
// store; packages of equal rank (one merge: the same calprio, the same
// second) come by name from a host's own bbolt queue, and in an order of
// each builder's own from a shared PostgreSQL queue, so that builders
// taking down their lists at once do not all try the same package. A
// builder's order stays the same from one listing to the next.
func TestNeedsBuildOrder(t *testing.T) {
	const tied = 30
	var names []string
	for i := range tied {
		names = append(names, fmt.Sprintf("pkg%02d", i))
	}
	for _, tc := range []struct {
		kind   string
		byName bool // ties by name, for every builder
	}{
		{"bolt", true},
		{"postgres", false},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			builders := []string{"buildd_a", "buildd_b"}
			spec := map[string]string{}
			adminSpec := ""
			switch tc.kind {
			case "bolt":
				adminSpec = t.TempDir() + "/wb.db"
				for _, b := range builders {
					spec[b] = adminSpec
				}
			case "postgres":
				db := pgtest.New(t)
				adminSpec = db.URL(pgtest.Admin)
				for _, b := range builders {
					db.Grant(t, b, queue.Pair{Dist: "sid", Arch: "amd64"})
					spec[b] = db.URL(b)
				}
			}
			admin, err := store.Open(adminSpec, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().Unix()
			err = admin.Update("sid", "amd64", func(tx queue.Tx) error {
				for _, name := range append([]string{"urgent"}, names...) {
					r := &queue.Record{Package: name, Version: "1.0-1", State: queue.NeedsBuild, Section: "misc", Priority: "optional", StateChange: now}
					if name == "urgent" {
						r.BuildPri = 10
					}
					if err := tx.Put(r); err != nil {
						return err
					}
				}
				return nil
			})
			admin.Close()
			if err != nil {
				t.Fatal(err)
			}
			var orders [][]string
			for _, b := range builders {
				p := port.Local(store.NewHandle(spec[b], store.Options{}), func() *queue.Session {
					return &queue.Session{Dist: "sid", Arch: "amd64", User: b, RealUser: b, Now: time.Now()}
				})
				defer p.Close()
				var first []string
				for listing := range 2 {
					list, err := p.NeedsBuild(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, c := range list {
						got = append(got, c.Name)
					}
					if len(got) != tied+1 || got[0] != "urgent" {
						t.Fatalf("%s: %v, want urgent (the higher calprio) first, then the %d others", b, got, tied)
					}
					if listing == 1 && !slices.Equal(got, first) {
						t.Fatalf("%s: the order changed from one listing to the next:\n%v\n%v", b, first, got)
					}
					first = got
				}
				ties := first[1:]
				if byName := slices.IsSorted(ties); byName != tc.byName {
					t.Errorf("%s: ties %v: by name %v, want %v", b, ties, byName, tc.byName)
				}
				sorted := slices.Sorted(slices.Values(ties))
				if !slices.Equal(sorted, names) {
					t.Errorf("%s: ties %v, want each of %v once", b, ties, names)
				}
				orders = append(orders, ties)
			}
			if same := slices.Equal(orders[0], orders[1]); same != tc.byName {
				t.Errorf("the builders' orders are the same: %v, want %v:\n%v\n%v", same, tc.byName, orders[0], orders[1])
			}
		})
	}
}

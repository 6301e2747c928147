package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

// The store benchmarks run each measure on a bbolt file and on PostgreSQL
// side by side, in one run (go test -bench Stores).

// BenchmarkStoresMerge: the real bookworm Sources + arm64 Packages
// (uncompressed) into an empty queue, one whole process.
func BenchmarkStoresMerge(b *testing.B) {
	src, pkgs := plainData(b)
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				db := storetest.NewOf(b, kind)
				b.StartTimer()
				run(b, db, "--merge-v3", pkgs, ".", src)
			}
		})
	}
}

// BenchmarkStoresInfoTake: --info, and --take with --give-back to take it
// again, as whole processes, with the real merge in the queue; the figure
// is per process.
func BenchmarkStoresInfoTake(b *testing.B) {
	src, pkgs := plainData(b)
	for _, kind := range storetest.Kinds {
		db := storetest.NewOf(b, kind)
		run(b, db, "--merge-v3", pkgs, ".", src)
		if kind == "postgres" {
			settle(b, db)
		}
		b.Run(kind+"/info", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				run(b, db, "--info", "gcc-12")
			}
		})
		b.Run(kind+"/take", func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				run(b, db, "-U", "bench", "--take", "gcc-11_11.3.0-12", "--override")
				run(b, db, "-U", "bench", "--give-back", "gcc-11_11.3.0-12", "--override")
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(2*b.N), "ms/process")
		})
	}
}

// BenchmarkStoresTakers: 64 takers, each with its own open store (a
// PostgreSQL connection; bbolt opens the file per take as a command does),
// race to take 200 packages, each trying every package once. Reports
// takes/s and fails on a double take.
func BenchmarkStoresTakers(b *testing.B) {
	const takers, n = 64, 200
	for _, kind := range storetest.Kinds {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				db, pkgs := queueIn(b, storetest.NewOf(b, kind), n)
				b.StartTimer()
				start := time.Now()
				var won, tries atomic.Int64
				winners := make([]atomic.Int32, n)
				var wg sync.WaitGroup
				for p := 0; p < takers; p++ {
					wg.Add(1)
					go func(p int) {
						defer wg.Done()
						var st queue.Store
						if kind == "postgres" {
							var err error
							if st, err = store.Open(db, store.Options{}); err != nil {
								b.Error(err)
								return
							}
							defer st.Close()
						}
						s := &queue.Session{Dist: "bookworm", Arch: "arm64", User: fmt.Sprintf("buildd_%d", p), RealUser: "bench", Out: io.Discard}
						for k := range pkgs {
							j := (k + p*n/takers) % n
							s.Now = time.Now()
							took := false
							fn := func(tx queue.Tx) error {
								took = false
								err := s.Apply(tx, queue.Take, pkgs[j], 0)
								if err == nil {
									took = true
								}
								if queue.IsPackageError(err) {
									return nil
								}
								return err
							}
							var err error
							if st != nil {
								err = st.Update("bookworm", "arm64", fn)
							} else {
								err = withStore(db, fn)
							}
							if err != nil {
								b.Error(err)
								return
							}
							tries.Add(1)
							if took {
								won.Add(1)
								winners[j].Add(1)
							}
						}
					}(p)
				}
				wg.Wait()
				wall := time.Since(start)
				for j := range winners {
					if w := winners[j].Load(); w != 1 {
						b.Fatalf("%s: %d winners", pkgs[j], w)
					}
				}
				b.ReportMetric(float64(tries.Load())/wall.Seconds(), "takes/s")
				b.ReportMetric(float64(won.Load()), "won")
			}
		})
	}
}

// settle runs VACUUM ANALYZE, as autovacuum soon would after a merge: the
// figures are of a settled queue, not of one autovacuum is working on.
func settle(b *testing.B, url string) {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

// withStore opens db for one write transaction, as one command does.
func withStore(db string, fn func(queue.Tx) error) error {
	st, err := store.Open(db, store.Options{Timeout: time.Minute})
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Update("bookworm", "arm64", fn)
}

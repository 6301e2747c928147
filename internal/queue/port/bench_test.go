package port_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// BenchmarkPortCalls: the queue calls of a running buildd (an --info and a
// --renew of a package it is not building), median per call, through each
// kind of port kept for the process's life, and, side by side in the same
// run, through a port opened for each call (what the programs did before
// the port: a new PostgreSQL connection, schema check included, per call).
// Over ssh each call is a whole ssh and wanna-build process; ssh-socket
// goes through a control master.
func BenchmarkPortCalls(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			kept, db := newPort(b, kind)
			cfg := &config.Config{Home: b.TempDir(), WannaBuildDB: db}
			calls := func(p queue.Port) {
				ctx := context.Background()
				if _, err := p.Info(ctx, "nb"); err != nil {
					b.Fatal(err)
				}
			}
			for _, mode := range []string{"kept", "opened-per-call"} {
				if mode == "opened-per-call" && kind != "postgres" && kind != "bolt" {
					continue
				}
				b.Run(mode, func(b *testing.B) {
					var times []time.Duration
					for i := 0; i < b.N; i++ {
						t0 := time.Now()
						if mode == "kept" {
							calls(kept)
						} else {
							d := config.Dist{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: "buildd_a"}
							p := port.Open(cfg, &d)
							calls(p)
							p.Close()
						}
						times = append(times, time.Since(t0))
					}
					sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
					b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms/call(median)")
				})
			}
		})
	}
}

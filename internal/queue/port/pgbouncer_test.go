package port_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
)

// TestThroughPgbouncer is the build network's documented connection setup
// (README, "Connections at scale"): a builder's commands go through a
// real pgbouncer in transaction pooling mode (wanna_build_db), its LISTEN
// connection straight to the server (wanna_build_listen_db); a listen URL
// that reaches another database is an error that says so. Two ports of
// one builder role (two programs of one host) share the pgbouncer's one
// server connection: they take, renew in batches large enough that the
// admin would prepare statements (which a pooler's server connections do
// not keep from one transaction to the next), build and give back, and
// the give-back's notification reaches the listener.
func TestThroughPgbouncer(t *testing.T) {
	ctx := context.Background()
	const builder = "buildd_a"
	db := pgtest.New(t)
	pkgvs := seedQueue(t, db, queue.Pair{Dist: "sid", Arch: "amd64"}, 60)
	db.Grant(t, builder, queue.Pair{Dist: "sid", Arch: "amd64"})
	other := pgtest.New(t)
	bouncer := db.Cluster.StartBouncer(t, pgtest.BouncerConfig{Roles: []string{builder}, PoolSize: 1})
	open := func(listen string) queue.Port {
		lease := 600
		cfg := &config.Config{Home: t.TempDir(), WannaBuildDB: bouncer.URL(db.Name, builder), WannaBuildListenDB: listen}
		cfg.Dists = []config.Dist{{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: builder, LeaseTimeout: &lease}}
		p := port.Open(cfg, &cfg.Dists[0])
		t.Cleanup(func() { p.Close() })
		return p
	}

	wake := make(chan struct{}, 1)
	whole := t
	for _, tc := range []struct {
		name    string
		listen  string
		wantErr string // "": it listens
	}{
		{"direct listener", db.URL(builder), ""},
		{"listener on another database", other.URL(builder), "it reaches database " + other.Name + " of a server started "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lctx, cancel := context.WithCancel(ctx)
			ready, done := make(chan struct{}), make(chan error, 1)
			go func() {
				done <- open(tc.listen).(queue.Notifier).Listen(lctx, func() { close(ready) }, func() {
					select {
					case wake <- struct{}{}:
					default:
					}
				}, func() {})
			}()
			select {
			case <-ready:
				if tc.wantErr != "" {
					t.Fatalf("listens, want the error %q", tc.wantErr)
				}
				whole.Cleanup(cancel) // listens for the rest of the test
			case err := <-done:
				cancel()
				if tc.wantErr == "" || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Listen: %v, want the error %q", err, tc.wantErr)
				}
			case <-time.After(30 * time.Second):
				cancel()
				t.Fatal("Listen: neither listening nor failed after 30 s")
			}
		})
	}
	if t.Failed() {
		return
	}

	ports := []queue.Port{open(db.URL(builder)), open(db.URL(builder))}
	list, err := ports[0].NeedsBuild(ctx)
	if err != nil || len(list) != len(pkgvs) {
		t.Fatalf("NeedsBuild through pgbouncer: %d packages, %v; want %d", len(list), err, len(pkgvs))
	}
	taken := pkgvs[:50]
	for i, pkgv := range taken {
		if err := ports[i%2].Take(ctx, pkgv); err != nil {
			t.Fatalf("take %s through pgbouncer: %v", pkgv, err)
		}
	}
	for round := range 2 {
		for i, p := range ports {
			if lost, err := p.Renew(ctx, taken...); err != nil || len(lost) != 0 {
				t.Fatalf("renewal %d of %d leases by port %d through pgbouncer: lost %v, %v", round+1, len(taken), i, lost, err)
			}
		}
	}
	select {
	case <-wake:
		t.Fatal("a notification before any package became Needs-Build")
	default:
	}
	if err := ports[1].Built(ctx, taken[0]); err != nil {
		t.Fatalf("built %s through pgbouncer: %v", taken[0], err)
	}
	if err := ports[0].GiveBack(ctx, taken[1]); err != nil {
		t.Fatalf("give back %s through pgbouncer: %v", taken[1], err)
	}
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification of the give-back 10 s after it")
	}
	for _, want := range []struct {
		pkgv  string
		state queue.State
	}{{taken[0], queue.Built}, {taken[1], queue.NeedsBuild}, {taken[2], queue.Building}, {pkgvs[50], queue.NeedsBuild}} {
		info, err := ports[0].Info(ctx, want.pkgv)
		if err != nil || info.State != want.state {
			t.Errorf("Info(%s) through pgbouncer: %+v, %v; want state %s", want.pkgv, info, err, want.state)
		}
	}

	// The two ports' commands on the one server connection of the role's
	// pool, the listener on one of its own.
	conn, err := pgx.Connect(ctx, db.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var backends, listening int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE query LIKE 'LISTEN %')
		FROM pg_stat_activity WHERE datname = $1 AND usename = $2`, db.Name, builder).Scan(&backends, &listening); err != nil {
		t.Fatal(err)
	}
	if backends != 2 || listening != 1 {
		t.Errorf("%d server connections of %s, %d of them listening; want 2: one through pgbouncer for both ports' commands, one listener", backends, builder, listening)
	}
}

// seedQueue registers n packages in Needs-Build in queue q of db, as its
// admin (straight to the server), and returns them as "name_version".
func seedQueue(t testing.TB, db *pgtest.DB, q queue.Pair, n int) []string {
	t.Helper()
	admin, err := store.Open(db.URL(pgtest.Admin), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	pkgvs := make([]string, n)
	now := time.Now().Unix()
	err = admin.Update(q.Dist, q.Arch, func(tx queue.Tx) error {
		for i := range pkgvs {
			pkgvs[i] = seedName(q, i)
			name := debversion.SplitPkgVersion(pkgvs[i])
			r := &queue.Record{Package: name.Name, Version: name.Version, State: queue.NeedsBuild,
				Section: "misc", Priority: "optional", StateChange: now, Notes: "uncompiled"}
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("register %d packages in %s/%s: %v", n, q.Dist, q.Arch, err)
	}
	return pkgvs
}

// seedName is the i-th package seedQueue registers in q, "name_version".
func seedName(q queue.Pair, i int) string {
	return fmt.Sprintf("%s-%s-%05d_1.0-1", q.Dist, q.Arch, i)
}

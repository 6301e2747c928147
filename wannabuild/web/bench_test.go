package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"buildd/internal/debiandata"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
	"buildd/wannabuild/cli"
	"buildd/wannabuild/web"
)

// realQueue merges the real bookworm main indexes for amd64 and arm64 into
// a fresh queue ($BUILDD_TEST_STORE's kind) and has "bench" take the first
// five Needs-Build packages of each.
func realQueue(b *testing.B) string {
	src := debiandata.Path(b, "debian-bookworm-main/Sources.xz")
	db := storetest.New(b)
	wb := func(arch string, args ...string) string {
		var out, errb bytes.Buffer
		if code := cli.Main(append([]string{"--db", db, "--dist=bookworm", "--arch=" + arch}, args...), strings.NewReader(""), &out, &errb); code != 0 {
			b.Fatalf("wanna-build %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	for _, arch := range []string{"amd64", "arm64"} {
		wb(arch, "--merge-v3", debiandata.Path(b, "debian-bookworm-main/Packages-"+arch+".xz"), ".", src)
		for _, l := range strings.Split(wb(arch, "--list=needs-build"), "\n")[:5] {
			pv := strings.Fields(l)[0]
			wb(arch, "-U", "bench", "--take", pv[strings.LastIndexByte(pv, '/')+1:])
		}
	}
	debug.SetGCPercent(100) // the merge raised it
	if storetest.Postgres() {
		// The tables as autovacuum leaves them a minute after the merge:
		// statistics for the planner, pages marked all-visible.
		conn, err := pgx.Connect(context.Background(), db)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	debug.FreeOSMemory()
	return db
}

// touch changes the build priority of hello on bookworm/amd64 as
// --build-priority does, with its history entry, so neither the queue nor
// its history is the one the server read before.
func touch(b *testing.B, spec string, n int) {
	db, err := store.Open(spec, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update("bookworm", "amd64", func(tx queue.Tx) error {
		r, err := tx.Get("hello")
		if err != nil || r == nil {
			return fmt.Errorf("hello: %v", err)
		}
		r.BuildPri = n
		if err := tx.Log(&queue.Transaction{Package: r.Package, Version: r.Version, Action: "--build-priority",
			From: r.PreviousState, To: r.State, RealUser: "root", User: "root", Time: time.Now().Unix()}); err != nil {
			return err
		}
		return tx.Put(r)
	}); err != nil {
		b.Fatal(err)
	}
}

// rssMiB is the process's resident memory (VmRSS).
func rssMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func p95(times []time.Duration) float64 {
	slices.Sort(times)
	return float64(times[(len(times)*95+99)/100-1].Microseconds()) / 1000
}

// BenchmarkPages: each page over the real bookworm merge of amd64 and arm64
// (34k sources each), the server's store opened (bbolt) or connected
// (PostgreSQL) as it serves. Every other request follows a change of the
// queue, so the server cannot use what it read before: p95-ms is the
// 95th percentile of the requests' times on an unchanged queue,
// changed-p95-ms that of those after a change. rss-MiB is the process's
// resident memory after serving the page (the merge's memory given
// back first).
func BenchmarkPages(b *testing.B) {
	spec := realQueue(b)
	s := &web.Server{DB: spec}
	defer s.Close()
	h := s.Handler()
	for _, path := range []string{
		"/", "/api/", "/metrics",
		"/package/gcc-12", "/api/package/gcc-12",
		"/dist/bookworm/amd64", "/api/dist/bookworm/amd64",
		"/dist/bookworm/amd64?sort=name&page=50",
		"/dist/bookworm/arm64?state=needs-build",
		"/builder/bench",
		"/builders",
	} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_"), func(b *testing.B) {
			var same, changed []time.Duration
			size := 0
			for i := 0; i < b.N; i++ {
				if i%2 == 1 {
					b.StopTimer()
					touch(b, spec, i)
					b.StartTimer()
				}
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if i%2 == 1 {
					changed = append(changed, time.Since(start))
				} else {
					same = append(same, time.Since(start))
				}
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(p95(same), "p95-ms")
			if len(changed) > 0 {
				b.ReportMetric(p95(changed), "changed-p95-ms")
			}
			b.ReportMetric(float64(size)/1024, "KiB")
			b.ReportMetric(rssMiB(b), "rss-MiB")
		})
	}
}

// BenchmarkLogSlowClients (issue 22, item 5): a client's page of a big
// log (5 MiB; the page is 2 MiB) while 0, 4 and 100 other clients ask
// for it or its raw form over TCP and never read the answer, the server
// blocked writing to each of them (see slow_test.go). p95-ms is the 95th
// percentile of the client's times; held-MiB what the non-readers'
// answers hold (2 MiB a page), from before the client's first request to
// after its last.
func BenchmarkLogSlowClients(b *testing.B) {
	web.SetLogStall(b, time.Hour) // the non-readers are not dropped
	spec, page := web.SlowLogQueue(b)
	s := &web.Server{DB: spec}
	defer s.Close()
	slow, normal := web.TwoServers(b, s.Handler())
	client := &http.Client{Timeout: time.Minute}
	for _, n := range []int{0, 4, 100} {
		b.Run(fmt.Sprintf("non-readers=%d", n), func(b *testing.B) {
			web.SettleLog(b, 0) // the last run's non-readers are gone
			for i := range n {
				path := page
				if i%2 == 1 {
					path += "/raw"
				}
				if _, code := web.NonReader(b, slow, path); code != http.StatusOK {
					b.Fatalf("non-reader %d: GET %s: %d", i, path, code)
				}
			}
			held := web.LogAnswersHeld()
			var times []time.Duration
			for b.Loop() {
				code, took := web.NormalGet(b, client, normal, page)
				if code != http.StatusOK {
					b.Fatalf("GET %s with %d non-readers: %d", page, n, code)
				}
				times = append(times, took)
			}
			web.SettleLog(b, held)
			b.ReportMetric(p95(times), "p95-ms")
			b.ReportMetric(float64(held)/(1<<20), "held-MiB")
		})
	}
}

package web_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/debiandata"
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
	return db
}

// BenchmarkPages: each page over the real bookworm merge of amd64 and arm64
// (34k sources each), the queue opened per request as the server does;
// p95-ms is the 95th percentile of the requests' times.
func BenchmarkPages(b *testing.B) {
	h := (&web.Server{DB: realQueue(b)}).Handler()
	for _, path := range []string{
		"/", "/api/", "/metrics",
		"/package/gcc-12", "/api/package/gcc-12",
		"/dist/bookworm/amd64", "/api/dist/bookworm/amd64",
		"/dist/bookworm/arm64?state=needs-build",
		"/builder/bench",
	} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(path, "/"), "/", "_"), func(b *testing.B) {
			times := make([]time.Duration, 0, b.N)
			size := 0
			for i := 0; i < b.N; i++ {
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				times = append(times, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[(len(times)*95+99)/100-1].Microseconds())/1000, "p95-ms")
			b.ReportMetric(float64(size)/1024, "KiB")
		})
	}
}

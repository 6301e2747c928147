package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/debiandata"
)

var (
	plainOnce sync.Once
	plainDir  string
)

// plainData decompresses Sources.xz and Packages-arm64.xz once.
func plainData(b *testing.B) (sources, packages string) {
	dataDir := debiandata.Path(b, "debian-bookworm-main")
	plainOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wb-bench-data-")
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range []string{"Sources", "Packages-arm64"} {
			out, err := exec.Command("xz", "-dc", filepath.Join(dataDir, f+".xz")).Output()
			if err != nil {
				b.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, f), out, 0o644)
		}
		plainDir = dir
	})
	return filepath.Join(plainDir, "Sources"), filepath.Join(plainDir, "Packages-arm64")
}

// mergedDB is a database holding the real merge.
func mergedDB(b *testing.B) string {
	src, pkgs := plainData(b)
	db := filepath.Join(b.TempDir(), "wb.db")
	run(b, db, "--merge-v3", pkgs, ".", src)
	return db
}

func reportRSS(b *testing.B, rss int64) { b.ReportMetric(float64(rss)/1024, "peak-RSS-MB") }

// BenchmarkMergeEmpty: the real bookworm Sources + arm64 Packages
// (uncompressed) into an empty database, one whole process.
func BenchmarkMergeEmpty(b *testing.B) {
	src, pkgs := plainData(b)
	var rss int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := filepath.Join(b.TempDir(), "wb.db")
		b.StartTimer()
		_, rss = runRSS(b, db, "--merge-v3", pkgs, ".", src)
	}
	reportRSS(b, rss)
}

// BenchmarkMergeUnchanged: the same merge again, nothing changed.
func BenchmarkMergeUnchanged(b *testing.B) {
	src, pkgs := plainData(b)
	db := mergedDB(b)
	b.ResetTimer()
	var rss int64
	for i := 0; i < b.N; i++ {
		_, rss = runRSS(b, db, "--merge-v3", pkgs, ".", src)
	}
	reportRSS(b, rss)
}

// BenchmarkMergeEmptyXZ: the merge from the .xz files.
func BenchmarkMergeEmptyXZ(b *testing.B) {
	plainData(b)
	var rss int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := filepath.Join(b.TempDir(), "wb.db")
		b.StartTimer()
		_, rss = runRSS(b, db, "--merge-v3", debiandata.Path(b, "debian-bookworm-main/Packages-arm64.xz"), ".", debiandata.Path(b, "debian-bookworm-main/Sources.xz"))
	}
	reportRSS(b, rss)
}

// BenchmarkListNeedsBuild: --list=needs-build with all sources registered,
// per whole process.
func BenchmarkListNeedsBuild(b *testing.B) {
	db := mergedDB(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(b, db, "--list=needs-build")
	}
}

// BenchmarkListAll: --list=all (34k lines), per whole process.
func BenchmarkListAll(b *testing.B) {
	db := mergedDB(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(b, db, "--list=all")
	}
}

// BenchmarkInfo: --info of one package with all sources registered.
func BenchmarkInfo(b *testing.B) {
	db := mergedDB(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(b, db, "--info", "gcc-12")
	}
}

// BenchmarkTake: --take (and --give-back, to take it again) with all
// sources registered; the figure is per take+give-back pair / 2.
func BenchmarkTake(b *testing.B) {
	db := mergedDB(b)
	out := run(b, db, "--list=needs-build")
	pv := strings.Fields(out)[0]
	pv = pv[strings.LastIndexByte(pv, '/')+1:]
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		run(b, db, "-U", "bench", "--take", pv)
		run(b, db, "-U", "bench", "--give-back", pv)
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(2*b.N), "ms/process")
}

// BenchmarkConcurrentTakes: 8 processes racing to take 200 packages each
// (one process per take).
func BenchmarkConcurrentTakes(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, pkgs := queueOf(b, 200)
		b.StartTimer()
		_, _, wall := takeRace(b, db, pkgs, 8)
		b.ReportMetric(float64(8*len(pkgs))/wall.Seconds(), "takes/s")
	}
}

package control

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"buildd/internal/debiandata"
)

var (
	benchOnce  sync.Once
	benchFiles []string
	benchDir   string
)

// benchIndexes decompresses the real Sources and Packages-arm64 once into a
// temporary directory (removed by TestMain) and returns their paths.
func benchIndexes(b *testing.B) []string {
	for _, n := range []string{"Sources.xz", "Packages-arm64.xz"} {
		debiandata.Path(b, filepath.Join("debian-bookworm-main", n))
	}
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "control-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		for _, n := range []string{"Sources", "Packages-arm64"} {
			rc, err := Open(debiandata.Path(b, filepath.Join("debian-bookworm-main", n+".xz")))
			if err != nil {
				b.Fatal(err)
			}
			out := filepath.Join(dir, n)
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, rc); err != nil {
				b.Fatal(err)
			}
			rc.Close()
			f.Close()
			benchFiles = append(benchFiles, out)
		}
	})
	return benchFiles
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchRead reads every paragraph of the real indexes, keeping the named
// fields (all when keep is nil).
func benchRead(b *testing.B, keep []string) {
	files := benchIndexes(b)
	var size int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		size += st.Size()
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, path := range files {
			rc, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r := NewReader(rc, path)
			if keep != nil {
				r.Keep(keep...)
			}
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			rc.Close()
		}
		b.ReportMetric(float64(n), "paragraphs")
	}
}

// BenchmarkReadMergeFields keeps what a merge needs.
func BenchmarkReadMergeFields(b *testing.B) {
	benchRead(b, []string{"Package", "Version", "Architecture", "Source", "Section", "Priority", "Build-Depends", "Build-Depends-Arch", "Build-Conflicts", "Build-Conflicts-Arch", "Extra-Source-Only"})
}

// BenchmarkReadAllFields stores every field.
func BenchmarkReadAllFields(b *testing.B) { benchRead(b, nil) }

// BenchmarkReadXZ reads the compressed indexes through xz, keeping the merge
// fields: xz decompression bounds it.
func BenchmarkReadXZ(b *testing.B) {
	var files []string
	var size int64
	for _, n := range []string{"Sources.xz", "Packages-arm64.xz"} {
		files = append(files, debiandata.Path(b, filepath.Join("debian-bookworm-main", n)))
	}
	for _, f := range benchIndexes(b) {
		st, _ := os.Stat(f)
		size += st.Size()
	}
	b.SetBytes(size)
	for b.Loop() {
		for _, path := range files {
			rc, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r := NewReader(rc, path).Keep("Package", "Version", "Architecture", "Source")
			for {
				if _, err := r.Next(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
			rc.Close()
		}
	}
}

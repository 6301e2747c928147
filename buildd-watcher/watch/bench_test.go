package watch

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkArchive archives 1000 package logs of 16 KiB each (plog) with
// archive/tar and compress/gzip at the best compression, as a week of a
// busy host leaves them.
func BenchmarkArchive(b *testing.B) {
	text := strings.Repeat("dpkg-buildpackage: info: source package hello, version 1.0-1\n", 16*1024/60)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h, w := newWatcher(b, "")
		for j := 0; j < 1000; j++ {
			h.Write(b, fmt.Sprintf("logs/pkg%d_1.0-1_20240101-%04d", j, j), text, 8*24*time.Hour)
		}
		h.Write(b, "old-logs/plog-stamp", "", 8*24*time.Hour)
		b.SetBytes(int64(1000 * len(text)))
		b.StartTimer()
		name, err := w.Archive(w.archiveSets()[0])
		if err != nil || name == "" {
			b.Fatal(name, err)
		}
	}
}

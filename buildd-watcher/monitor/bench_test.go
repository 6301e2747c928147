package monitor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkScan reads a day of a busy daemon.log (200,000 lines, one in a
// thousand a warning) for new diagnostics.
func BenchmarkScan(b *testing.B) {
	path := filepath.Join(b.TempDir(), "daemon.log")
	var text strings.Builder
	for i := 0; i < 200000; i++ {
		if i%1000 == 0 {
			fmt.Fprintf(&text, "Nov 21 07:%02d:00 buildd[1234]: Warning: queue of sid did not answer (%d)\n", i%60, i)
		} else {
			fmt.Fprintf(&text, "Nov 21 07:%02d:00 buildd[1234]: pkg%d_1.0-1: build successful\n", i%60, i)
		}
	}
	if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(text.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lines, off, err := scan(path, 0)
		if err != nil || len(lines) != 200 || off != int64(text.Len()) {
			b.Fatal(len(lines), off, err)
		}
	}
}

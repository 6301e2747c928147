package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkMeasure is what the helper's measurement of one command costs
// it: its cgroup's peak memory (a real cgroup under the memory hierarchy's
// buildd/) and its children's CPU time. A build runs a handful of commands
// (fetch, unpack, resolve, install, build).
func BenchmarkMeasure(b *testing.B) {
	h, ok := findMemoryHierarchy()
	if !ok || os.Geteuid() != 0 {
		msg := fmt.Sprintf("!!!!! SKIPPED %s: needs root and a cgroup memory controller !!!!!", b.Name())
		fmt.Fprintln(os.Stderr, msg)
		b.Skip(msg)
	}
	parent := filepath.Join(h.dir, cgroupParent)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		b.Fatal(err)
	}
	cg := &memCgroup{h: h, dir: filepath.Join(parent, fmt.Sprintf("bench-%d", os.Getpid()))}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		b.Fatal(err)
	}
	defer cg.rmdir()
	for b.Loop() {
		cg.peak()
		childrenCPU()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/command")
}

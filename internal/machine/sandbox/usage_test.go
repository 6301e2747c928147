package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

// burn is a perl program that burns CPU until it has used 0.3 s of it.
const burn = `perl -e 'my @t; do { @t = times } while ($t[0] + $t[1] < 0.3)'`

// TestUsage: Run measures what the command and everything it started used,
// on success and on failure: the peak of its memory cgroup (a command that
// keeps 64 MiB in memory: tail holding 64 MiB of zeros without a newline),
// none without MemoryMax; and the CPU time of every process, an orphan's
// (reparented to the sandbox's first process) included.
func TestUsage(t *testing.T) {
	ctl := sandbox.MemoryController()
	e := machinetest.New(t)
	w := working(t, e, "usage-test")
	for _, tc := range []struct {
		name      string
		memoryMax int64
		script    string
		status    int           // the exit status
		minPeak   int64         // bytes; -1: PeakMemory must be 0
		minCPU    time.Duration // of Usage.CPU
	}{
		{name: "memory", memoryMax: 512 << 20, script: "head -c 64M /dev/zero | tail >/dev/null", minPeak: 64 << 20},
		{name: "memory-failing", memoryMax: 512 << 20, script: "head -c 64M /dev/zero | tail >/dev/null; exit 3", status: 3, minPeak: 64 << 20},
		{name: "no-memory-limit", script: "head -c 64M /dev/zero | tail >/dev/null", minPeak: -1},
		{name: "cpu", script: burn, minCPU: 200 * time.Millisecond},
		{name: "cpu-failing", memoryMax: 512 << 20, script: burn + "; exit 4", status: 4, minCPU: 200 * time.Millisecond},
		{name: "cpu-of-an-orphan", script: "(" + burn + " && touch /tmp/burnt &)\nuntil [ -e /tmp/burnt ]; do sleep 0.05; done",
			minCPU: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.memoryMax > 0 && ctl == "" {
				msg := fmt.Sprintf("!!!!! SKIPPED %s: NO CGROUP MEMORY CONTROLLER on this host: no peak memory to measure !!!!!", t.Name())
				fmt.Fprintln(os.Stderr, msg)
				t.Skip(msg)
			}
			os.Remove(filepath.Join(w.Path(), "tmp/burnt"))
			var out strings.Builder
			c := &sandbox.Cmd{Root: w.Path(), User: machine.BuildUser, Args: []string{"/bin/sh", "-ec", tc.script},
				Output: &out, MemoryMax: tc.memoryMax}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := c.Run(ctx)
			var ee *sandbox.ExitError
			switch {
			case tc.status == 0 && err != nil:
				t.Fatalf("%v\n%s", err, out.String())
			case tc.status != 0 && (!errors.As(err, &ee) || ee.Status != tc.status):
				t.Fatalf("got %v, want exit status %d\n%s", err, tc.status, out.String())
			}
			u := c.Usage()
			switch {
			case tc.minPeak < 0 && u.PeakMemory != 0:
				t.Errorf("PeakMemory %d bytes without a memory cgroup, want 0 (unknown)", u.PeakMemory)
			case tc.minPeak > 0 && u.PeakMemory == 0 && strings.HasPrefix(ctl, "cgroup v2 ") && !hasMemoryPeak(ctl):
				msg := fmt.Sprintf("!!!!! SKIPPED %s: this kernel's cgroup v2 has no memory.peak (Linux 5.19 and later) !!!!!", t.Name())
				fmt.Fprintln(os.Stderr, msg)
				t.Skip(msg)
			case u.PeakMemory < tc.minPeak:
				t.Errorf("PeakMemory %d MiB, want at least %d MiB", u.PeakMemory>>20, tc.minPeak>>20)
			}
			if u.CPU < tc.minCPU || u.CPU <= 0 {
				t.Errorf("CPU %v, want at least %v (and some)", u.CPU, tc.minCPU)
			}
		})
	}
}

// hasMemoryPeak reports whether the cgroup v2 hierarchy of the memory
// controller ctl ("cgroup v2 DIR") has memory.peak in its cgroups, as the
// sandboxes' parent cgroup, made by the first Run with MemoryMax, shows.
func hasMemoryPeak(ctl string) bool {
	_, err := os.Stat(filepath.Join(strings.TrimPrefix(ctl, "cgroup v2 "), "buildd", "memory.peak"))
	return err == nil
}

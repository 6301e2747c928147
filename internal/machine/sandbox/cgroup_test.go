package sandbox_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

// TestMemoryMax: a command that touches more memory than MemoryMax (tail
// keeps 100 MiB of zeros without a newline) is killed by the OOM killer and
// the ExitError says so, while under a larger limit it succeeds. The
// command is inside its cgroup buildd/... from its start, with the limit
// set, together with the helper; the cgroup is gone afterwards even when
// the command leaves a process behind. Making a cgroup removes empty
// buildd/* cgroups older than a minute (left by a SIGKILLed helper) and
// leaves younger ones.
func TestMemoryMax(t *testing.T) {
	ctl := sandbox.MemoryController()
	if ctl == "" {
		t.Skip("SKIPPED: NO CGROUP MEMORY CONTROLLER on this host: Cmd.MemoryMax cannot be tested here")
	}
	f := strings.Fields(ctl) // "cgroup v1 /sys/fs/cgroup/memory"
	version, hier := f[1], strings.Join(f[2:], " ")
	limitFile, swapFile := "memory.max", "memory.swap.max"
	if version == "v1" {
		limitFile, swapFile = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"
	}
	_, err := os.Stat(filepath.Join(hier, swapFile))
	swapAccounting := err == nil
	parent := filepath.Join(hier, "buildd")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, "stale-test-"+strconv.Itoa(os.Getpid()))
	fresh := filepath.Join(parent, "fresh-test-"+strconv.Itoa(os.Getpid()))
	for _, d := range []string{stale, fresh} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(d)
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	e := machinetest.New(t)
	w := working(t, e, "memory-test")
	// The command reads its cgroup through the hierarchy bound read-only.
	script := `cg=$(sed -n 's/^[0-9]*:[^:]*:\(\/buildd\/.*\)$/\1/p' /proc/self/cgroup)
echo "cgroup=$cg"
echo "limit=$(cat "` + hier + `$cg/` + limitFile + `")"
echo "swap=$(cat "` + hier + `$cg/` + swapFile + `" 2>/dev/null || true)"
echo "procs=$(cat "` + hier + `$cg/cgroup.procs" | tr '\n' ' ')"
sleep 600 &
head -c 100M /dev/zero | tail >/dev/null
echo survived`
	for _, tc := range []struct {
		limit int64
		oom   bool
	}{{64 << 20, true}, {256 << 20, false}} {
		var out strings.Builder
		c := &sandbox.Cmd{Root: w.Path(), User: machine.BuildUser, Args: []string{"/bin/sh", "-ec", script},
			Output: &out, MemoryMax: tc.limit, ReadOnly: []string{hier}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := c.Run(ctx)
		cancel()
		var ee *sandbox.ExitError
		switch {
		case tc.oom && (!errors.As(err, &ee) || ee.OOMKills < 1 || ee.Status != 137):
			t.Errorf("limit %d MiB: got %#v, want an ExitError with status 137 and OOM kills\n%s", tc.limit>>20, err, out.String())
		case tc.oom && !strings.Contains(out.String(), "buildd-sandbox: out of memory: the kernel's OOM killer killed"):
			t.Errorf("limit %d MiB: the output does not say out of memory:\n%s", tc.limit>>20, out.String())
		case !tc.oom && (err != nil || !strings.Contains(out.String(), "survived")):
			t.Errorf("limit %d MiB: %v\n%s", tc.limit>>20, err, out.String())
		}
		kv := map[string]string{}
		for _, l := range strings.Split(out.String(), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				kv[k] = strings.TrimSpace(v)
			}
		}
		cg := kv["cgroup"]
		if !strings.HasPrefix(cg, "/buildd/") || strings.Contains(cg, "/buildd/fresh") {
			t.Fatalf("limit %d MiB: the command is in cgroup %q, not in its own buildd/...\n%s", tc.limit>>20, cg, out.String())
		}
		if kv["limit"] != strconv.FormatInt(tc.limit, 10) {
			t.Errorf("limit %d MiB: %s is %q", tc.limit>>20, limitFile, kv["limit"])
		}
		wantSwap := ""
		if swapAccounting {
			wantSwap = strconv.FormatInt(tc.limit, 10) // memory+swap = memory: no swap
			if version == "v2" {
				wantSwap = "0"
			}
		}
		if kv["swap"] != wantSwap {
			t.Errorf("limit %d MiB: %s is %q, want %q", tc.limit>>20, swapFile, kv["swap"], wantSwap)
		}
		if procs := strings.Fields(kv["procs"]); len(procs) == 0 || procs[0] != "1" {
			t.Errorf("limit %d MiB: cgroup.procs %q, want the helper (pid 1 in the sandbox) first", tc.limit>>20, kv["procs"])
		}
		if _, err := os.Stat(filepath.Join(hier, cg)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("limit %d MiB: cgroup %s left behind (%v)", tc.limit>>20, cg, err)
		}
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale empty cgroup %s not removed (%v)", stale, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("young cgroup %s removed: %v", fresh, err)
	}
}

// TestMemoryMaxCancelled: a command killed through its context (build
// timeout, watchdog, TERM) kills the helper before it can clean up or
// measure; Run removes the helper's cgroup itself, and Usage is zero.
func TestMemoryMaxCancelled(t *testing.T) {
	ctl := sandbox.MemoryController()
	if ctl == "" {
		t.Skip("SKIPPED: NO CGROUP MEMORY CONTROLLER on this host: Cmd.MemoryMax cannot be tested here")
	}
	hier := strings.Join(strings.Fields(ctl)[2:], " ")
	e := machinetest.New(t)
	w := working(t, e, "memory-cancel-test")
	var out strings.Builder
	c := &sandbox.Cmd{Root: w.Path(), User: machine.BuildUser, Output: &out, MemoryMax: 64 << 20,
		Args: []string{"/bin/sh", "-ec", `sed -n 's/^[0-9]*:[^:]*:\(\/buildd\/.*\)$/\1/p' /proc/self/cgroup; sleep 600`}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error\n%s", err, out.String())
	}
	if u := c.Usage(); u != (sandbox.Usage{}) {
		t.Errorf("Usage %+v of a killed sandbox, want zero", u)
	}
	cg := strings.TrimSpace(out.String())
	if !strings.HasPrefix(cg, "/buildd/") {
		t.Fatalf("the command is in cgroup %q", cg)
	}
	if _, err := os.Stat(filepath.Join(hier, cg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup %s of the killed helper left behind (%v)", cg, err)
	}
}

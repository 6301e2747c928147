package jobgraph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buildd/internal/pool"
)

// start is the fixed time of the runs, so log names are known.
var start = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// stamp is the time part of the log names of a run at start.
const stamp = "20240506-070809-"

// fixed is a Now returning start.
func fixed() time.Time { return start }

// ranJobs records which jobs ran.
type ranJobs struct {
	mu    sync.Mutex
	names []string
}

func (r *ranJobs) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
}

func (r *ranJobs) sorted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.names))
}

// logNames are the names of the files in dir.
func logNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestRunFailure: a fails after 30 lines of output, b depends on it, c is
// independent and d depends on c. A log of an earlier run with a's name
// is left alone.
func TestRunFailure(t *testing.T) {
	var output, tail string // a's output, the tail of it printed
	for i := 1; i <= 30; i++ {
		output += fmt.Sprintf("output line %02d\n", i)
		if i > 10 {
			tail += fmt.Sprintf("    output line %02d\n", i)
		}
	}
	for _, tc := range []struct {
		name      string
		keepGoing bool
		want      Result
		wantOut   string // DIR is the log directory
		wantLogs  []string
	}{
		{
			name: "stop",
			want: Result{Failed: []string{"a"}, Skipped: []string{"b"}, NotStarted: []string{"c", "d"}},
			wantOut: "start a (log DIR/" + stamp + "a-2.log)\n" +
				"FAILED a: boom\n" + tail +
				"skip b: depends on failed a\n" +
				"not started c: stopped after a failure\n" +
				"not started d: stopped after a failure\n",
			wantLogs: []string{stamp + "a-2.log", stamp + "a.log"},
		},
		{
			name:      "keep going",
			keepGoing: true,
			want:      Result{Succeeded: []string{"c", "d"}, Failed: []string{"a"}, Skipped: []string{"b"}},
			wantOut: "start a (log DIR/" + stamp + "a-2.log)\n" +
				"FAILED a: boom\n" + tail +
				"skip b: depends on failed a\n" +
				"start c (log DIR/" + stamp + "c.log)\n" +
				"ok c (0.0 s)\n" +
				"start d (log DIR/" + stamp + "d.log)\n" +
				"ok d (0.0 s)\n",
			wantLogs: []string{stamp + "a-2.log", stamp + "a.log", stamp + "c.log", stamp + "d.log"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			earlier := filepath.Join(dir, stamp+"a.log")
			if err := os.WriteFile(earlier, []byte("earlier run\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var ran ranJobs
			say := func(name string) func(context.Context, io.Writer) error {
				return func(_ context.Context, log io.Writer) error {
					ran.add(name)
					_, err := fmt.Fprintf(log, "%s ran\n", name)
					return err
				}
			}
			jobs := []Job{
				{Name: "a", Run: func(_ context.Context, log io.Writer) error {
					ran.add("a")
					for i := 1; i <= 30; i++ {
						fmt.Fprintf(log, "output line %02d\n", i)
					}
					return errors.New("boom")
				}},
				{Name: "b", Deps: []string{"a"}, Run: say("b")},
				{Name: "c", Run: say("c")},
				{Name: "d", Deps: []string{"c"}, Run: say("d")},
			}
			var out bytes.Buffer
			r := &Runner{Pool: pool.NewPool(1), LogDir: dir, KeepGoing: tc.keepGoing, Out: &out, Now: fixed}
			res, err := r.Run(context.Background(), jobs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res, tc.want) {
				t.Errorf("result %+v, want %+v", res, tc.want)
			}
			if res.OK() {
				t.Error("OK with a failed job")
			}
			if got, want := strings.ReplaceAll(out.String(), dir, "DIR"), tc.wantOut; got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			if got, want := ran.sorted(), append(res.Succeeded, res.Failed...); !reflect.DeepEqual(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("jobs run: %v, want those succeeded or failed: %v", got, want)
			}
			if got := logNames(t, dir); !reflect.DeepEqual(got, tc.wantLogs) {
				t.Errorf("log files %v, want %v", got, tc.wantLogs)
			}
			wantLogs := map[string]string{
				stamp + "a.log":   "earlier run\n",
				stamp + "a-2.log": "job a started 2024-05-06 07:08:09\n" + output + "job a failed: boom (0.0 s)\n",
				stamp + "c.log":   "job c started 2024-05-06 07:08:09\nc ran\njob c ok (0.0 s)\n",
				stamp + "d.log":   "job d started 2024-05-06 07:08:09\nd ran\njob d ok (0.0 s)\n",
			}
			for _, name := range tc.wantLogs {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != wantLogs[name] {
					t.Errorf("%s:\n%s\nwant:\n%s", name, b, wantLogs[name])
				}
			}
		})
	}
}

// TestConcurrency: independent jobs run at once up to the pool's size,
// and a job depending on them after all of them.
func TestConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		// overlap makes each of the first two jobs wait until the
		// other has started.
		overlap bool
		wantMax int32
	}{
		{"-j 1", 1, false, 1},
		{"-j 2", 2, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur, peak, finished atomic.Int32
			started := []chan struct{}{make(chan struct{}), make(chan struct{})}
			job := func(name string, i int) Job {
				return Job{Name: name, Run: func(ctx context.Context, log io.Writer) error {
					defer finished.Add(1)
					n := cur.Add(1)
					defer cur.Add(-1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					if !tc.overlap || i > 1 {
						runtime.Gosched()
						return nil
					}
					close(started[i])
					select {
					case <-started[1-i]:
						return nil
					case <-time.After(10 * time.Second):
						return errors.New("the other job did not start while this one ran")
					}
				}}
			}
			jobs := []Job{
				job("push:bookworm-amd64:host1", 0),
				job("push:bookworm-amd64:host2", 1),
				job("push:trixie-amd64:host1", 2),
				job("push:trixie-amd64:host2", 3),
				{Name: "report", Deps: []string{"push:bookworm-amd64:host1", "push:bookworm-amd64:host2",
					"push:trixie-amd64:host1", "push:trixie-amd64:host2"},
					Run: func(context.Context, io.Writer) error {
						if n := finished.Load(); n != 4 {
							return fmt.Errorf("started with %d of its 4 dependencies finished", n)
						}
						return nil
					}},
			}
			dir := t.TempDir()
			var out bytes.Buffer
			r := &Runner{Pool: pool.NewPool(tc.size), LogDir: dir, Out: &out, Now: fixed}
			res, err := r.Run(context.Background(), jobs)
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() || len(res.Succeeded) != len(jobs) {
				t.Fatalf("result %+v\n%s", res, out.String())
			}
			if got := peak.Load(); got != tc.wantMax {
				t.Errorf("at most %d jobs at once, want %d", got, tc.wantMax)
			}
			if got := logNames(t, dir); len(got) != len(jobs) || got[0] != stamp+"push_bookworm-amd64_host1.log" {
				t.Errorf("log files %v, want one per job", got)
			}
		})
	}
}

func TestDryRun(t *testing.T) {
	never := func(context.Context, io.Writer) error {
		t.Error("a dry run ran a job")
		return nil
	}
	jobs := []Job{
		{Name: "upgrade:m1", Deps: []string{"create:m1"}, Run: never},
		{Name: "create:m1", Run: never},
		{Name: "push:bookworm-amd64:host2", Deps: []string{"upgrade:m1", "create:m2"}, Run: never},
		{Name: "create:m2", Run: never},
	}
	dir := filepath.Join(t.TempDir(), "logs")
	var out bytes.Buffer
	r := &Runner{Pool: pool.NewPool(2), LogDir: dir, Out: &out}
	if err := r.DryRun(jobs); err != nil {
		t.Fatal(err)
	}
	want := "create:m1\n" +
		"upgrade:m1  after create:m1\n" +
		"create:m2\n" +
		"push:bookworm-amd64:host2  after upgrade:m1, create:m2\n"
	if out.String() != want {
		t.Errorf("dry run:\n%s\nwant:\n%s", out.String(), want)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run made the log directory: %v", err)
	}
}

func TestPlanErrors(t *testing.T) {
	nop := func(context.Context, io.Writer) error { return nil }
	for _, tc := range []struct {
		name    string
		jobs    []Job
		wantErr string
	}{
		{"duplicate", []Job{{Name: "a", Run: nop}, {Name: "b", Run: nop}, {Name: "a", Run: nop}},
			"duplicate job a"},
		{"unknown", []Job{{Name: "a", Run: nop}, {Name: "b", Deps: []string{"a", "c"}, Run: nop}},
			"job b: depends on unknown job c"},
		{"self", []Job{{Name: "a", Deps: []string{"a"}, Run: nop}},
			"dependency cycle: a -> a"},
		// e depends on the cycle without being in it.
		{"cycle", []Job{
			{Name: "e", Deps: []string{"a"}, Run: nop},
			{Name: "a", Deps: []string{"c"}, Run: nop},
			{Name: "b", Deps: []string{"a"}, Run: nop},
			{Name: "c", Deps: []string{"b"}, Run: nop},
			{Name: "d", Run: nop},
		}, "dependency cycle: a -> c -> b -> a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Plan(tc.jobs); err == nil || err.Error() != tc.wantErr {
				t.Errorf("Plan: %v, want %s", err, tc.wantErr)
			}
			dir := filepath.Join(t.TempDir(), "logs")
			r := &Runner{Pool: pool.NewPool(1), LogDir: dir}
			if _, err := r.Run(context.Background(), tc.jobs); err == nil || err.Error() != tc.wantErr {
				t.Errorf("Run: %v, want %s", err, tc.wantErr)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Run of a bad graph made the log directory: %v", err)
			}
		})
	}
}

func TestPanic(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	r := &Runner{Pool: pool.NewPool(2), LogDir: dir, Out: &out, Now: fixed}
	res, err := r.Run(context.Background(), []Job{
		{Name: "p", Run: func(context.Context, io.Writer) error { panic("kaboom") }},
		{Name: "q", Deps: []string{"p"}, Run: func(context.Context, io.Writer) error {
			t.Error("a job depending on a panicked one ran")
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Failed: []string{"p"}, Skipped: []string{"q"}}); !reflect.DeepEqual(res, want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if !strings.Contains(out.String(), "\nFAILED p: panic: kaboom\n") {
		t.Errorf("output does not tell the panic:\n%s", out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, stamp+"p.log"))
	if err != nil {
		t.Fatal(err)
	}
	if log := string(b); !strings.Contains(log, "\npanic: kaboom\ngoroutine ") || !strings.HasSuffix(log, "\njob p failed: panic: kaboom (0.0 s)\n") {
		t.Errorf("log has no panic and stack:\n%s", log)
	}
}

// TestCancel: a job cancels the run; the job depending on it is skipped,
// the other one not started.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	r := &Runner{Pool: pool.NewPool(1), LogDir: t.TempDir(), KeepGoing: true, Out: &out}
	res, err := r.Run(ctx, []Job{
		{Name: "a", Run: func(ctx context.Context, _ io.Writer) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}},
		{Name: "b", Deps: []string{"a"}, Run: func(context.Context, io.Writer) error { return nil }},
		{Name: "c", Run: func(context.Context, io.Writer) error {
			t.Error("a job started after the run was cancelled")
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{Failed: []string{"a"}, Skipped: []string{"b"}, NotStarted: []string{"c"}}); !reflect.DeepEqual(res, want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if !strings.Contains(out.String(), "\nnot started c: context canceled\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestTail(t *testing.T) {
	long := strings.Repeat("x", tailBytes)
	for _, tc := range []struct {
		name   string
		output string
		lines  int
		want   string
	}{
		{"none", "", 0, ""},
		{"fewer lines", "one\ntwo\n", 0, "\n    one\n    two"},
		{"no final newline", "one\ntwo\nthree", 2, "\n    two\n    three"},
		{"no tail", "one\n", -1, ""},
		{"long", "first\n" + long + "\nlast\n", 5, "\n    last"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "log"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("header\n" + tc.output); err != nil {
				t.Fatal(err)
			}
			r := &Runner{TailLines: tc.lines}
			if got := r.tail(f, int64(len("header\n"))); got != tc.want {
				t.Errorf("tail %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFileName(t *testing.T) {
	for name, want := range map[string]string{
		"push:bookworm-amd64:host2": "push_bookworm-amd64_host2",
		"upgrade:m1":                "upgrade_m1",
		"../etc/x y":                ".._etc_x_y",
		"g++-1.2_x":                 "g++-1.2_x",
		"é":                         "_",
	} {
		if got := fileName(name); got != want {
			t.Errorf("fileName(%q) = %q, want %q", name, got, want)
		}
	}
}

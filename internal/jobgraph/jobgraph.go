// Package jobgraph owns running a set of jobs with dependencies under a
// token pool, each job's output in its own log file, in the manner of
// Debian's chroot-maint: as many jobs at once as the pool has tokens, a job
// only once the jobs it depends on succeeded, and after a failure either no
// new job or (KeepGoing) every job not depending on the failed one.
package jobgraph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"buildd/internal/pool"
)

// Job is one piece of work of a graph.
type Job struct {
	// Name identifies the job among those of a graph, e.g.
	// "push:bookworm-amd64:host2". It names the job's log file, with
	// every character but ASCII letters, digits and ".+-_" replaced by '_'.
	Name string
	// Deps are the names of the jobs that must succeed before it starts.
	Deps []string
	// Run does the job, writing its output to log. ctx ends when the
	// run of the graph is cancelled.
	Run func(ctx context.Context, log io.Writer) error
}

// Plan orders jobs so that each comes after its dependencies; of the jobs
// whose dependencies are placed, the first in jobs comes next. It fails on
// a duplicate name, a dependency on a job not in jobs and a cycle.
func Plan(jobs []Job) ([]Job, error) {
	index := make(map[string]int, len(jobs))
	for i, j := range jobs {
		if _, dup := index[j.Name]; dup {
			return nil, fmt.Errorf("duplicate job %s", j.Name)
		}
		index[j.Name] = i
	}
	for _, j := range jobs {
		for _, d := range j.Deps {
			if _, ok := index[d]; !ok {
				return nil, fmt.Errorf("job %s: depends on unknown job %s", j.Name, d)
			}
		}
	}
	placed := make([]bool, len(jobs))
	ready := func(j Job) bool {
		for _, d := range j.Deps {
			if !placed[index[d]] {
				return false
			}
		}
		return true
	}
	plan := make([]Job, 0, len(jobs))
next:
	for len(plan) < len(jobs) {
		for i, j := range jobs {
			if !placed[i] && ready(j) {
				placed[i] = true
				plan = append(plan, j)
				continue next
			}
		}
		return nil, fmt.Errorf("dependency cycle: %s", strings.Join(cycle(jobs, index, placed), " -> "))
	}
	return plan, nil
}

// cycle returns the names of a dependency cycle among the jobs not placed,
// its first job repeated at its end. Each job not placed depends on one
// not placed, so following such dependencies comes back to a job seen.
func cycle(jobs []Job, index map[string]int, placed []bool) []string {
	at := map[int]int{} // job index to position in path
	var path []string
	i := slices.Index(placed, false)
	for {
		if p, seen := at[i]; seen {
			return append(path[p:], jobs[i].Name)
		}
		at[i] = len(path)
		path = append(path, jobs[i].Name)
		for _, d := range jobs[i].Deps {
			if !placed[index[d]] {
				i = index[d]
				break
			}
		}
	}
}

// Runner runs job graphs.
type Runner struct {
	// Pool gives a token to each job for as long as it runs; its size is
	// the number of jobs run at once (-j N). It must not be nil.
	Pool *pool.Pool
	// LogDir holds a log file per job run: YYYYMMDD-HHMMSS-NAME.log, the
	// time being the job's start, or NAME-2.log, NAME-3.log ... when
	// that file exists. No file is ever overwritten.
	LogDir string
	// KeepGoing (-k) runs, after a failure, every job not depending on
	// a failed one; without it, no job starts after a failure.
	KeepGoing bool
	// Out receives the progress, a line per event: a job started,
	// succeeded, failed (with the tail of its log), was skipped or not
	// started. Nil: no progress is printed.
	Out io.Writer
	// Now is the time (nil: time.Now), called from several goroutines.
	Now func() time.Time
	// TailLines is how many of the last lines of a failed job's output
	// are printed (0: 20; negative: none).
	TailLines int

	outMu sync.Mutex
}

// Result is the outcome of a run, each list of job names in the plan's order.
type Result struct {
	Succeeded []string
	Failed    []string
	// Skipped are the jobs depending (maybe indirectly) on a failed one.
	Skipped []string
	// NotStarted are the jobs not run after a failure (without
	// KeepGoing) or after the run was cancelled.
	NotStarted []string
}

// OK reports whether every job succeeded.
func (r Result) OK() bool {
	return len(r.Failed)+len(r.Skipped)+len(r.NotStarted) == 0
}

// DryRun prints the plan of jobs to r.Out, a line per job with its
// dependencies ("upgrade:m1  after create:m1"), and runs nothing.
func (r *Runner) DryRun(jobs []Job) error {
	plan, err := Plan(jobs)
	if err != nil {
		return err
	}
	for _, j := range plan {
		if len(j.Deps) == 0 {
			r.say("%s", j.Name)
		} else {
			r.say("%s  after %s", j.Name, strings.Join(j.Deps, ", "))
		}
	}
	return nil
}

// Run runs jobs in the order of their plan, each as soon as its
// dependencies succeeded and the pool gives it a token, and returns once
// the jobs started have ended. A job depending on one that failed or was
// skipped is skipped. When ctx ends, running jobs see it and no other job
// starts. Run fails only on a bad graph (see Plan) or a log directory it
// cannot make; the jobs' failures are in the Result.
func (r *Runner) Run(ctx context.Context, jobs []Job) (Result, error) {
	plan, err := Plan(jobs)
	if err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(r.LogDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("job logs: %w", err)
	}
	s := &run{
		r:     r,
		plan:  plan,
		index: make(map[string]int, len(plan)),
		state: make([]state, len(plan)),
		cause: make([]string, len(plan)),
		ended: make(chan ended, len(plan)),
	}
	for i, j := range plan {
		s.index[j.Name] = i
	}
	for {
		s.update()
		i := s.next(ctx)
		switch {
		case i >= 0:
			tok, err := r.Pool.Acquire(ctx)
			if err != nil {
				continue // ctx ended
			}
			// A job may have failed while Acquire waited.
			s.update()
			if i = s.next(ctx); i < 0 {
				tok.Release()
				continue
			}
			s.start(ctx, i, tok)
		case s.running > 0:
			s.record(<-s.ended)
		default:
			s.stop(ctx)
			return s.result(), nil
		}
	}
}

// state is where a job of a run is.
type state int

const (
	pending state = iota
	running
	succeeded
	failed
	skipped
	notStarted
)

// ended is the news that the job at plan index i ended.
type ended struct {
	i  int
	ok bool
}

// run is one run of a graph. Its fields but ended belong to the goroutine
// of Runner.Run; each job's goroutine sends its end on ended before
// releasing its token, so an Acquire woken by the release finds it there.
type run struct {
	r       *Runner
	plan    []Job
	index   map[string]int // name to plan index
	state   []state
	cause   []string // of a skipped job: the failed job it depends on
	running int
	ended   chan ended
}

// update records the jobs that ended, then skips the jobs depending on a
// failed one.
func (s *run) update() {
	for len(s.ended) > 0 {
		s.record(<-s.ended)
	}
	// A job's dependencies come before it in the plan, so one pass
	// carries a failure to the jobs depending on it indirectly.
	for i, j := range s.plan {
		if s.state[i] != pending {
			continue
		}
		if c := s.failedDep(j); c != "" {
			s.state[i], s.cause[i] = skipped, c
			s.r.say("skip %s: depends on failed %s", j.Name, c)
		}
	}
}

// stopped is why no job may start any more: ctx ended, or a job failed
// without KeepGoing. It is nil while jobs may start.
func (s *run) stopped(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if !s.r.KeepGoing && slices.Contains(s.state, failed) {
		return errors.New("stopped after a failure")
	}
	return nil
}

// stop marks the jobs still pending not started, once no job runs and
// none may start.
func (s *run) stop(ctx context.Context) {
	for i, j := range s.plan {
		if s.state[i] == pending {
			s.state[i] = notStarted
			s.r.say("not started %s: %v", j.Name, s.stopped(ctx))
		}
	}
}

// record takes in the end of a job.
func (s *run) record(e ended) {
	s.running--
	s.state[e.i] = failed
	if e.ok {
		s.state[e.i] = succeeded
	}
}

// failedDep is the failed job that j depends on, directly or through a
// skipped job, or "".
func (s *run) failedDep(j Job) string {
	for _, d := range j.Deps {
		switch k := s.index[d]; s.state[k] {
		case failed:
			return d
		case skipped:
			return s.cause[k]
		}
	}
	return ""
}

// next is the plan index of the first job that can start, or -1.
func (s *run) next(ctx context.Context) int {
	if s.stopped(ctx) != nil {
		return -1
	}
	for i, j := range s.plan {
		if s.state[i] == pending && !slices.ContainsFunc(j.Deps, func(d string) bool {
			return s.state[s.index[d]] != succeeded
		}) {
			return i
		}
	}
	return -1
}

// start starts the job at plan index i with token tok in its own goroutine.
func (s *run) start(ctx context.Context, i int, tok *pool.Token) {
	j := s.plan[i]
	begin := s.r.now()
	f, err := createLog(s.r.LogDir, j.Name, begin)
	if err != nil {
		tok.Release()
		s.state[i] = failed
		s.r.say("FAILED %s: %v", j.Name, err)
		return
	}
	s.state[i] = running
	s.running++
	s.r.say("start %s (log %s)", j.Name, f.Name())
	go func() {
		ok := s.r.do(ctx, j, f, begin)
		s.ended <- ended{i, ok}
		tok.Release()
	}()
}

// result sorts the jobs by their state.
func (s *run) result() Result {
	var res Result
	for i, j := range s.plan {
		switch s.state[i] {
		case succeeded:
			res.Succeeded = append(res.Succeeded, j.Name)
		case failed:
			res.Failed = append(res.Failed, j.Name)
		case skipped:
			res.Skipped = append(res.Skipped, j.Name)
		case notStarted:
			res.NotStarted = append(res.NotStarted, j.Name)
		}
	}
	return res
}

// do runs job j begun at begin with its log f, closes f, prints how the
// job ended and reports whether it succeeded.
func (r *Runner) do(ctx context.Context, j Job, f *os.File, begin time.Time) bool {
	var tail string
	n, err := fmt.Fprintf(f, "job %s started %s\n", j.Name, begin.Format(time.DateTime))
	if err != nil {
		err = fmt.Errorf("log %s: %w", f.Name(), err)
	} else if err = call(ctx, j, f); err != nil {
		tail = r.tail(f, int64(n))
	}
	took := fmt.Sprintf("%.1f s", r.now().Sub(begin).Seconds())
	end := "ok"
	if err != nil {
		end = "failed: " + err.Error()
	}
	_, werr := fmt.Fprintf(f, "job %s %s (%s)\n", j.Name, end, took)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if err == nil && werr != nil {
		err = fmt.Errorf("log %s: %w", f.Name(), werr)
	}
	if err != nil {
		r.say("FAILED %s: %v%s", j.Name, err, tail)
		return false
	}
	r.say("ok %s (%s)", j.Name, took)
	return true
}

// call calls j.Run, turning a panic into an error written to log with
// its stack.
func call(ctx context.Context, j Job, log io.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(log, "panic: %v\n%s", p, debug.Stack())
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return j.Run(ctx, log)
}

// tailBytes is how much of the end of a failed job's log is read for its
// last lines.
const tailBytes = 64 << 10

// tail is the last r.TailLines lines of the job's output in f, which
// starts at offset from, each on a line of its own indented by 4 spaces.
func (r *Runner) tail(f *os.File, from int64) string {
	n := r.TailLines
	if n == 0 {
		n = 20
	}
	if n < 0 {
		return ""
	}
	fi, err := f.Stat()
	if err != nil {
		return "\n    (no tail of the log: " + err.Error() + ")"
	}
	cut := fi.Size()-tailBytes > from
	if cut {
		from = fi.Size() - tailBytes
	}
	b := make([]byte, fi.Size()-from)
	if _, err := f.ReadAt(b, from); err != nil && err != io.EOF {
		return "\n    (no tail of the log: " + err.Error() + ")"
	}
	if len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if cut {
		lines = lines[1:] // begins inside a line
	}
	lines = lines[max(len(lines)-n, 0):]
	return "\n    " + strings.Join(lines, "\n    ")
}

// createLog creates the log of the job name begun at t in dir (see
// Runner.LogDir), opened for reading and writing.
func createLog(dir, name string, t time.Time) (*os.File, error) {
	base := filepath.Join(dir, t.Format("20060102-150405")+"-"+fileName(name))
	path := base + ".log"
	for n := 2; ; n++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			if err != nil {
				return nil, fmt.Errorf("log of job %s: %w", name, err)
			}
			return f, nil
		}
		path = fmt.Sprintf("%s-%d.log", base, n)
	}
}

// fileName is name with every character but ASCII letters, digits and
// ".+-_" replaced by '_'.
func fileName(name string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.ContainsRune(".+-_", c):
			return c
		}
		return '_'
	}, name)
}

// now is r.Now().
func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// say prints a line of progress to r.Out, whole.
func (r *Runner) say(format string, args ...any) {
	if r.Out == nil {
		return
	}
	r.outMu.Lock()
	defer r.outMu.Unlock()
	fmt.Fprintf(r.Out, format+"\n", args...)
}

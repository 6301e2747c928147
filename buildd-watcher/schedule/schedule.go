// Package schedule owns `buildd-watcher --schedule`, for hosts without
// cron: the uploader, the watcher (with the host monitor) and the machine
// maintenance (buildd machine maint -k) run in one long-lived process on
// the cron specs of the config (uploader_schedule, watcher_schedule,
// upgrade_schedule), with robfig/cron.
// A job still running when its time comes again is skipped, a panicking
// job is logged and the scheduler goes on, and a run missed while the
// scheduler was down is made up once at start: the time each job last ran
// is kept in schedule-state in home.
package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/robfig/cron/v3"

	"buildd/buildd-watcher/monitor"
	"buildd/buildd-watcher/watch"
	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/upload"
)

// Job is one scheduled program.
type Job struct {
	Name string // uploader, watcher, upgrade
	Key  string // its config key
	Spec string
	Run  func(ctx context.Context) error
}

// Jobs are the three standard jobs of a config.
func Jobs(cfg *config.Config, log *daemonlog.Log) []Job {
	return []Job{
		{Name: "uploader", Key: "uploader_schedule", Spec: cfg.UploadSched, Run: func(ctx context.Context) error {
			_, err := upload.New(cfg, log).Run(ctx)
			if errors.Is(err, upload.ErrRunning) {
				return nil
			}
			return err
		}},
		{Name: "watcher", Key: "watcher_schedule", Spec: cfg.WatcherSched, Run: func(ctx context.Context) error {
			if _, err := watch.New(cfg, log).Run(ctx); err != nil && !errors.Is(err, watch.ErrRunning) {
				return err
			}
			if _, err := monitor.New(cfg, log).Run(ctx); err != nil && !errors.Is(err, monitor.ErrRunning) {
				return err
			}
			return nil
		}},
		{Name: "upgrade", Key: "upgrade_schedule", Spec: cfg.UpgradeSched, Run: monitor.New(cfg, log).Upgrade},
	}
}

// Scheduler runs jobs on their specs.
type Scheduler struct {
	Jobs []Job
	Log  *daemonlog.Log

	home  home.Home
	sched []cron.Schedule
	mu    sync.Mutex // guards the state file
}

// New checks every job's spec: one that does not parse is an error
// "FILE:LINE: KEY: bad cron spec ...", at the key's line in the config.
func New(cfg *config.Config, log *daemonlog.Log, jobs []Job) (*Scheduler, error) {
	s := &Scheduler{Jobs: jobs, Log: log, home: home.New(cfg.Home)}
	for _, j := range jobs {
		sc, err := cron.ParseStandard(j.Spec)
		if err != nil {
			return nil, &config.Error{File: cfg.File, Line: cfg.KeyLine(j.Key), Msg: fmt.Sprintf("%s: bad cron spec %q: %v", j.Key, j.Spec, err)}
		}
		s.sched = append(s.sched, sc)
	}
	return s, nil
}

func (s *Scheduler) statePath() string { return s.home.Path("schedule-state") }

// lastRuns reads schedule-state: job name → when its last run ended.
func (s *Scheduler) lastRuns() (map[string]time.Time, error) {
	out := map[string]time.Time{}
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", s.statePath(), err)
	}
	return out, nil
}

// setLastRun records when job ran, by temporary file and rename.
func (s *Scheduler) setLastRun(job string, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs, err := s.lastRuns()
	if err != nil {
		runs = map[string]time.Time{}
	}
	runs[job] = t
	b, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.statePath(), append(b, '\n'), 0o644)
}

// Entry is one line of --next.
type Entry struct {
	Job    string
	Spec   string
	Last   time.Time // zero: never recorded
	Next   time.Time
	Missed bool // a run was due since Last: made up at start
}

// Next says, for now, when each job last ran and runs next.
func (s *Scheduler) Next(now time.Time) ([]Entry, error) {
	runs, err := s.lastRuns()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for i, j := range s.Jobs {
		e := Entry{Job: j.Name, Spec: j.Spec, Last: runs[j.Name], Next: s.sched[i].Next(now)}
		e.Missed = !e.Last.IsZero() && !s.sched[i].Next(e.Last).After(now)
		out = append(out, e)
	}
	return out, nil
}

// PrintNext writes the --next table.
func PrintNext(w io.Writer, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSPEC\tLAST RUN\tNEXT RUN")
	for _, e := range entries {
		last := "never"
		if !e.Last.IsZero() {
			last = e.Last.Local().Format("2006-01-02 15:04:05")
		}
		next := e.Next.Local().Format("2006-01-02 15:04:05")
		if e.Missed {
			next = "at start (missed), then " + next
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Job, e.Spec, last, next)
	}
	return tw.Flush()
}

// Run schedules the jobs until ctx is done, then waits for running jobs
// to end. At start, a job that missed a run since its recorded last run is
// run once at once; a job never recorded gets now as its first record.
func (s *Scheduler) Run(ctx context.Context) error {
	logger := cron.PrintfLogger(s.Log)
	// SkipIfStillRunning outside Recover: a panic recovered inside gives the
	// job's token back, so that the job runs again at its next time.
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(logger), cron.Recover(logger)))
	entries, err := s.Next(time.Now())
	if err != nil {
		return err
	}
	var catchUp []cron.Job
	for i, j := range s.Jobs {
		j := j
		id := c.Schedule(s.sched[i], cron.FuncJob(func() {
			start := time.Now()
			s.Log.Printf("%s: starting", j.Name)
			if err := j.Run(ctx); err != nil {
				s.Log.Printf("%s: %v", j.Name, err)
			}
			s.Log.Printf("%s: done in %v", j.Name, time.Since(start).Round(time.Millisecond))
			if err := s.setLastRun(j.Name, time.Now()); err != nil {
				s.Log.Printf("%s: %v", s.statePath(), err)
			}
		}))
		switch {
		case entries[i].Missed:
			s.Log.Printf("%s: missed a run since %s, running it now", j.Name, entries[i].Last.Format(time.DateTime))
			catchUp = append(catchUp, c.Entry(id).WrappedJob)
		case entries[i].Last.IsZero():
			if err := s.setLastRun(j.Name, time.Now()); err != nil {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	for _, job := range catchUp {
		wg.Add(1)
		go func() { defer wg.Done(); job.Run() }()
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	wg.Wait()
	return nil
}

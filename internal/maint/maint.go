// Package maint owns the maintenance of a host's build machines, `buildd
// machine maint`: from buildd.conf, the jobs that are due now (create a
// machine that is missing, upgrade one whose current revision is older
// than upgrade_after, prune its layers, package cache and strays, push it
// to each of push_hosts), with their dependencies (a push waits for its
// machine's create or upgrade), run by package jobgraph under a token pool.
// A host whose machines come from another (machines_from) only prunes.
package maint

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"buildd/internal/config"
	"buildd/internal/jobgraph"
	"buildd/internal/machine"
	"buildd/internal/pool"
)

// Options are one run's command line.
type Options struct {
	Jobs      int      // -j: jobs at once (at least 1)
	KeepGoing bool     // -k
	DryRun    bool     // -n: print the plan, run nothing
	Targets   []string // machine or job names; none: every job
	Out       io.Writer
	Now       time.Time // when the run is, for the machines' ages; zero: now
}

// LogDir is where each job's log goes, under home.
func LogDir(cfg *config.Config) string { return filepath.Join(cfg.Home, "maint") }

// Run plans the jobs due now for cfg's machines in s and runs them (or,
// with DryRun, prints the plan). Job failures are in the result; the error
// is for a run that could not start.
func Run(ctx context.Context, cfg *config.Config, s *machine.Store, opt Options) (jobgraph.Result, error) {
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	jobs, err := Graph(cfg, s, now)
	if err != nil {
		return jobgraph.Result{}, err
	}
	if jobs, err = Select(jobs, opt.Targets); err != nil {
		return jobgraph.Result{}, err
	}
	r := &jobgraph.Runner{Pool: pool.NewPool(opt.Jobs), LogDir: LogDir(cfg), KeepGoing: opt.KeepGoing, Out: opt.Out}
	if opt.DryRun {
		return jobgraph.Result{}, r.DryRun(jobs)
	}
	if err := pruneLogs(r.LogDir, time.Duration(cfg.DaemonLogKeep)*24*time.Hour); err != nil {
		return jobgraph.Result{}, err
	}
	return r.Run(ctx, jobs)
}

// Graph returns the jobs due at now, machine by machine in the order of
// the config's [[dist]] tables: create:M or upgrade:M, then prune:M and
// push:M:HOST for each push host, both after the create or upgrade.
func Graph(cfg *config.Config, s *machine.Store, now time.Time) ([]jobgraph.Job, error) {
	var jobs []jobgraph.Job
	seen := map[string]bool{}
	for _, d := range cfg.Dists {
		name := d.Machine
		if seen[name] {
			continue
		}
		seen[name] = true
		var first []string
		if cfg.MachinesFrom == "" {
			cur, err := s.Current(name)
			switch {
			case err != nil:
				opt := machine.CreateOptions{Dist: d.DistName, Arch: d.BuiltArchitecture}
				jobs = append(jobs, job(s, "create:"+name, nil, func(ctx context.Context, s *machine.Store, log io.Writer) error {
					return s.Create(ctx, name, opt)
				}))
				first = []string{"create:" + name}
			case now.Sub(cur.Made) >= time.Duration(cfg.UpgradeAfter)*time.Hour:
				jobs = append(jobs, job(s, "upgrade:"+name, nil, func(ctx context.Context, s *machine.Store, log io.Writer) error {
					fmt.Fprintf(log, "%s is %s old (upgrade_after %d h)\n", cur.Name, now.Sub(cur.Made).Round(time.Minute), cfg.UpgradeAfter)
					return s.Upgrade(ctx, name)
				}))
				first = []string{"upgrade:" + name}
			}
		}
		jobs = append(jobs, job(s, "prune:"+name, first, func(ctx context.Context, s *machine.Store, log io.Writer) error {
			return prune(s, cfg, name, log)
		}))
		for _, h := range cfg.PushHosts {
			opt := machine.PushOptions{SSH: append([]string{"ssh"}, cfg.PushSSHOptions...), Remote: cfg.PushCommand}
			jobs = append(jobs, job(s, "push:"+name+":"+h, first, func(ctx context.Context, s *machine.Store, log io.Writer) error {
				r, err := s.Push(ctx, name, h, opt)
				if err == nil {
					fmt.Fprintln(log, r)
				}
				return err
			}))
		}
	}
	return jobs, nil
}

// job is a jobgraph.Job running fn on a copy of s whose commands write to
// the job's log.
func job(s *machine.Store, name string, deps []string, fn func(context.Context, *machine.Store, io.Writer) error) jobgraph.Job {
	return jobgraph.Job{Name: name, Deps: deps, Run: func(ctx context.Context, log io.Writer) error {
		js := *s
		js.Log = log
		return fn(ctx, &js, log)
	}}
}

// prune keeps machine name within the layer and package cache sizes and
// deletes its strays.
func prune(s *machine.Store, cfg *config.Config, name string, log io.Writer) error {
	gone, err := s.EvictLayers(name, int64(cfg.LayerCacheSize)*1024)
	if err != nil {
		return err
	}
	for _, l := range gone {
		fmt.Fprintf(log, "deleted layer %s\n", l)
	}
	n, err := s.EvictPackages(name, int64(cfg.PackageCacheSize)*1024)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "deleted %d cached package(s)\n", n)
	rep, err := s.CleanMachine(name)
	rep.Print(log)
	return err
}

// Select keeps the jobs the targets name (a machine names all its jobs)
// and the jobs they depend on; no targets keeps every job.
func Select(jobs []jobgraph.Job, targets []string) ([]jobgraph.Job, error) {
	if len(targets) == 0 {
		return jobs, nil
	}
	byName := map[string]jobgraph.Job{}
	for _, j := range jobs {
		byName[j.Name] = j
	}
	keep := map[string]bool{}
	var add func(string)
	add = func(n string) {
		if keep[n] {
			return
		}
		keep[n] = true
		for _, d := range byName[n].Deps {
			add(d)
		}
	}
	for _, t := range targets {
		found := false
		for _, j := range jobs {
			if j.Name == t || jobMachine(j.Name) == t {
				add(j.Name)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("maint: no job is due for %q (targets are machine names and job names such as upgrade:NAME)", t)
		}
	}
	var out []jobgraph.Job
	for _, j := range jobs {
		if keep[j.Name] {
			out = append(out, j)
		}
	}
	return out, nil
}

// jobMachine is the machine of a job name KIND:MACHINE[:HOST].
func jobMachine(job string) string {
	f := strings.Split(job, ":")
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// pruneLogs deletes the job logs in dir older than keep.
func pruneLogs(dir string, keep time.Duration) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("maint: %w", err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !strings.HasSuffix(e.Name(), ".log") || time.Since(fi.ModTime()) < keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("maint: %w", err)
		}
	}
	return nil
}

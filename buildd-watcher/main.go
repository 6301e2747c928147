// Command buildd-watcher keeps a build host healthy; run from cron (see
// dist/buildd.cron) or, with --schedule, as a service (see
// dist/buildd-watcher.service). A plain run does the classic tasks once
// (package buildd/buildd-watcher/watch) and one pass of the host monitor
// (buildd/buildd-watcher/monitor).
//
//	buildd-watcher [--config FILE] [--dump-config]
//	buildd-watcher [--config FILE] --upgrade    the machine maintenance now (buildd machine maint -k)
//	buildd-watcher [--config FILE] --schedule   run uploader, watcher, machine maintenance on the config's cron specs
//	buildd-watcher [--config FILE] --next       list what runs when
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"buildd/buildd-watcher/monitor"
	"buildd/buildd-watcher/schedule"
	"buildd/buildd-watcher/watch"
	"buildd/internal/program"
)

func main() {
	var o program.Options
	o.Flags(flag.CommandLine)
	sched := flag.Bool("schedule", false, "run the uploader, the watcher and the machine maintenance on the config's schedules until stopped")
	next := flag.Bool("next", false, "list the scheduled jobs, their last and next runs")
	upgrade := flag.Bool("upgrade", false, "run the machine maintenance now (create, upgrade, prune, push: buildd machine maint -k)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, fmt.Errorf("unexpected argument %q", flag.Arg(0)))
	}
	env, code := o.Start("buildd-watcher", os.Stdout, os.Stderr)
	if env == nil {
		os.Exit(code)
	}
	cfg, log := env.Cfg, env.Log
	defer log.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch {
	case *sched || *next:
		s, err := schedule.New(cfg, log, schedule.Jobs(cfg, log))
		if err != nil {
			fail(1, err)
		}
		if *next {
			entries, err := s.Next(time.Now())
			if err == nil {
				err = schedule.PrintNext(os.Stdout, entries)
			}
			if err != nil {
				fail(1, err)
			}
			return
		}
		if err := monitor.New(cfg, log).Starting(); err != nil {
			log.Printf("starting mail: %v", err)
		}
		if err := s.Run(ctx); err != nil {
			fail(1, err)
		}
	case *upgrade:
		if err := monitor.New(cfg, log).Upgrade(ctx); err != nil {
			fail(1, err)
		}
	default:
		if _, err := watch.New(cfg, log).Run(ctx); err != nil {
			if errors.Is(err, watch.ErrRunning) {
				return
			}
			fail(1, err)
		}
		if _, err := monitor.New(cfg, log).Run(ctx); err != nil && !errors.Is(err, monitor.ErrRunning) {
			fail(1, err)
		}
	}
}

func fail(code int, err error) {
	fmt.Fprintln(os.Stderr, "buildd-watcher:", err)
	os.Exit(code)
}

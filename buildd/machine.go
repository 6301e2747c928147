package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"buildd/internal/config"
	"buildd/internal/jobgraph"
	"buildd/internal/machine"
	"buildd/internal/maint"
	"buildd/internal/program"
)

const machineUsage = `usage: buildd machine [--config FILE | --machines-dir DIR] COMMAND ARGS
  create NAME --dist DIST [--arch ARCH] [--mirror URL] [--cross ARCH]
                                                         debootstrap a new machine (a foreign ARCH
                                                         runs through qemu-user; --cross: cross-builds for ARCH)
  import NAME TARBALL [--dist DIST] [--arch ARCH]        a new machine from a tar of a tree
  upgrade NAME                                           apt-get dist-upgrade into a new revision
  delete NAME                                            remove current, wait for builds, delete
  list                                                   machines, revisions, working snapshots
  clean                                                  delete strays and half-made revisions
  send NAME [--revision REV] [--parent REV]              a revision as a btrfs send stream, to stdout
  receive NAME [--dist DIST --arch ARCH [--cross ARCH]]  a send stream from stdin into a new current revision
  push NAME [HOST...]                                    send the current revision to hosts (default push_hosts)
  revisions NAME                                         "REVISION UUID current|-" per revision, for push
  maint [-j N] [-k] [-n] [TARGET...]                     create, upgrade, prune and push as a job graph
`

// machineCLI is `buildd machine ARGS`, the admin's command line of package
// machine; it returns the exit status (0 ok, 1 failed, 2 usage).
func machineCLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("buildd machine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below: to stdout for --help
	cfgPath := fs.String("config", "", "config file")
	dir := fs.String("machines-dir", "", "machines_dir (instead of the config's)")
	dist := fs.String("dist", "", "distribution")
	arch := fs.String("arch", "", "architecture")
	mirror := fs.String("mirror", "", "archive URI")
	cross := fs.String("cross", "", "create, receive: the architecture the machine cross-builds for")
	revision := fs.String("revision", "", "send: the revision (default: current)")
	parent := fs.String("parent", "", "send: incremental from this revision")
	jobs := fs.Int("j", 0, "maint: jobs at once (default maint_jobs)")
	keepGoing := fs.Bool("k", false, "maint: after a failure, go on with the jobs that do not depend on it")
	dryRun := fs.Bool("n", false, "maint: print the plan, run nothing")
	pos, err := program.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, machineUsage)
		return 0
	}
	if err != nil {
		fmt.Fprint(stderr, machineUsage)
		return 2
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, machineUsage)
		return 2
	}
	want := map[string]int{"create": 2, "import": 3, "upgrade": 2, "delete": 2, "list": 1, "clean": 1,
		"send": 2, "receive": 2, "push": -2, "revisions": 2, "maint": -1}
	n, ok := want[pos[0]]
	if !ok || n > 0 && len(pos) != n || n < 0 && len(pos) < -n {
		fmt.Fprint(stderr, machineUsage)
		return 2
	}
	cfg := config.Defaults()
	if *dir == "" || *cfgPath != "" {
		c, err := config.Load(config.Path(*cfgPath))
		if err != nil {
			fmt.Fprintf(stderr, "buildd machine: %v\n", err)
			return 1
		}
		cfg = *c
		if *dir == "" {
			*dir = cfg.MachinesDir
		}
	}
	s, err := machine.Open(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "buildd machine: %v\n", err)
		return 1
	}
	s.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch pos[0] {
	case "create":
		if *dist == "" {
			fmt.Fprintln(stderr, "buildd machine create: --dist is required")
			return 2
		}
		err = s.Create(ctx, pos[1], machine.CreateOptions{Dist: *dist, Arch: *arch, Mirror: *mirror, Cross: *cross})
	case "import":
		err = s.Import(ctx, pos[1], pos[2], machine.CreateOptions{Dist: *dist, Arch: *arch})
	case "upgrade":
		err = s.Upgrade(ctx, pos[1])
	case "delete":
		err = s.Delete(ctx, pos[1])
	case "list":
		err = printMachines(s, stdout)
	case "send":
		err = s.Send(ctx, pos[1], *revision, *parent, stdout)
	case "receive":
		var r machine.Revision
		r, err = s.Receive(ctx, pos[1], os.Stdin, machine.CreateOptions{Dist: *dist, Arch: *arch, Cross: *cross})
		if err == nil {
			fmt.Fprintf(stdout, "received %s %s\n", r.Name, r.UUID)
		}
	case "revisions":
		err = s.FormatRevisions(pos[1], stdout)
	case "push":
		err = push(ctx, s, &cfg, pos[1], pos[2:], stdout)
	case "maint":
		if *cfgPath == "" && *dir != "" && cfg.Home == "" {
			fmt.Fprintln(stderr, "buildd machine maint: needs the config (its machines, push_hosts and home), not --machines-dir alone")
			return 2
		}
		var res jobgraph.Result
		if *jobs == 0 {
			*jobs = cfg.MaintJobs
		}
		res, err = maint.Run(ctx, &cfg, s, maint.Options{Jobs: *jobs, KeepGoing: *keepGoing, DryRun: *dryRun, Targets: pos[1:], Out: stdout})
		if err == nil && !res.OK() {
			err = fmt.Errorf("%d job(s) failed, %d skipped, %d not started (logs in %s)", len(res.Failed), len(res.Skipped), len(res.NotStarted), maint.LogDir(&cfg))
		}
	case "clean":
		var rep machine.CleanReport
		rep, err = s.Clean(ctx)
		rep.Print(stdout)
		if err == nil && len(rep.NotUnderstood) > 0 {
			fmt.Fprintf(stderr, "buildd machine clean: %d thing(s) in %s not understood, left alone\n", len(rep.NotUnderstood), s.Dir)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "buildd machine %s: %v\n", pos[0], err)
		return 1
	}
	return 0
}

// push is `buildd machine push NAME [HOST...]`: each host in turn.
func push(ctx context.Context, s *machine.Store, cfg *config.Config, name string, hosts []string, stdout io.Writer) error {
	if len(hosts) == 0 {
		hosts = cfg.PushHosts
	}
	if len(hosts) == 0 {
		return fmt.Errorf("push %s: no host given and push_hosts is empty", name)
	}
	var errs []error
	for _, h := range hosts {
		r, err := s.Push(ctx, name, h, machine.PushOptions{SSH: append([]string{"ssh"}, cfg.PushSSHOptions...), Remote: cfg.PushCommand})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(stdout, r)
	}
	return errors.Join(errs...)
}

// printMachines is `buildd machine list`: each machine with its revisions,
// layers and working snapshots.
func printMachines(s *machine.Store, w io.Writer) error {
	ms, err := s.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range ms {
		cur := m.Current
		if cur == "" {
			cur = "(none)"
		}
		kind := ""
		switch {
		case m.Cross != "":
			kind = " cross=" + m.Cross
		case m.Emulated:
			kind = " emulated"
		}
		fmt.Fprintf(tw, "%s\tdist=%s arch=%s%s\tcurrent=%s\n", m.Name, m.Dist, m.Arch, kind, cur)
		for _, r := range m.Revisions {
			flags := ""
			if r.Current {
				flags += " current"
			}
			if !r.ReadOnly {
				flags += " NOT-READ-ONLY"
			}
			fmt.Fprintf(tw, "  revision\t%s\tuuid=%s made %s%s\n", r.Name, r.UUID, r.Made.Format(time.DateTime), flags)
		}
		for _, l := range m.Layers {
			fmt.Fprintf(tw, "  layer\t%s\t%d MiB, used %s ago\n", l.Name, (l.SizeKiB+1023)/1024, time.Since(l.LastUsed).Round(time.Second))
		}
		for _, wk := range m.Working {
			state := "stray"
			if wk.Live {
				state = "live"
			}
			fmt.Fprintf(tw, "  working\t%s\tjob=%s pid=%d age=%s %s\n", wk.Name, wk.Job, wk.PID, time.Since(wk.Started).Round(time.Second), state)
		}
	}
	return tw.Flush()
}

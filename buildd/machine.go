package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/program"
)

const machineUsage = `usage: buildd machine [--config FILE | --machines-dir DIR] COMMAND ARGS
  create NAME --dist DIST [--arch ARCH] [--mirror URL]   debootstrap a new machine
  import NAME TARBALL [--dist DIST] [--arch ARCH]        a new machine from a tar of a tree
  upgrade NAME                                           apt-get dist-upgrade into a new revision
  delete NAME                                            remove current, wait for builds, delete
  list                                                   machines, revisions, working snapshots
  clean                                                  delete strays and half-made revisions
`

// machineCLI is `buildd machine ARGS`, the admin's command line of package
// machine; it returns the exit status (0 ok, 1 failed, 2 usage).
func machineCLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("buildd machine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, machineUsage) }
	cfgPath := fs.String("config", "", "config file")
	dir := fs.String("machines-dir", "", "machines_dir (instead of the config's)")
	dist := fs.String("dist", "", "distribution")
	arch := fs.String("arch", "", "architecture")
	mirror := fs.String("mirror", "", "archive URI")
	pos, err := program.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		fs.Usage()
		return 2
	}
	want := map[string]int{"create": 2, "import": 3, "upgrade": 2, "delete": 2, "list": 1, "clean": 1}
	n, ok := want[pos[0]]
	if !ok || len(pos) != n {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		cfg, err := config.Load(config.Path(*cfgPath))
		if err != nil {
			fmt.Fprintf(stderr, "buildd machine: %v\n", err)
			return 1
		}
		*dir = cfg.MachinesDir
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
		err = s.Create(ctx, pos[1], machine.CreateOptions{Dist: *dist, Arch: *arch, Mirror: *mirror})
	case "import":
		err = s.Import(ctx, pos[1], pos[2], machine.CreateOptions{Dist: *dist, Arch: *arch})
	case "upgrade":
		err = s.Upgrade(ctx, pos[1])
	case "delete":
		err = s.Delete(ctx, pos[1])
	case "list":
		err = printMachines(s, stdout)
	case "clean":
		var rep machine.CleanReport
		rep, err = s.Clean(ctx)
		for _, p := range rep.Deleted {
			fmt.Fprintf(stdout, "deleted %s\n", p)
		}
		for _, p := range rep.Busy {
			fmt.Fprintf(stdout, "in use %s\n", p)
		}
		for _, p := range rep.NotUnderstood {
			fmt.Fprintf(stdout, "left alone %s\n", p)
		}
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
		fmt.Fprintf(tw, "%s\tdist=%s arch=%s\tcurrent=%s\n", m.Name, m.Dist, m.Arch, cur)
		for _, r := range m.Revisions {
			flags := ""
			if r.Current {
				flags += " current"
			}
			if !r.ReadOnly {
				flags += " NOT-READ-ONLY"
			}
			fmt.Fprintf(tw, "  revision\t%s\t%s\n", r.Name, flags)
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

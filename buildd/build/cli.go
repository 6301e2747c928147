package build

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/program"
)

const cliUsage = `usage: buildd build [--config FILE] --dist DIST [--arch ARCH] [options] PKG_VERSION
       buildd build [--config FILE] --dist DIST [--arch ARCH] [options] --dsc FILE
options: --binnmu N --binnmu-changelog TEXT --parallel N --memory MIB --log FILE
--arch is needed when the config builds DIST for several architectures
exit status: 0 successful, 3 attempted (the package failed), 4 given back, 1 error, 2 usage
`

// CLI is `buildd build ARGS`: one build, its result on stdout.
func CLI(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("buildd build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below: to stdout for --help
	cfgPath := fs.String("config", "", "config file")
	dist := fs.String("dist", "", "distribution (a [[dist]] of the config)")
	arch := fs.String("arch", "", "architecture (the [[dist]]'s built_architecture; needed when DIST is built for several)")
	dsc := fs.String("dsc", "", "build this .dsc instead of fetching from the archive")
	binnmu := fs.Int("binnmu", 0, "binNMU number")
	binText := fs.String("binnmu-changelog", "", "binNMU changelog entry")
	parallel := fs.Int("parallel", 1, "DEB_BUILD_OPTIONS parallel=N")
	memory := fs.Int64("memory", 0, "memory limit of each step in MiB (0: none)")
	logPath := fs.String("log", "", "build log file")
	pos, err := program.ParseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, cliUsage)
		return 0
	}
	if err != nil {
		fmt.Fprint(stderr, cliUsage)
		return 2
	}
	if *dist == "" || *memory < 0 || len(pos) > 1 || (len(pos) == 0) == (*dsc == "") {
		fmt.Fprint(stderr, cliUsage)
		return 2
	}
	cfg, err := config.Load(config.Path(*cfgPath))
	if err != nil {
		fmt.Fprintf(stderr, "buildd build: %v\n", err)
		return 1
	}
	d, err := cfg.Resolve(*dist, *arch)
	if err != nil {
		fmt.Fprintf(stderr, "buildd build: %v\n", err)
		return 1
	}
	store, err := machine.Open(cfg.MachinesDir)
	if err != nil {
		fmt.Fprintf(stderr, "buildd build: %v\n", err)
		return 1
	}
	job := Job{Dist: d, DSC: *dsc, BinNMU: *binnmu, BinNMUChangelog: *binText, Parallel: *parallel, Memory: *memory << 20, LogPath: *logPath}
	if len(pos) == 1 {
		job.PkgVersion = pos[0]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	res, err := Run(ctx, cfg, store, job)
	if err != nil {
		fmt.Fprintf(stderr, "buildd build: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "Status: %s\nClass: %s\n", res.Status, res.Class)
	if res.FailStage != "" {
		fmt.Fprintf(stdout, "Fail-Stage: %s\nFail-Reason: %s\n", res.FailStage, res.Message)
	}
	fmt.Fprintf(stdout, "Log: %s\n", res.LogPath)
	// The log's summary gives whole seconds; benchmarks want more.
	fmt.Fprintf(stdout, "Install-Time: %.2f\n", res.InstallTime.Seconds())
	if res.ChangesPath != "" {
		fmt.Fprintf(stdout, "Changes: %s\n", res.ChangesPath)
	}
	switch res.Status {
	case Successful:
		return 0
	case Attempted:
		return 3
	default:
		return 4
	}
}

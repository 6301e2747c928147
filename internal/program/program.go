// Package program owns what the suite's programs (buildd, buildd-mail,
// buildd-uploader, buildd-watcher) start from and run with: the --config
// and --dump-config options every one of them takes, flags among the
// arguments of a subcommand (ParseInterspersed), their start (the
// config read, the daemon log opened) and Env, the config, home, mailer and
// daemon log that their work uses.
package program

import (
	"flag"
	"fmt"
	"io"

	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/mailer"
)

// Options are the options every program of the suite takes.
type Options struct {
	// Config is --config, the config file: "" for $BUILDD_CONF, else
	// config.DefaultPath.
	Config string
	// DumpConfig is --dump-config: print the effective config and exit.
	DumpConfig bool
}

// Flags defines --config and --dump-config in fs.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Config, "config", "", "config file (default $BUILDD_CONF, else "+config.DefaultPath+")")
	fs.BoolVar(&o.DumpConfig, "dump-config", false, "print the effective config and exit")
}

// ConfigPath is the config file the options name.
func (o Options) ConfigPath() string { return config.Path(o.Config) }

// Env is what a program's work runs with: the config, the home it names,
// the mailer it configures and the daemon log.
type Env struct {
	Cfg  *config.Config
	Home home.Home
	Mail *mailer.Mailer
	Log  *daemonlog.Log
}

// NewEnv returns the Env of cfg, logging to log.
func NewEnv(cfg *config.Config, log *daemonlog.Log) Env {
	return Env{Cfg: cfg, Home: home.New(cfg.Home), Mail: mailer.New(cfg), Log: log}
}

// LoadConfig reads the config the options name; with --dump-config it
// prints it to stdout instead. A nil config means the program exits with
// code: 0 after --dump-config, 1 when the config cannot be read or printed,
// said on stderr as "prog: error".
func (o Options) LoadConfig(prog string, stdout, stderr io.Writer) (cfg *config.Config, code int) {
	cfg, err := config.Load(o.ConfigPath())
	if err != nil {
		return nil, failed(stderr, prog, err)
	}
	if o.DumpConfig {
		if err := cfg.Dump(stdout); err != nil {
			return nil, failed(stderr, prog, err)
		}
		return nil, 0
	}
	return cfg, 0
}

// Start starts a program that needs its config and the daemon log from the
// outset (buildd-uploader, buildd-watcher): LoadConfig, then the daemon log
// opened, its lines tagged prog. A nil Env means the program exits
// with code, as after LoadConfig; 1 also when the log cannot be opened.
func (o Options) Start(prog string, stdout, stderr io.Writer) (env *Env, code int) {
	cfg, code := o.LoadConfig(prog, stdout, stderr)
	if cfg == nil {
		return nil, code
	}
	log, err := daemonlog.Open(cfg.DaemonLogFile, prog)
	if err != nil {
		return nil, failed(stderr, prog, err)
	}
	e := NewEnv(cfg, log)
	return &e, 0
}

// failed says err on stderr and returns the exit status of a program that
// cannot start.
func failed(stderr io.Writer, prog string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
}

// Command buildd-uploader uploads the approved builds of the upload queues
// with dput or dupload and tells wanna-build; run from cron. See package
// buildd/buildd-uploader/upload.
//
//	buildd-uploader [--config FILE] [--dump-config]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/upload"
)

func main() {
	cfgPath := flag.String("config", "", "config file (default $BUILDD_CONF, else "+config.DefaultPath+")")
	dump := flag.Bool("dump-config", false, "print the effective config and exit")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "buildd-uploader: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	cfg, err := config.Load(config.Path(*cfgPath))
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildd-uploader:", err)
		os.Exit(1)
	}
	if *dump {
		if err := cfg.Dump(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "buildd-uploader:", err)
			os.Exit(1)
		}
		return
	}
	log, err := daemonlog.Open(cfg.DaemonLogFile, "buildd-uploader")
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildd-uploader:", err)
		os.Exit(1)
	}
	defer log.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := upload.New(cfg, log).Run(ctx); err != nil && !errors.Is(err, upload.ErrRunning) {
		log.Printf("%v", err)
		fmt.Fprintln(os.Stderr, "buildd-uploader:", err)
		os.Exit(1)
	}
}

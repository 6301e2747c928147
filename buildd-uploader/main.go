// Command buildd-uploader uploads the approved builds of the upload queues
// with dput or dupload and tells wanna-build; run from cron. See package
// buildd/internal/upload.
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

	"buildd/internal/program"
	"buildd/internal/upload"
)

func main() {
	var o program.Options
	o.Flags(flag.CommandLine)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "buildd-uploader: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	env, code := o.Start("buildd-uploader", os.Stdout, os.Stderr)
	if env == nil {
		os.Exit(code)
	}
	defer env.Log.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := upload.New(env.Cfg, env.Log).Run(ctx); err != nil && !errors.Is(err, upload.ErrRunning) {
		env.Log.Printf("%v", err)
		fmt.Fprintln(os.Stderr, "buildd-uploader:", err)
		os.Exit(1)
	}
}

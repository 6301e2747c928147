// Command buildd-mail processes the mail that reaches the buildd user:
// admins' signed replies to build logs and questions, archive and queue
// notices. From ~/.forward ("|/usr/bin/buildd-mail") it reads one mail on
// stdin, stores it durably in ~/mqueue and drains the queue; with --serve
// it listens for LMTP or SMTP instead; --process only drains the queue.
//
// Exit status: 0 when the mail is stored (even if it is later rejected: the
// sender gets an error reply), 65 (EX_DATAERR) when it is larger than
// intake.MaxSize (16 MiB): nothing is stored and the MTA bounces it,
// 75 (EX_TEMPFAIL) when it could not be stored, 1 on a usage or config error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"buildd/buildd-mail/dispatch"
	"buildd/buildd-mail/intake"
	"buildd/buildd-mail/mqueue"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/program"
)

func main() {
	os.Exit(run())
}

func run() int {
	var o program.Options
	o.Flags(flag.CommandLine)
	serve := flag.String("serve", "", "listen on ADDR (host:port or a unix socket path) instead of reading stdin")
	lmtp := flag.Bool("lmtp", false, "with --serve: speak LMTP instead of SMTP")
	process := flag.Bool("process", false, "only process the queued mails (no mail on stdin)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "buildd-mail: unexpected argument %q\n", flag.Arg(0))
		return 1
	}
	// Not o.Start: in pipe mode the mail is stored before the daemon log is
	// opened.
	cfg, code := o.LoadConfig("buildd-mail", os.Stdout, os.Stderr)
	if cfg == nil {
		if code != 0 && !o.DumpConfig && *serve == "" && !*process {
			// The mail is still on stdin: let the MTA keep it.
			return intake.ExTempFail
		}
		return code
	}
	h := home.New(cfg.Home)
	q := mqueue.New(h.MQueueDir())
	if !*process && *serve == "" {
		if _, code, err := intake.Pipe(q, os.Stdin); err != nil {
			fmt.Fprintln(os.Stderr, "buildd-mail:", err)
			return code
		}
	}
	lg, err := daemonlog.Open(cfg.DaemonLogFile, "buildd-mail")
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildd-mail:", err)
		if *serve != "" || *process {
			return 1
		}
		return 0 // stored; the next run processes it
	}
	defer lg.Close()
	p := dispatch.New(cfg, lg)
	defer p.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *serve != "" {
		return serveLoop(ctx, *serve, *lmtp, q, p)
	}
	if err := p.Drain(ctx, q); err != nil {
		lg.Printf("drain: %v", err)
		if *process {
			fmt.Fprintln(os.Stderr, "buildd-mail:", err)
			return 1
		}
	}
	return 0
}

// retryEvery is how often --serve retries the mails kept in the queue.
const retryEvery = 10 * time.Minute

// serveLoop listens and drains the queue after every stored mail.
func serveLoop(ctx context.Context, addr string, lmtp bool, q *mqueue.Queue, p *dispatch.Processor) int {
	kick := make(chan struct{}, 1)
	srv, err := intake.Listen(addr, lmtp, q, func(string) {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "buildd-mail:", err)
		return 1
	}
	p.Log.Printf("listening on %s (%s)", srv.Addr(), map[bool]string{true: "LMTP", false: "SMTP"}[lmtp])
	go func() {
		// Mails kept after a temporary failure are retried every
		// retryEvery even when no new mail comes in.
		retry := time.NewTicker(retryEvery)
		defer retry.Stop()
		kick <- struct{}{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
			case <-retry.C:
			}
			if err := p.Drain(ctx, q); err != nil {
				p.Log.Printf("drain: %v", err)
			}
		}
	}()
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "buildd-mail:", err)
		return 1
	}
	return 0
}

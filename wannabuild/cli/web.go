package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"buildd/internal/queue/store"
	"buildd/wannabuild/web"
)

// web serves the status web on --web ADDR until SIGINT or SIGTERM. It
// needs only the database: no distribution or architecture.
func (r *run) web() int {
	o := r.o
	if len(o.args) > 0 {
		status, _ := r.fail(exitUsage, "--web takes no package arguments")
		return status
	}
	if status, ok := r.loadConfig(!r.dbGiven()); !ok {
		return status
	}
	if status, ok := r.database(); !ok {
		return status
	}
	if _, err := r.now(); err != nil {
		status, _ := r.fail(exitUsage, "%v", err)
		return status
	}
	// A database that cannot be opened is an error now, not on every page.
	db, status, ok := r.open(true)
	if !ok {
		return status
	}
	db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := web.Listen(o.webAddr)
	if err != nil {
		status, _ := r.fail(exitUsage, "%v", err)
		return status
	}
	s := &web.Server{DB: r.dbPath, Timeout: r.timeout, Now: func() time.Time {
		now, _ := r.now()
		return now
	}}
	defer s.Close()
	fmt.Fprintf(r.stdout, "wanna-build: serving %s on %s\n", store.Name(r.dbPath), l.Addr())
	if err := web.Serve(ctx, l, s.Handler()); err != nil {
		status, _ := r.fail(exitUsage, "--web %s: %v", o.webAddr, err)
		return status
	}
	return exitOK
}

package cli

import (
	"fmt"
	"strconv"
	"time"

	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// unixArg parses an option's value as unix seconds (at least 1).
func unixArg(dst func(*options) *int64) func(*options, string) error {
	return func(o *options, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("invalid unix time %q", v)
		}
		*dst(o) = n
		return nil
	}
}

// putLog stores the gzip-compressed build log on stdin (--put-log): the
// build of PKG_VERSION by the -U user in -d/-A that ended at --log-time.
// It is how a builder reaching the queue over ssh delivers its logs. Bad
// input (not gzip, too large) is exit 1 naming stdin, a store that cannot
// take it exit 2.
func (r *run) putLog() int {
	o := r.o
	if len(o.args) != 1 {
		status, _ := r.fail(exitUsage, "--put-log takes one PKG_VERSION")
		return status
	}
	pv, err := debversion.ParsePkgVersion(o.args[0])
	if err != nil {
		status, _ := r.fail(exitUsage, "--put-log: %v", err)
		return status
	}
	if o.logTime == 0 || o.logStatus == "" {
		status, _ := r.fail(exitUsage, "--put-log needs --log-time=UNIX and --log-status=STATUS")
		return status
	}
	l := &queue.BuildLog{Dist: r.s.Dist, Arch: r.s.Arch, Package: pv.Name, Version: pv.Version,
		Time: o.logTime, Builder: r.s.User, Status: queue.Outcome(o.logStatus), Expires: o.logExpires}
	if l.Expires == 0 {
		keep := config.Defaults().LogKeep
		if r.cfg != nil {
			keep = r.cfg.LogKeep
		}
		l.Expires = l.Time + int64(keep)*int64(24*time.Hour/time.Second)
	}
	gz, size, err := queue.ReadLog(r.stdin, "stdin")
	if err != nil {
		status, _ := r.fail(exitUsage, "--put-log %s: %v (nothing stored)", pv, err)
		return status
	}
	l.Size = size
	if err := l.Check(); err != nil {
		status, _ := r.fail(exitUsage, "--put-log: %v", err)
		return status
	}
	db, status, ok := r.open(false)
	if !ok {
		return status
	}
	defer db.Close()
	if err := db.PutLog(l, gz); err != nil {
		status, _ := r.fail(exitDB, "%s: %v (nothing stored)", store.Name(r.dbPath), err)
		return status
	}
	fmt.Fprintf(r.s.Out, "%s: log of the build by %s that ended %s stored (%d bytes, %d compressed)\n",
		pv, l.Builder, l.EndTime().Format(queue.TimeFormat), size, len(gz))
	return exitOK
}

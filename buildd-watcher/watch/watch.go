// Package watch owns the classic buildd-watcher run: restart a dead buildd,
// delete the directories in build/PURGE, remove the temporary files killed
// writers left in build/ and the upload queues, warn about old files,
// archive old package, build and daemon logs, rotate daemon.log, mail the
// build statistics and forget sent mails and reply signatures older than
// reply_window. A run does each task once and returns; the lock
// buildd-watcher.lock in home keeps to one run at a time.
package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/flock"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/program"
)

// ErrRunning is returned by Run when another buildd-watcher holds the lock.
var ErrRunning = errors.New("another buildd-watcher is still running")

// fudge is the classic slack on every "every N days" stamp: ten minutes,
// so that a run a little early on the day still counts.
const fudge = 10 * time.Minute

// day is the classic unit of the *_keep, *_age and *_rotate keys.
const day = 24 * time.Hour

// Watcher runs the classic tasks for one home.
type Watcher struct {
	program.Env
}

// New returns the watcher for cfg, logging to log.
func New(cfg *config.Config, log *daemonlog.Log) *Watcher {
	return &Watcher{Env: program.NewEnv(cfg, log)}
}

// Report says what a run did, for the log and for tests.
type Report struct {
	Daemon    DaemonStatus
	Restarted int // pid of the restarted buildd, 0 if none
	Purged    []string
	Refused   []string // PURGE lines refused (outside build/), with the reason
	TempFiles []string // stale temporary files removed (see CleanTemp)
	OldFiles  []string // files warned about in this run
	Archives  []string // archives written
	Rotated   bool
	StatsSent bool
	// PrunedSent and PrunedSignatures count the sent-mails and
	// mail-signatures lines dropped as older than reply_window.
	PrunedSent, PrunedSignatures int
	Errors                       []error // tasks that failed; the others still ran
}

// Run does every task once, in the classic order, under the watcher lock.
// A failing task is logged, mailed to the admin and recorded in the report;
// the following tasks still run.
func (w *Watcher) Run(ctx context.Context) (*Report, error) {
	if err := w.Home.Init(); err != nil {
		return nil, err
	}
	lock, err := home.TryLock(w.Home.Path("buildd-watcher"))
	if errors.Is(err, flock.ErrLocked) {
		w.Log.Printf("%v -- exiting.", ErrRunning)
		return nil, ErrRunning
	}
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if _, err := w.Mail.Flush(); err != nil {
		w.Log.Printf("mail spool: %v", err)
	}

	r := &Report{}
	fail := func(task string, err error) {
		if err == nil {
			return
		}
		err = fmt.Errorf("%s: %w", task, err)
		w.Log.Printf("%v", err)
		r.Errors = append(r.Errors, err)
	}
	r.Daemon = w.CheckDaemon()
	if r.Daemon.Problem != "" {
		w.Log.Printf("%s", r.Daemon.Problem)
	}
	purged, refused, err := w.Purge()
	r.Purged, r.Refused = purged, refused
	fail("PURGE", err)
	r.TempFiles, err = w.CleanTemp()
	fail("temporary files", err)
	r.OldFiles, err = w.OldFiles()
	fail("old files", err)
	for _, a := range w.archiveSets()[:2] {
		name, err := w.Archive(a)
		fail("archive "+a.Dir, err)
		if name != "" {
			r.Archives = append(r.Archives, name)
		}
	}
	r.Rotated, err = w.RotateLog(r.Daemon.PID)
	fail("rotate "+w.Cfg.DaemonLogFile, err)
	name, err := w.Archive(w.archiveSets()[2])
	fail("archive old-logs", err)
	if name != "" {
		r.Archives = append(r.Archives, name)
	}
	r.StatsSent, err = w.Statistics()
	fail("statistics", err)
	r.PrunedSent, r.PrunedSignatures, err = w.PruneReplies(time.Now())
	fail("reply memory", err)
	if r.Daemon.Restart && ctx.Err() == nil {
		if w.Home.Flag(home.NoDaemonPlease) {
			w.Log.Printf("%s exists, not starting daemon", home.NoDaemonPlease)
		} else {
			pid, err := w.Restart()
			fail("restart buildd", err)
			r.Restarted = pid
		}
	}
	if len(r.Errors) > 0 {
		body := "buildd-watcher could not do everything it should:\n\n"
		for _, e := range r.Errors {
			body += "  " + e.Error() + "\n"
		}
		w.mail(w.Cfg.AdminMail, "buildd-watcher errors", body)
	}
	return r, nil
}

// mail sends a mail, logging a failure (the mail stays in the spool).
func (w *Watcher) mail(to, subject, body string) {
	if err := w.Mail.Send(&mailer.Message{To: []string{to}, Subject: subject, Body: body,
		Header: map[string]string{"Auto-Submitted": "auto-generated"}}); err != nil {
		w.Log.Printf("mail %q: %v", subject, err)
	}
}

// stampDue reports whether the stamp file is missing or older than period
// (less the fudge), and touches it when so.
func (w *Watcher) stampDue(stamp string, period time.Duration) (bool, error) {
	st, err := os.Stat(stamp)
	if err == nil && time.Now().Sub(st.ModTime()) <= period-fudge {
		return false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(stamp, nil, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// formatTime is the classic YYYYMMDD-HHMM of archive and log names.
func formatTime(t time.Time) string { return t.Local().Format("20060102-1504") }

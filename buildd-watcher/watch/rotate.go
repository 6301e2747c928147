package watch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"buildd/internal/atomicfile"
)

// RotateLog rotates daemon.log every daemon_log_rotate days (the stamp
// old-logs/daemon-stamp): daemon.log.old is compressed into
// old-logs/daemon-DATE.log.gz, daemon.log becomes daemon.log.old, a new
// daemon.log is created, buildd (pid, when not 0) gets SIGHUP to reopen
// it, and with daemon_log_send the old log is mailed as "Build Daemon Log
// DATE".
func (w *Watcher) RotateLog(pid int) (bool, error) {
	due, err := w.stampDue(w.Home.Path("old-logs", "daemon-stamp"), time.Duration(w.Cfg.DaemonLogRotate)*day)
	if err != nil || !due {
		return false, err
	}
	w.Log.Printf("Rotating daemon log file")
	logFile := w.Cfg.DaemonLogFile
	old := logFile + ".old"
	d := formatTime(time.Now())
	if _, err := os.Stat(old); err == nil {
		dst := w.Home.Path("old-logs", "daemon-"+d+".log.gz")
		if err := gzipFile(old, dst); err != nil {
			return false, err
		}
		if err := os.Remove(old); err != nil {
			return false, err
		}
	}
	if err := os.Rename(logFile, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o660)
	if err != nil {
		return false, err
	}
	f.Close()
	if err := atomicfile.SyncDir(filepath.Dir(logFile)); err != nil {
		return false, err
	}
	if pid > 0 {
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			w.Log.Printf("SIGHUP buildd (pid %d): %v", pid, err)
		}
	}
	if err := w.Log.Reopen(); err != nil {
		return true, err
	}
	if w.Cfg.DaemonLogSend {
		text, err := os.ReadFile(old)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return true, err
		}
		w.mail(w.Cfg.AdminMail, "Build Daemon Log "+d, string(text))
	}
	return true, nil
}

// gzipFile compresses src into dst (see writeGzipAtomic), keeping src's
// modification time; it never overwrites an existing dst.
func gzipFile(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s exists already, not overwriting it", dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	err = writeGzipAtomic(dst, 0o640, filepath.Base(src), st.ModTime(), func(gz io.Writer) error {
		if _, err := io.Copy(gz, in); err != nil {
			return fmt.Errorf("compress %s to %s: %w", src, dst, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return os.Chtimes(dst, st.ModTime(), st.ModTime())
}

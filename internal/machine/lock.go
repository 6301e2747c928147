package machine

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// errBusy is a lock held by another process.
var errBusy = errors.New("busy")

// lockFile takes an flock on path (created if missing): shared or
// exclusive, waiting up to a minute if wait, else failing with errBusy. It
// makes sure the locked file is still the one at path (a remover unlinks a
// lock file while holding it). Close releases it.
func lockFile(path string, shared, wait bool) (*os.File, error) {
	how := unix.LOCK_EX
	if shared {
		how = unix.LOCK_SH
	}
	deadline := time.Now().Add(time.Minute)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			var a, b unix.Stat_t
			if unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(path, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev {
				return f, nil
			}
			f.Close()
			continue
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !wait {
			return nil, fmt.Errorf("lock %s: %w", path, errBusy)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: still held after a minute", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockHeld reports whether another process holds path's flock.
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

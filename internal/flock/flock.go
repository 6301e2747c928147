// Package flock owns the suite's one file lock: a kernel flock(2) on a lock
// file, shared or exclusive, tried once or waited for up to a timeout.
//
// The kernel releases the lock of a process that dies, so a stale lock file
// never blocks anybody. A remover may unlink a lock file while it holds it,
// so a lock is only ever taken on the file that is still at its path. A
// waiter sleeps in a blocking flock, so a release wakes it at once.
package flock

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned when another holder keeps the lock: at once when
// trying, or after the timeout when waiting.
var ErrLocked = errors.New("locked by another process")

// Mode is how a lock is shared.
type Mode int

const (
	// Exclusive excludes every other holder.
	Exclusive Mode = iota
	// Shared excludes only an Exclusive holder.
	Shared
)

// Lock is a held lock. Unlock releases it.
type Lock struct {
	f *os.File
}

// Acquire takes the lock on path, creating the lock file with perm if it is
// missing. A Shared lock on a file the caller may not create or write is
// taken on the file opened read-only; a missing file is then an error
// satisfying errors.Is(err, fs.ErrNotExist). With timeout 0 it tries once;
// otherwise it waits up to timeout for the holders to release the lock.
// Either way a lock still held fails with ErrLocked.
func Acquire(path string, mode Mode, perm os.FileMode, timeout time.Duration) (*Lock, error) {
	how := unix.LOCK_EX
	if mode == Shared {
		how = unix.LOCK_SH
	}
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
		if err != nil && mode == Shared {
			f, err = os.Open(path)
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := take(f, how, time.Until(deadline)); err != nil {
			if errors.Is(err, ErrLocked) && timeout > 0 {
				return nil, fmt.Errorf("lock %s: %w (waited %s)", path, err, timeout)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if atPath(f, path) {
			return &Lock{f: f}, nil
		}
		f.Close() // unlinked or replaced by a remover: lock the file there now
	}
}

// File is the open lock file, for a note of who holds it.
func (l *Lock) File() *os.File { return l.f }

// Unlock releases the lock; it may be called again, and on a nil Lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Held reports whether anybody holds a lock on the file at path (an open
// file of this process too). A missing file is not held.
func Held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	flock(fd, unix.LOCK_UN)
	return false
}

// take flocks f (how is LOCK_EX or LOCK_SH), waiting up to wait, not at all
// if wait <= 0. It closes f unless it took the lock.
//
// A waiter blocks in flock in a goroutine, so a release wakes it at once.
// One the timeout abandons closes the file itself when its flock returns,
// releasing the lock it may just have got.
func take(f *os.File, how int, wait time.Duration) error {
	fd := int(f.Fd())
	err := flock(fd, how|unix.LOCK_NB)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return err
	}
	if wait <= 0 {
		f.Close()
		return ErrLocked
	}
	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan error, 1)
	)
	go func() {
		err := flock(fd, how)
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			f.Close()
			return
		}
		done <- err
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		mu.Lock()
		select {
		case err = <-done:
			mu.Unlock()
		default:
			abandoned = true
			mu.Unlock()
			return ErrLocked
		}
	}
	if err != nil {
		f.Close()
		return err
	}
	return nil
}

// flock is unix.Flock, retried when a signal interrupts it.
func flock(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// atPath reports whether the open file f is still the file at path.
func atPath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(path, &b) == nil && a.Ino == b.Ino && a.Dev == b.Dev
}

package home

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/flock"
)

// Lock is a held FILE.lock (see package flock). The file's contents,
// "PID USER\n" as the classic suite writes them, say who holds it.
type Lock struct {
	l *flock.Lock
}

// LockFile takes the lock for path (the lock file is path + ".lock"),
// waiting up to timeout for another holder to release it. A lock still
// held is an error wrapping flock.ErrLocked that names the holder.
func LockFile(path string, timeout time.Duration) (*Lock, error) {
	l, err := lock(path, timeout)
	if errors.Is(err, flock.ErrLocked) {
		return nil, fmt.Errorf("%s.lock: %w (%s) for %v", path, flock.ErrLocked, holder(path), timeout)
	}
	return l, err
}

// TryLock takes the lock for path if it is free, else fails with an error
// wrapping flock.ErrLocked.
func TryLock(path string) (*Lock, error) { return lock(path, 0) }

// lock takes path's lock and writes the holder note into it.
func lock(path string, timeout time.Duration) (*Lock, error) {
	l, err := flock.Acquire(path+".lock", flock.Exclusive, 0o644, timeout)
	if err != nil {
		return nil, err
	}
	if f := l.File(); f.Truncate(0) == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), userName())
	}
	return &Lock{l: l}, nil
}

// Unlock releases the lock, emptying the holder note first.
func (l *Lock) Unlock() error {
	if l == nil || l.l == nil {
		return nil
	}
	l.l.File().Truncate(0)
	err := l.l.Unlock()
	l.l = nil
	return err
}

// holder reads who holds path's lock, for messages.
func holder(path string) string {
	b, err := os.ReadFile(path + ".lock")
	if err != nil || len(b) == 0 {
		return "holder unknown"
	}
	return "held by " + strings.TrimSpace(string(b))
}

func userName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return strconv.Itoa(os.Getuid())
}

// Alive reports whether a process with this pid exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// WritePID writes the pid file in the classic "%5d\n" format, atomically.
func WritePID(path string, pid int) error {
	return atomicfile.WriteFile(path, []byte(fmt.Sprintf("%5d\n", pid)), 0o644)
}

// ReadPID reads a pid file. A missing file gives (0, nil); a file that is not
// a number gives an error naming the file and its contents.
func ReadPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: bad pid file contents %q", path, s)
	}
	return pid, nil
}

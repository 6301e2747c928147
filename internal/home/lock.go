package home

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by TryLock when another live process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held FILE.lock. The kernel's flock is what excludes; the file's
// contents, "PID USER\n" as the classic suite writes them, say who holds it.
// A lock whose holder died is released by the kernel, so a stale lock file
// never blocks anybody.
type Lock struct {
	f    *os.File
	path string
}

// LockFile takes the lock for path (the lock file is path + ".lock"),
// waiting up to timeout for another holder to release it.
func LockFile(path string, timeout time.Duration) (*Lock, error) {
	deadline := time.Now().Add(timeout)
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrLocked) {
			return l, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s.lock: %w (%s) for %v", path, ErrLocked, holder(path), timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TryLock takes the lock for path if it is free, else returns ErrLocked.
func TryLock(path string) (*Lock, error) {
	lp := path + ".lock"
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), userName())
	}
	return &Lock{f: f, path: lp}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close()
	l.f = nil
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
	return WriteFileAtomic(path, []byte(fmt.Sprintf("%5d\n", pid)), 0o644)
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

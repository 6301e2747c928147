package bolt

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned when the database stays locked past the timeout.
var ErrLocked = errors.New("database locked")

// flockFile takes a shared or exclusive flock on path (created if missing)
// within timeout. Waiting is a blocking flock, so a writer that releases
// the lock wakes the next one at once (bbolt's own lock polls every 50 ms).
// The returned file is the lock: closing it releases it.
func flockFile(path string, exclusive bool, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil && !exclusive {
		f, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // a reader that cannot create the lock file relies on bbolt's lock
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	fd := int(f.Fd())
	err = unix.Flock(fd, how|unix.LOCK_NB)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	var (
		mu        sync.Mutex
		abandoned bool
		done      = make(chan error, 1)
	)
	go func() {
		var err error
		for {
			if err = unix.Flock(fd, how); !errors.Is(err, unix.EINTR) {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned {
			f.Close()
			return
		}
		done <- err
	}()
	timer := time.NewTimer(timeout)
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
			return nil, fmt.Errorf("%s: %w (waited %s)", path, ErrLocked, timeout)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

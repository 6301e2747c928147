package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"buildd/internal/flock"
	"buildd/internal/queue"
)

// ErrLocked is returned when the database stays locked past the timeout.
var ErrLocked = queue.ErrLocked

// lockDB takes the database's lock file path within timeout: exclusive for
// a writer, shared for a reader. The lock file is created 0666 less the
// umask, so the group that shares the database can lock it. A reader that cannot create the lock file gets a nil lock
// and relies on bbolt's own lock.
func lockDB(path string, readOnly bool, timeout time.Duration) (*flock.Lock, error) {
	mode := flock.Exclusive
	if readOnly {
		mode = flock.Shared
	}
	l, err := flock.Acquire(path, mode, 0o666, timeout)
	switch {
	case readOnly && errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, flock.ErrLocked):
		return nil, fmt.Errorf("%s: %w (waited %s)", path, ErrLocked, timeout)
	}
	return l, err
}

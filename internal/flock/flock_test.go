package flock

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// free is a lock file nobody holds, in TestAcquire.
const free Mode = -1

// TestAcquire: another holder (an open file of its own, as another process
// would have) holds the lock, or not, and may release it, or unlink the
// lock file, while the call tries or waits.
func TestAcquire(t *testing.T) {
	tests := []struct {
		name    string
		held    Mode          // the other holder's lock; free: none
		release time.Duration // it releases after this; 0: not during the call
		unlink  bool          // it unlinks the lock file (when it releases, else at once)
		mode    Mode
		timeout time.Duration
		wantErr error
		minTime time.Duration // the call takes at least this long
	}{
		{name: "exclusive on a free file", held: free, mode: Exclusive},
		{name: "shared on a free file", held: free, mode: Shared},
		{name: "shared beside shared", held: Shared, mode: Shared},
		{name: "try exclusive against exclusive", held: Exclusive, mode: Exclusive, wantErr: ErrLocked},
		{name: "try shared against exclusive", held: Exclusive, mode: Shared, wantErr: ErrLocked},
		{name: "try exclusive against shared", held: Shared, mode: Exclusive, wantErr: ErrLocked},
		{name: "wait past the timeout", held: Exclusive, mode: Exclusive, timeout: 150 * time.Millisecond, wantErr: ErrLocked, minTime: 150 * time.Millisecond},
		{name: "wait shared for exclusive", held: Exclusive, release: 100 * time.Millisecond, mode: Shared, timeout: 5 * time.Second, minTime: 100 * time.Millisecond},
		{name: "wait exclusive for shared", held: Shared, release: 100 * time.Millisecond, mode: Exclusive, timeout: 5 * time.Second, minTime: 100 * time.Millisecond},
		{name: "try after the holder unlinked it", held: Exclusive, unlink: true, mode: Exclusive},
		{name: "wait while the holder unlinks it", held: Exclusive, release: 100 * time.Millisecond, unlink: true, mode: Exclusive, timeout: 5 * time.Second, minTime: 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.lock")
			released := make(chan time.Time, 1)
			start := time.Now()
			if tt.held != free {
				h, err := Acquire(path, tt.held, 0o644, 0)
				if err != nil {
					t.Fatal(err)
				}
				if tt.release == 0 {
					defer h.Unlock()
				}
				switch {
				case tt.release > 0:
					time.AfterFunc(tt.release, func() {
						if tt.unlink {
							os.Remove(path)
						}
						released <- time.Now()
						h.Unlock()
					})
				case tt.unlink:
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
				}
			}
			l, err := Acquire(path, tt.mode, 0o644, tt.timeout)
			acquired := time.Now()
			took := acquired.Sub(start)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Acquire = %v, want %v", err, tt.wantErr)
			}
			if took < tt.minTime || took > tt.minTime+time.Second {
				t.Errorf("Acquire took %s, want %s to a second more", took, tt.minTime)
			}
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not name %s", err, path)
				}
				if tt.timeout > 0 && !strings.Contains(err.Error(), "waited "+tt.timeout.String()) {
					t.Errorf("error %q does not say how long it waited", err)
				}
				return
			}
			defer l.Unlock()
			if tt.release > 0 {
				// A release wakes the waiter at once: no polling interval.
				if lag := acquired.Sub(<-released); lag > 30*time.Millisecond {
					t.Errorf("took the lock %s after its release", lag)
				}
			}
			if !atPath(l.File(), path) {
				t.Error("the lock is not on the file at its path")
			}
			if !Held(path) {
				t.Error("Held = false while held")
			}
		})
	}
}

// TestUnlock: Unlock releases the lock, and may be called again or on nil.
func TestUnlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if Held(path) {
		t.Error("a missing lock file is held")
	}
	l, err := Acquire(path, Exclusive, 0o644, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !Held(path) {
		t.Error("Held = false while held")
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	if err := (*Lock)(nil).Unlock(); err != nil {
		t.Errorf("Unlock on nil: %v", err)
	}
	if Held(path) {
		t.Error("Held = true after Unlock")
	}
	l2, err := Acquire(path, Exclusive, 0o644, 0)
	if err != nil {
		t.Fatalf("Acquire after Unlock: %v", err)
	}
	l2.Unlock()
}

// TestAcquireMissing: a lock file that cannot be created is an error naming
// it that says it does not exist, shared or exclusive.
func TestAcquireMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "x.lock")
	for _, mode := range []Mode{Exclusive, Shared} {
		_, err := Acquire(path, mode, 0o644, time.Second)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Errorf("mode %d: %v, want an error naming %s that satisfies fs.ErrNotExist", mode, err, path)
		}
	}
}

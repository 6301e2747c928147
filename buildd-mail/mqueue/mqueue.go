// Package mqueue owns buildd-mail's durable intake queue, ~/mqueue: every
// incoming mail is written to mqueue/tmp, fsynced and renamed into
// mqueue/new before anybody acknowledges it, and stays there until its
// effect is committed. Names sort in arrival order; one processor at a time
// drains the queue under mqueue's lock. It owns the largest size of a mail,
// MaxSize: nothing larger is stored, nor read back.
package mqueue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/home"
)

// MaxSize is the largest mail buildd-mail takes: 16 MiB holds a reply
// quoting a long build log many times over. A mail over it is refused when
// it comes in (intake) and never stored.
const MaxSize = 16 << 20

// ErrTooBig is the error, wrapped, of Store and Read for a mail over
// MaxSize.
var ErrTooBig = fmt.Errorf("mail larger than %d bytes (%d MiB)", MaxSize, MaxSize>>20)

// Queue is a mail queue directory with tmp/ and new/ beneath it.
type Queue struct {
	Dir string
}

// New returns the queue in dir; Init creates its directories.
func New(dir string) *Queue { return &Queue{Dir: dir} }

// Init creates tmp/ and new/.
func (q *Queue) Init() error {
	for _, d := range []string{"tmp", "new"} {
		if err := os.MkdirAll(filepath.Join(q.Dir, d), 0o700); err != nil {
			return fmt.Errorf("mqueue: %w", err)
		}
	}
	return nil
}

var seq atomic.Uint64

// name sorts in arrival order: the time in nanoseconds, zero-padded, then
// the pid and a per-process counter to keep names unique.
func name() string {
	return fmt.Sprintf("%020d.%d.%d", time.Now().UnixNano(), os.Getpid(), seq.Add(1))
}

// Store writes the mail read from r durably into the queue and returns its
// name. When Store returns nil the mail survives a crash. The mail streams
// to a file in tmp/; at most MaxSize+1 bytes are read from r, and a mail
// over MaxSize is an ErrTooBig and leaves nothing behind (the rest of r is
// the caller's to drain or drop).
func (q *Queue) Store(r io.Reader) (string, error) {
	if err := q.Init(); err != nil {
		return "", err
	}
	n := name()
	tmp := filepath.Join(q.Dir, "tmp", n)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("mqueue: store: %w", err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("mqueue: store %s: %w", tmp, err)
	}
	n64, err := io.Copy(f, io.LimitReader(r, MaxSize+1))
	if err != nil {
		return fail(err)
	}
	if n64 > MaxSize {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("mqueue: store: %w: not stored", ErrTooBig)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("mqueue: store %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(q.Dir, "new", n)); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("mqueue: store %s: %w", n, err)
	}
	if err := atomicfile.SyncDir(filepath.Join(q.Dir, "new")); err != nil {
		return "", fmt.Errorf("mqueue: store %s: %w", n, err)
	}
	return n, nil
}

// List returns the names of the queued mails, oldest first.
func (q *Queue) List() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(q.Dir, "new"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mqueue: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// Read returns the stored mail n. A file over MaxSize (put there by hand,
// or by a version that took larger mails) is not read: the error names it
// and wraps ErrTooBig, and the file is the caller's to remove.
func (q *Queue) Read(n string) ([]byte, error) {
	p := filepath.Join(q.Dir, "new", n)
	st, err := os.Lstat(p)
	if err != nil {
		return nil, fmt.Errorf("mqueue: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("mqueue: %s: not a regular file", p)
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("mqueue: %s: %d bytes: %w", p, st.Size(), ErrTooBig)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("mqueue: %w", err)
	}
	defer f.Close()
	b := bytes.NewBuffer(make([]byte, 0, st.Size()+bytes.MinRead))
	if _, err := b.ReadFrom(io.LimitReader(f, MaxSize+1)); err != nil {
		return nil, fmt.Errorf("mqueue: %s: %w", p, err)
	}
	if b.Len() > MaxSize {
		return nil, fmt.Errorf("mqueue: %s: grew past %d bytes while read: %w", p, MaxSize, ErrTooBig)
	}
	return b.Bytes(), nil
}

// Arrived returns when mail n was stored: the time in its name, else (a
// file put there by hand) its modification time.
func (q *Queue) Arrived(n string) (time.Time, error) {
	if ns, err := strconv.ParseInt(strings.SplitN(n, ".", 2)[0], 10, 64); err == nil && ns > 0 {
		return time.Unix(0, ns), nil
	}
	st, err := os.Stat(filepath.Join(q.Dir, "new", n))
	if err != nil {
		return time.Time{}, fmt.Errorf("mqueue: %w", err)
	}
	return st.ModTime(), nil
}

// Remove deletes mail n; call it only once its effect is committed. The
// directory is not fsynced: a removal lost in a crash brings the mail back,
// and processing it again is harmless (every action checks its state).
func (q *Queue) Remove(n string) error {
	if err := os.Remove(filepath.Join(q.Dir, "new", n)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mqueue: %w", err)
	}
	return nil
}

// Lock is the processing lock (mqueue.lock beside the queue directory):
// TryLock returns flock.ErrLocked while another processor holds it.
func (q *Queue) TryLock() (*home.Lock, error) { return home.TryLock(q.Dir) }

// CleanTmp removes files left in tmp/ by writers that died before the
// rename, older than age; nobody acknowledged them.
func (q *Queue) CleanTmp(age time.Duration) {
	ents, _ := os.ReadDir(filepath.Join(q.Dir, "tmp"))
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			os.Remove(filepath.Join(q.Dir, "tmp", e.Name()))
		}
	}
}

package build

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// logFile is the build log. Everything up to the summary goes through a
// cap: past limit/2 bytes, output is kept only as a tail of limit/2 bytes
// (in a ring file beside the log); when the body ends, a marker line saying
// how much was dropped and then the tail are written. It also records when
// output last arrived, for the no-output watchdog.
//
// The first error writing the log (the file, the ring file, the marker and
// tail, closing) is kept: from then on the log is incomplete, whatever later
// writes do, and failed reports it. Writes after a failure are still tried
// (the summary of a given-back build should reach the log if it can) and
// return their own error.
type logFile struct {
	mu      sync.Mutex
	f       *os.File
	limit   int64
	written int64    // bytes of body accepted
	ring    *os.File // the tail, once past the head
	ringLen int64
	last    time.Time
	err     error // the first failure, sticky
}

func openLog(path string, limit int64) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 1 << 62
	}
	return &logFile{f: f, limit: limit, last: time.Now()}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = time.Now()
	n := len(p)
	head := l.limit / 2
	if l.written < head {
		k := int64(len(p))
		if l.written+k > head {
			k = head - l.written
		}
		m, err := l.f.Write(p[:k])
		l.written += int64(m)
		if err != nil {
			l.record(err)
			return n - len(p) + m, err
		}
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if l.ring == nil {
		r, err := os.CreateTemp("", "buildd-log-tail-")
		if err != nil {
			l.record(fmt.Errorf("the log's tail file: %w", err))
			return n - len(p), err
		}
		os.Remove(r.Name())
		l.ring = r
		l.ringLen = l.limit - head
	}
	for len(p) > 0 {
		off := (l.written - head) % l.ringLen
		k := int64(len(p))
		if off+k > l.ringLen {
			k = l.ringLen - off
		}
		m, err := l.ring.WriteAt(p[:k], off)
		l.written += int64(m)
		if err != nil {
			l.record(fmt.Errorf("the log's tail file: %w", err))
			return n - len(p) + m, err
		}
		p = p[k:]
	}
	return n, nil
}

// record keeps err if it is the log's first failure; l.mu is held. An
// error on the log file itself loses the file name (the builder's message
// names the log) and the "write" that says nothing more.
func (l *logFile) record(err error) {
	if l.err != nil {
		return
	}
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == l.f.Name() {
		err = pe.Err
		if pe.Op != "write" {
			err = fmt.Errorf("%s: %w", pe.Op, pe.Err)
		}
	}
	l.err = err
}

// failed is the log's first write failure, nil while the log is complete.
func (l *logFile) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// fileWriter writes to the log file itself, past the cap, recording a
// failure; l.mu is held.
type fileWriter struct{ l *logFile }

func (w fileWriter) Write(p []byte) (int, error) {
	n, err := w.l.f.Write(p)
	if err != nil {
		w.l.record(err)
	}
	return n, err
}

// lastOutput is when the log last received bytes.
func (l *logFile) lastOutput() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// endBody writes the truncation marker and the kept tail, if the cap was
// hit; what is written afterwards (summary, .changes) goes straight to the
// file. It returns the log's first failure (failed), if any.
func (l *logFile) endBody() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ring == nil {
		l.limit = 1 << 62
		return l.err
	}
	head := l.limit / 2
	beyond := l.written - head
	dropped := beyond - l.ringLen
	if dropped < 0 {
		dropped = 0
	}
	fmt.Fprintf(fileWriter{l}, "\n\n[... buildd: log truncated: %d bytes dropped here (log_size_limit %d) ...]\n\n", dropped, l.limit)
	copyTail := func(off, n int64) {
		if _, err := io.Copy(fileWriter{l}, io.NewSectionReader(l.ring, off, n)); err != nil {
			l.record(fmt.Errorf("the log's tail file: %w", err)) // if not the write's, kept already
		}
	}
	if beyond <= l.ringLen {
		copyTail(0, beyond)
	} else {
		start := (l.written - head) % l.ringLen
		copyTail(start, l.ringLen-start)
		copyTail(0, start)
	}
	l.ring.Close()
	l.ring = nil
	l.limit = 1 << 62
	l.written = 0
	return l.err
}

// Close closes the log; a failure closing it is a failure of the log.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ring != nil {
		l.ring.Close()
		l.ring = nil
	}
	if err := l.f.Close(); err != nil {
		l.record(err)
		return err
	}
	return nil
}

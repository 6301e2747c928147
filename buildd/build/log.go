package build

import (
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
type logFile struct {
	mu      sync.Mutex
	f       *os.File
	limit   int64
	written int64    // bytes of body accepted
	ring    *os.File // the tail, once past the head
	ringLen int64
	last    time.Time
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
		if _, err := l.f.Write(p[:k]); err != nil {
			return 0, err
		}
		l.written += k
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if l.ring == nil {
		r, err := os.CreateTemp("", "buildd-log-tail-")
		if err != nil {
			return 0, err
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
		if _, err := l.ring.WriteAt(p[:k], off); err != nil {
			return 0, err
		}
		l.written += k
		p = p[k:]
	}
	return n, nil
}

// lastOutput is when the log last received bytes.
func (l *logFile) lastOutput() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// endBody writes the truncation marker and the kept tail, if the cap was
// hit; what is written afterwards (summary, .changes) goes straight to the file.
func (l *logFile) endBody() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ring == nil {
		l.limit = 1 << 62
		return nil
	}
	head := l.limit / 2
	beyond := l.written - head
	dropped := beyond - l.ringLen
	if dropped < 0 {
		dropped = 0
	}
	fmt.Fprintf(l.f, "\n\n[... buildd: log truncated: %d bytes dropped here (log_size_limit %d) ...]\n\n", dropped, l.limit)
	if beyond <= l.ringLen {
		io.Copy(l.f, io.NewSectionReader(l.ring, 0, beyond))
	} else {
		start := (l.written - head) % l.ringLen
		io.Copy(l.f, io.NewSectionReader(l.ring, start, l.ringLen-start))
		io.Copy(l.f, io.NewSectionReader(l.ring, 0, start))
	}
	l.ring.Close()
	l.ring = nil
	l.limit = 1 << 62
	l.written = 0
	return nil
}

func (l *logFile) Close() error {
	if l.ring != nil {
		l.ring.Close()
	}
	return l.f.Close()
}

package daemon

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Log is daemon.log: every line prefixed as the classic buildd does,
// "Nov 21 07:30:12 buildd[1234]: ", appended and reopened on SIGHUP after
// buildd-watcher rotated it.
type Log struct {
	mu   sync.Mutex
	path string
	f    *os.File
	also io.Writer // the terminal with --no-detach; nil when detached
	// stdio: when detached, stdout and stderr are the log too (a panic
	// lands there); Reopen moves them to the new file.
	stdio bool
	pid   int
}

// OpenLog opens (creating) the log at path for appending.
func OpenLog(path string, also io.Writer, stdio bool) (*Log, error) {
	l := &Log{path: path, also: also, stdio: stdio, pid: os.Getpid()}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen closes the log file and opens path again.
func (l *Log) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("daemon log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
	if l.stdio {
		unix.Dup2(int(f.Fd()), 1)
		unix.Dup2(int(f.Fd()), 2)
	}
	return nil
}

// Printf logs a message; a message of several lines gets the prefix on
// each.
func (l *Log) Printf(format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	prefix := fmt.Sprintf("%s buildd[%d]: ", time.Now().Format("Jan _2 15:04:05"), l.pid)
	var b strings.Builder
	for _, line := range strings.Split(msg, "\n") {
		b.WriteString(prefix)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		io.WriteString(l.f, b.String())
	}
	if l.also != nil {
		io.WriteString(l.also, b.String())
	}
}

// Close closes the log file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Package daemonlog owns daemon.log, the log every program of the suite
// (buildd, buildd-mail, buildd-uploader, buildd-watcher) appends to: lines
// in the classic format "Mon _2 15:04:05 PROG[PID]: text", through a file
// that is reopened after buildd-watcher rotates it (buildd on SIGHUP).
package daemonlog

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Log is an appender to a daemon log file. The zero of Path logs to Echo
// only.
type Log struct {
	Path string
	Prog string
	// Echo, when set, gets a copy of every line (stderr in a terminal).
	Echo io.Writer
	// Stdio makes stdout and stderr the log file too (a detached daemon:
	// a panic lands in the log); Reopen moves them to the new file.
	Stdio bool

	mu sync.Mutex
	f  *os.File
}

// Open opens path for appending, creating it with mode 0640 as the classic
// suite does.
func Open(path, prog string) (*Log, error) {
	l := &Log{Path: path, Prog: prog}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reopen closes the file and opens Path again: after a rotation moved the
// old file away, lines go to the new one.
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if l.Path == "" {
		return nil
	}
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	l.f = f
	if l.Stdio {
		if err := unix.Dup2(int(f.Fd()), 1); err != nil {
			return fmt.Errorf("log on stdout: %w", err)
		}
		if err := unix.Dup2(int(f.Fd()), 2); err != nil {
			return fmt.Errorf("log on stderr: %w", err)
		}
	}
	return nil
}

// Printf logs one message; a message of several lines gives several
// prefixed lines.
func (l *Log) Printf(format string, args ...any) {
	if l == nil {
		return
	}
	prefix := fmt.Sprintf("%s %s[%d]: ", time.Now().Format(time.Stamp), l.Prog, os.Getpid())
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		b.WriteString(prefix)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.WriteString(b.String())
	}
	if l.Echo != nil {
		io.WriteString(l.Echo, b.String())
	}
}

// Close closes the file.
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

// FromProg reports whether line was written by a Log of program prog.
func FromProg(line, prog string) bool {
	if len(line) <= len(time.Stamp)+1 {
		return false
	}
	return strings.HasPrefix(line[len(time.Stamp)+1:], prog+"[")
}

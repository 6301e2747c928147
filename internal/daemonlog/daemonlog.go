// Package daemonlog owns daemon.log, the log every program of the suite
// (buildd, buildd-mail, buildd-uploader, buildd-watcher) appends to: lines
// in the classic format "Mon _2 15:04:05 PROG[PID]: text", through a file
// that is reopened after buildd-watcher rotates it (buildd on SIGHUP).
//
// One message is one line: text from outside (mail subjects, build logs)
// cannot start a line of its own or send escape sequences to the terminal
// of whoever reads the log (see escape).
package daemonlog

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// Printf logs one message as exactly one line: trailing newlines are
// dropped and the rest is passed through escape.
func (l *Log) Printf(format string, args ...any) {
	if l == nil {
		return
	}
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\r\n")
	line := fmt.Sprintf("%s %s[%d]: %s\n", time.Now().Format(time.Stamp), l.Prog, os.Getpid(), escape(msg))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.WriteString(line)
	}
	if l.Echo != nil {
		io.WriteString(l.Echo, line)
	}
}

// escape makes s one line of plain text: newline, carriage return and tab
// become \n, \r and \t; other C0 control bytes, DEL and the bytes of
// invalid UTF-8 become \xHH; C1 controls and the Unicode line and
// paragraph separators become \uHHHH. Everything else, other UTF-8 text
// included, is kept as it is; a backslash is not escaped, so the escapes
// are for reading, not for decoding.
func escape(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, needsEscape) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// needsEscape: the runes escape rewrites (besides invalid UTF-8).
func needsEscape(r rune) bool {
	return r < 0x20 || r >= 0x7f && r <= 0x9f || r == '\u2028' || r == '\u2029'
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

package queue

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"time"

	"buildd/internal/debversion"
)

// Build logs: every finished build's log (successful, attempted or given
// back) is delivered by its builder into the queue's store, gzip
// compressed, for the status web. A log is keyed by distribution,
// architecture, source package, version (with +bN for a binNMU), the
// time the build ended and the builder; it carries when it may be removed
// (Expires, set by whoever stores it from its log_keep), and every PutLog
// removes the logs whose time has come.

// BuildLog describes one stored build log.
type BuildLog struct {
	Dist    string  `json:"dist"`
	Arch    string  `json:"arch"`
	Package string  `json:"package"`
	Version string  `json:"version"`
	Time    int64   `json:"time"` // when the build ended, unix seconds
	Builder string  `json:"builder"`
	Status  Outcome `json:"status"`  // one of Outcomes
	Size    int64   `json:"size"`    // bytes of the log
	Stored  int64   `json:"stored"`  // bytes of its gzip form, as the store holds it
	Expires int64   `json:"expires"` // unix seconds from which it may be removed
}

// Outcome is how a build ended, as the queue is told it and its log
// keeps it.
type Outcome string

// The outcomes of a build.
const (
	Successful Outcome = "successful" // → --built
	Attempted  Outcome = "attempted"  // the package failed to build → --attempted
	GivenBack  Outcome = "given-back" // not the package's fault (fetch, deps, timeout, kill, internal) → --give-back
)

// Outcomes are every Outcome.
var Outcomes = []Outcome{Successful, Attempted, GivenBack}

// MaxLogGzip is the most bytes of a compressed log a store accepts, and
// MaxLogText the most bytes it may hold uncompressed. A builder's log is
// cut to log_size_limit already; CompressLog keeps a longer one's first
// and last halves of MaxLogText.
const (
	MaxLogGzip = 100 << 20
	MaxLogText = 1 << 30
)

// ErrNoLog is matched (errors.Is) when a store has no log with the key
// asked for.
var ErrNoLog = errors.New("no such log")

// ErrLogTooLarge is matched when a log is over MaxLogGzip or MaxLogText.
var ErrLogTooLarge = errors.New("log too large")

// LogStore is where the build logs are kept: the queue's store itself.
type LogStore interface {
	// PutLog stores gz, the gzip form of the log l describes (l.Size its
	// length uncompressed, see ReadLog), unless a log with l's key is
	// there already, and removes every log whose Expires has passed.
	PutLog(l *BuildLog, gz []byte) error
	// Logs lists the logs of the source package name in every
	// distribution and architecture, newest first.
	Logs(name string) ([]BuildLog, error)
	// CopyLog writes the gzip form of the log with l's key to w; ErrNoLog
	// when there is none.
	CopyLog(l *BuildLog, w io.Writer) error
}

// PkgVersion is the log's "name_version".
func (l *BuildLog) PkgVersion() string {
	return debversion.PkgVersion{Name: l.Package, Version: l.Version}.String()
}

// EndTime is Time as a time.
func (l *BuildLog) EndTime() time.Time { return time.Unix(l.Time, 0).UTC() }

// Check reports a BuildLog whose key or status a store must not take: the
// names are those the queue's commands accept, so none holds a "/", a
// NUL or a control character.
func (l *BuildLog) Check() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("log %s: %s", l.PkgVersion(), fmt.Sprintf(format, args...))
	}
	switch {
	case !ValidLabel(l.Dist):
		return fail("invalid distribution %q", l.Dist)
	case !ValidLabel(l.Arch):
		return fail("invalid architecture %q", l.Arch)
	case !ValidBuilder(l.Builder):
		return fail("invalid builder %q", l.Builder)
	case l.Time <= 0:
		return fail("invalid end time %d", l.Time)
	case l.Expires <= 0:
		return fail("invalid expiry time %d", l.Expires)
	case l.Size < 0 || l.Size > MaxLogText:
		return fail("invalid size %d", l.Size)
	}
	if err := debversion.CheckName(l.Package); err != nil {
		return fail("%v", err)
	}
	if err := debversion.CheckVersion(l.Version); err != nil {
		return fail("%v", err)
	}
	for _, s := range Outcomes {
		if l.Status == s {
			return nil
		}
	}
	return fail("invalid status %q (want successful, attempted or given-back)", l.Status)
}

// ValidLabel reports whether s may name a distribution or architecture
// where one is taken from outside (a URL, a delivered log): 1 to 64 of
// lower-case letters, digits, "+", "-" and ".", the first a letter or digit.
func ValidLabel(s string) bool {
	return validName(s, 64, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
	})
}

// ValidBuilder reports whether s may name a builder (a login or host
// name): as ValidLabel, also upper case, "_" and "@", up to 256 bytes.
func ValidBuilder(s string) bool {
	return validName(s, 256, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == '_' || c == '@'
	})
}

// validName: 1 to max bytes, all ok, the first a letter or digit.
func validName(s string, max int, ok func(byte) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	c := s[0]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ReadLog reads a gzip-compressed log from r, which name names in errors
// ("stdin", a file): at most MaxLogGzip bytes, a whole gzip stream of at
// most MaxLogText bytes uncompressed. It returns the compressed bytes and
// the uncompressed length.
func ReadLog(r io.Reader, name string) ([]byte, int64, error) {
	gz, err := io.ReadAll(io.LimitReader(r, MaxLogGzip+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	if len(gz) > MaxLogGzip {
		return nil, 0, fmt.Errorf("%s: %w: more than %d bytes compressed", name, ErrLogTooLarge, MaxLogGzip)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: not a gzip stream: %w", name, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(zr, MaxLogText+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: not a whole gzip stream: %w", name, err)
	}
	if n > MaxLogText {
		return nil, 0, fmt.Errorf("%s: %w: more than %d bytes uncompressed", name, ErrLogTooLarge, MaxLogText)
	}
	return gz, n, nil
}

// CompressLog writes the gzip form of the size bytes of log to w; a log
// longer than MaxLogText keeps its first and last halves of it around a
// line saying how much was left out.
func CompressLog(w io.Writer, log io.ReaderAt, size int64) error {
	zw := gzip.NewWriter(w)
	var err error
	if size <= MaxLogText {
		_, err = io.Copy(zw, io.NewSectionReader(log, 0, size))
	} else {
		half := int64(MaxLogText/2 - 256)
		if _, err = io.Copy(zw, io.NewSectionReader(log, 0, half)); err == nil {
			fmt.Fprintf(zw, "\n\n[... log store: %d bytes left out here (the store keeps %d) ...]\n\n", size-2*half, MaxLogText)
			_, err = io.Copy(zw, io.NewSectionReader(log, size-half, half))
		}
	}
	if err != nil {
		return err
	}
	return zw.Close()
}

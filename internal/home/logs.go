package home

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"buildd/internal/debversion"
)

// LogName is the base name of a job's log, the file
// LogName(...)+".build": PKG_VERSION_ARCH-YYYYMMDD-HHMMSS (UTC), the
// version without its epoch (file names carry no colon). CreateLog and
// buildd/build name every log with it.
func LogName(pkgv, arch string, t time.Time) string {
	return debversion.SplitPkgVersion(pkgv).NoEpoch().String() + "_" + arch + "-" + t.UTC().Format("20060102-150405")
}

// ChangesName is the name of a build's .changes, in build/ and in the
// upload queues: NAME_VERSION_ARCH.changes, the version without its epoch.
// ARCH is the build architecture, or "multi" for a .changes listing
// several.
func ChangesName(pv debversion.PkgVersion, arch string) string {
	return pv.NoEpoch().String() + "_" + arch + ".changes"
}

// CreateLog creates a new log file for a job in dir, exclusively (O_EXCL):
// a log is never overwritten. When the name is taken (two jobs of the same
// package in one second, a clock set back) it tries NAME.2.build,
// NAME.3.build, ...
func CreateLog(dir, pkgv, arch string, t time.Time) (*os.File, error) {
	if strings.ContainsAny(pkgv+arch, "/\x00") || pkgv == "" {
		return nil, fmt.Errorf("job log for %q %q: not a plain package_version and architecture", pkgv, arch)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("job log: %w", err)
	}
	base := filepath.Join(dir, LogName(pkgv, arch, t))
	name := base + ".build"
	for seq := 2; ; seq++ {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrExist) || seq > 1000 {
			return nil, fmt.Errorf("job log: %w", err)
		}
		name = fmt.Sprintf("%s.%d.build", base, seq)
	}
}

// Tail returns the last n lines of the file at path, reading it backwards
// in blocks so a huge log costs no more than its end. trimmed reports
// whether lines were left out before them.
func Tail(path string, n int) (tail string, trimmed bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	if n <= 0 {
		return "", true, nil
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", false, err
	}
	const block = 4096
	var buf []byte
	off := size
	for off > 0 {
		// One newline more than n lines: the text after it is n whole lines
		// (a final newline ends the last line and is not counted).
		nl := bytes.Count(buf, []byte("\n"))
		if len(buf) > 0 && buf[len(buf)-1] == '\n' {
			nl--
		}
		if nl >= n {
			break
		}
		step := int64(block)
		if off < step {
			step = off
		}
		off -= step
		chunk := make([]byte, step)
		if _, err := f.ReadAt(chunk, off); err != nil {
			return "", false, fmt.Errorf("%s: %w", path, err)
		}
		buf = append(chunk, buf...)
	}
	body := buf
	end := len(body)
	if end > 0 && body[end-1] == '\n' {
		end--
	}
	count := 0
	start := 0
	for i := end - 1; i >= 0; i-- {
		if body[i] == '\n' {
			count++
			if count == n {
				start = i + 1
				break
			}
		}
	}
	return string(body[start:]), start > 0 || off > 0, nil
}

// Package atomicfile owns the suite's one way of replacing a file: write a
// temporary file beside it, fsync it, rename it over the target and fsync
// the directory, so a reader sees the old or the new contents and a crash
// loses neither. The temporary files a killed writer leaves have one name
// pattern (see File), and CleanTemp removes them.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// File is a file being written in place of another: it is written to
// a temporary file beside the target, and Commit fsyncs it, renames it over
// the target and fsyncs the directory, so readers see the old or the new
// contents and a crash loses neither. Abort (deferred) removes it unless
// it was committed.
//
// The temporary file of NAME is ".NAME" + TempMarker + digits, e.g.
// ".hello_1.0-1_amd64.changes.buildd-tmp2751945087": hidden, and never
// matching the target's own patterns (*.changes, *.deb). A process killed
// while writing leaves it behind; CleanTemp removes such leftovers.
type File struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// TempMarker is the part of a temporary file's name (see File) before
// its random digits.
const TempMarker = ".buildd-tmp"

// tempRE matches the names of File's temporary files; compiled on first
// use, not in every process's start-up.
var tempRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\..+` + regexp.QuoteMeta(TempMarker) + `[0-9]+$`)
})

// Create starts writing the replacement of path.
func Create(path string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+TempMarker+"*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &File{File: f, path: path, perm: perm}, nil
}

// Commit makes the written contents the file at the target path.
func (a *File) Commit() error {
	if a.done {
		return fmt.Errorf("write %s: already committed or aborted", a.path)
	}
	fail := func(err error) error {
		a.Abort()
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if err := a.Chmod(a.perm); err != nil {
		return fail(err)
	}
	if err := a.Sync(); err != nil {
		return fail(err)
	}
	if err := a.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(a.Name(), a.path); err != nil {
		return fail(err)
	}
	a.done = true
	return SyncDir(filepath.Dir(a.path))
}

// Abort drops the temporary file; after Commit it does nothing.
func (a *File) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.Close()
	os.Remove(a.Name())
}

// WriteFile replaces path with data (see File).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	a, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer a.Abort()
	if _, err := a.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return a.Commit()
}

// CopyFile replaces dst with a copy of src (see File). src must
// be a regular file itself: a symlink (even to a regular file), a
// directory, a FIFO or a device is refused, so nothing put in the source
// directory can make the copy read a file elsewhere or block.
func CopyFile(src, dst string, perm os.FileMode) error {
	// O_NONBLOCK: opening a FIFO does not wait for a writer; it has no
	// effect on the reads of a regular file.
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("copy %s: is a symbolic link, not a regular file", src)
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("copy %s: is %s, not a regular file", src, fileKind(st.Mode()))
	}
	a, err := Create(dst, perm)
	if err != nil {
		return err
	}
	defer a.Abort()
	if _, err := io.Copy(a, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return a.Commit()
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	}
	return "of type " + m.Type().String()
}

// CleanTemp removes from dir the temporary files of File (see there
// for the name) not modified for olderThan: those of a writer that was
// killed. A younger one may be a write in progress and is left alone, as
// is anything not a regular file (a symlink is not followed). dir itself is
// not descended into; a missing dir has nothing to clean. It returns the
// paths removed; the error names every file it could not remove.
func CleanTemp(dir string, olderThan time.Duration) (removed []string, err error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clean temporary files: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range ents {
		if !tempRE().MatchString(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || st.ModTime().After(cutoff) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("clean temporary files: %w", err))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

package home

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// AtomicFile is a file being written in place of another: it is written to
// a temporary file beside the target, and Commit fsyncs it, renames it over
// the target and fsyncs the directory, so readers see the old or the new
// contents and a crash loses neither. Abort (deferred) removes it unless
// it was committed.
type AtomicFile struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// CreateAtomic starts writing the replacement of path.
func CreateAtomic(path string, perm os.FileMode) (*AtomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &AtomicFile{File: f, path: path, perm: perm}, nil
}

// Commit makes the written contents the file at the target path.
func (a *AtomicFile) Commit() error {
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
func (a *AtomicFile) Abort() {
	if a.done {
		return
	}
	a.done = true
	a.Close()
	os.Remove(a.Name())
}

// WriteFileAtomic replaces path with data (see AtomicFile).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	a, err := CreateAtomic(path, perm)
	if err != nil {
		return err
	}
	defer a.Abort()
	if _, err := a.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return a.Commit()
}

// CopyFileAtomic replaces dst with a copy of src (see AtomicFile).
func CopyFileAtomic(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	a, err := CreateAtomic(dst, perm)
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

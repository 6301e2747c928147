package machine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"buildd/internal/atomicfile"
)

// CloneFile replaces dst by a copy of the regular file src made by a
// btrfs reflink (the two share their extents until one is written: no
// data is copied), with src's mode, owner and modification time, through
// atomicfile: for a file others read (the package cache, the shared
// lists). src is opened without following a symlink.
func CloneFile(src, dst string) error {
	in, fi, err := openRegular(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst, fi.Mode().Perm())
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := cloneTo(out.File, in, fi); err != nil {
		return fmt.Errorf("clone %s to %s: %w", src, dst, err)
	}
	if err := out.Commit(); err != nil {
		return err
	}
	return os.Chtimes(dst, time.Time{}, fi.ModTime())
}

// CloneNew makes dst, which must not exist, a reflink copy of src as
// CloneFile does, without its temporary file and syncs: for a tree that
// only its maker reads until it is complete (a working snapshot).
func CloneNew(src, dst string) error {
	in, fi, err := openRegular(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("clone %s: %w", src, err)
	}
	err = cloneTo(out, in, fi)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, time.Time{}, fi.ModTime())
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("clone %s to %s: %w", src, dst, err)
	}
	return nil
}

// openRegular opens src, which must be a regular file, without following
// a symlink.
func openRegular(src string) (*os.File, fs.FileInfo, error) {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("clone %s: %w", src, err)
	}
	fi, err := in.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if err != nil {
		in.Close()
		return nil, nil, fmt.Errorf("clone %s: %w", src, err)
	}
	return in, fi, nil
}

// cloneTo gives out in's extents, owner and mode.
func cloneTo(out, in *os.File, fi fs.FileInfo) error {
	if err := unix.IoctlFileClone(int(out.Fd()), int(in.Fd())); err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	if err := out.Chown(int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return out.Chmod(fi.Mode().Perm())
}

// CloneTree copies the contents of directory src into the existing
// directory dst: directories, regular files (by reflink, see CloneNew) and
// symlinks (as links, never followed), with modes, owners and times. Any
// other kind of file (a FIFO, a device, a socket) is an error: src may have
// been made by a build, and nothing but data is carried over.
func CloneTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("clone %s: %w", src, err)
		}
		if p == src {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("clone %s: %w", p, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, fi.Mode().Perm()); err != nil {
				return fmt.Errorf("clone %s: %w", p, err)
			}
			if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			return os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSetgid|fs.ModeSticky))
		case fi.Mode().IsRegular():
			return CloneNew(p, to)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err == nil {
				err = os.Symlink(target, to)
			}
			if err == nil {
				err = os.Lchown(to, int(st.Uid), int(st.Gid))
			}
			if err != nil {
				return fmt.Errorf("clone %s: %w", p, err)
			}
			return nil
		default:
			return fmt.Errorf("clone %s: not a directory, regular file or symlink (%s)", p, fi.Mode().Type())
		}
	})
}

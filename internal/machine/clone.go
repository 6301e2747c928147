package machine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CloneFile copies the regular file src to dst by a btrfs reflink (the two
// share their extents until one is written: no data is copied), keeping
// mode, owner and modification time. dst is written as a temporary file
// and renamed, so a reader never sees half of it. src is opened without
// following a symlink.
func CloneFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("clone %s: %w", src, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("clone %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("clone %s: not a regular file (%s)", src, fi.Mode().Type())
	}
	tmp := fmt.Sprintf("%s.clone-%d", dst, os.Getpid())
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("clone %s to %s: %w", src, dst, err)
	}
	err = unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
	if err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		err = out.Chown(int(st.Uid), int(st.Gid))
	}
	if err == nil {
		err = out.Chmod(fi.Mode().Perm())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, time.Time{}, fi.ModTime())
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("clone %s to %s: %w", src, dst, err)
	}
	return nil
}

// CloneTree copies the contents of directory src into the existing
// directory dst: directories, regular files (by reflink, see CloneFile) and
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
			return CloneFile(p, to)
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

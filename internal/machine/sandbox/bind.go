package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CheckBind reports whether the host directory dir can be bound read-only at
// the same path inside the tree root: dir must be absolute, clean, not /, and
// an existing directory on the host; inside root every component of the
// path must be a real directory (never a symlink, which could lead out of
// the tree) or not exist yet, and the last one must be missing or empty, so
// that the mount hides nothing of the tree.
func CheckBind(root, dir string) error {
	_, err := bindTarget(root, dir, false)
	return err
}

// bindTarget checks dir as CheckBind does and returns its path under root;
// with create it makes the missing directories (mode 0755, root's).
func bindTarget(root, dir string, create bool) (string, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return "", fmt.Errorf("bind %s: not an absolute, clean directory path other than /", dir)
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("bind %s: %w", dir, err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("bind %s: not a directory", dir)
	}
	p := root
	for _, elem := range strings.Split(dir[1:], "/") {
		p = filepath.Join(p, elem)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !create {
				return filepath.Join(root, dir), nil
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return "", fmt.Errorf("bind %s: %w", dir, err)
			}
		case err != nil:
			return "", fmt.Errorf("bind %s: %w", dir, err)
		case !fi.IsDir():
			return "", fmt.Errorf("bind %s: %s in the tree is not a directory (%s)", dir, p, fi.Mode().Type())
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("bind %s: %w", dir, err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("not empty: the mount would hide the tree's files")
		}
		return "", fmt.Errorf("bind %s: %s: %w", dir, p, err)
	}
	return p, nil
}

// bindReadOnly binds the host directory dir at the same path under root,
// read-only. Only dir itself is bound, not the mounts below it.
func bindReadOnly(root, dir string) error {
	target, err := bindTarget(root, dir, true)
	if err != nil {
		return err
	}
	if err := mount(mnt{dir, target, "", unix.MS_BIND, ""}); err != nil {
		return err
	}
	return mount(mnt{"", target, "", unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV, ""})
}

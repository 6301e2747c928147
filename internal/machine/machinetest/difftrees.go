package machinetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// DiffTrees compares two trees entry by entry: the same names, and for
// each its type, mode, owner, group, device number, modification time
// (but of directories), extended attributes, and a symlink's target or a
// file's bytes. It returns the differences, at most max of them.
func DiffTrees(a, b string, max int) ([]string, error) {
	var diffs []string
	add := func(f string, args ...any) {
		if len(diffs) < max {
			diffs = append(diffs, fmt.Sprintf(f, args...))
		}
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		seen[rel] = true
		q := filepath.Join(b, rel)
		if d := diffEntry(p, q); d != "" {
			add("/%s: %s", rel, d)
		}
		return nil
	})
	if err != nil {
		return diffs, err
	}
	err = filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b, p)
		if !seen[rel] {
			add("/%s: only in %s", rel, b)
		}
		return nil
	})
	return diffs, err
}

// diffEntry says how q differs from p, "" if it does not.
func diffEntry(p, q string) string {
	var sp, sq unix.Stat_t
	if err := unix.Lstat(p, &sp); err != nil {
		return err.Error()
	}
	if err := unix.Lstat(q, &sq); err != nil {
		return err.Error()
	}
	if sp.Mode != sq.Mode || sp.Uid != sq.Uid || sp.Gid != sq.Gid || sp.Rdev != sq.Rdev {
		return fmt.Sprintf("mode %o owner %d:%d dev %d, vs mode %o owner %d:%d dev %d",
			sp.Mode, sp.Uid, sp.Gid, sp.Rdev, sq.Mode, sq.Uid, sq.Gid, sq.Rdev)
	}
	if sp.Mode&unix.S_IFMT != unix.S_IFDIR && sp.Mtim != sq.Mtim {
		return fmt.Sprintf("modified %v vs %v", sp.Mtim, sq.Mtim)
	}
	if xp, xq := xattrs(p), xattrs(q); xp != xq {
		return fmt.Sprintf("xattrs %q vs %q", xp, xq)
	}
	switch sp.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		tp, _ := os.Readlink(p)
		tq, _ := os.Readlink(q)
		if tp != tq {
			return fmt.Sprintf("symlink to %q vs %q", tp, tq)
		}
	case unix.S_IFREG:
		dp, err := os.ReadFile(p)
		if err != nil {
			return err.Error()
		}
		dq, err := os.ReadFile(q)
		if err != nil {
			return err.Error()
		}
		if !bytes.Equal(dp, dq) {
			return "content differs"
		}
	}
	return ""
}

// xattrs is every extended attribute of p, sorted, "name=value;...".
func xattrs(p string) string {
	buf := make([]byte, 64*1024)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var out []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 64*1024)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			out = append(out, name+"=<"+err.Error()+">")
			continue
		}
		out = append(out, name+"="+string(v[:m]))
	}
	sort.Strings(out)
	return strings.Join(out, ";")
}

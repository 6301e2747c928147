package machine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/flock"
)

// What apt fetched, kept beside the revisions and shared by a machine's
// builds, outside every snapshot:
//
//	.apt-archives/           .deb files apt downloaded and verified, by apt's file name
//	.apt-lists/N-KEY/        the package lists of revision N for one set of sources (KEY):
//	    lists/               /var/lib/apt/lists
//	    cache/               /var/cache/apt/*.bin, made from them
//	    stamp                when they were fetched; written last
//	.apt-lists/N-KEY.lock    flock: shared while copied out, exclusive while refreshed
//
// Builds copy from them into their snapshot by reflink and back when apt
// fetched something new; a build never writes into them directly.
const (
	archivesName = ".apt-archives"
	listsName    = ".apt-lists"
	stampName    = "stamp"
)

// Tree paths of apt's lists and caches inside a machine.
const (
	TreeLists    = "var/lib/apt/lists"
	TreeArchives = "var/cache/apt/archives"
	treeAptCache = "var/cache/apt"
)

var listsRE = regexp.MustCompile(`^([0-9]+)-([0-9a-f]{16,64})(\.lock)?$`)

// PackageCache is machine name's directory of downloaded .deb files,
// made if missing.
func (s *Store) PackageCache(name string) (string, error) {
	d, err := s.machineDirOf(name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(d, archivesName)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", fmt.Errorf("machine %s: %w", name, err)
	}
	return p, nil
}

// EvictPackages deletes the least recently used files of machine name's
// package cache (by mtime, which a build touches on use) until they take at
// most budgetKiB. It returns how many it deleted.
func (s *Store) EvictPackages(name string, budgetKiB int64) (int, error) {
	dir, err := s.PackageCache(name)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("machine %s: %w", name, err)
	}
	type file struct {
		path string
		kib  int64
		used time.Time
	}
	var files []file
	var total int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		f := file{filepath.Join(dir, e.Name()), (fi.Size() + 1023) / 1024, fi.ModTime()}
		files = append(files, f)
		total += f.kib
	}
	sort.Slice(files, func(i, j int) bool { return files[i].used.Before(files[j].used) })
	n := 0
	for _, f := range files {
		if total <= budgetKiB {
			break
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, err
		}
		total -= f.kib
		n++
	}
	return n, nil
}

// Lists is one set of shared package lists: of one revision, for one set of
// sources.
type Lists struct {
	Dir string // .apt-lists/N-KEY
}

// OpenLists returns the shared lists of machine name's revision rev (NAME-N)
// for the sources hashed as key (16 to 64 hex digits).
func (s *Store) OpenLists(name, rev, key string) (*Lists, error) {
	d, err := s.machineDirOf(name)
	if err != nil {
		return nil, err
	}
	n, err := revisionOf(name, rev)
	if err != nil {
		return nil, err
	}
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("machine %s: lists key %q is not 16 to 64 hex digits", name, key)
	}
	l := &Lists{Dir: filepath.Join(d, listsName, fmt.Sprintf("%d-%s", n, key))}
	if err := os.MkdirAll(filepath.Dir(l.Dir), 0o755); err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	return l, nil
}

// Lock takes the lists' lock, shared to copy them out or exclusive to
// refresh them, waiting up to wait.
func (l *Lists) Lock(exclusive bool, wait time.Duration) (*flock.Lock, error) {
	mode := flock.Shared
	if exclusive {
		mode = flock.Exclusive
	}
	lk, err := flock.Acquire(l.Dir+lockSuffix, mode, 0o644, wait)
	if err != nil {
		return nil, fmt.Errorf("package lists %s: %w", l.Dir, err)
	}
	return lk, nil
}

// Fetched is when the lists were saved; zero if they are incomplete or
// missing.
func (l *Lists) Fetched() time.Time {
	data, err := os.ReadFile(filepath.Join(l.Dir, stampName))
	if err != nil {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}

// Save replaces the lists by those of the tree root (the files of
// /var/lib/apt/lists and apt's caches made from them), fetched at t. The
// caller holds the lock exclusively.
func (l *Lists) Save(root string, t time.Time) error {
	os.Remove(filepath.Join(l.Dir, stampName))
	for _, sub := range []struct{ dir, from string }{{"lists", TreeLists}, {"cache", treeAptCache}} {
		dst := filepath.Join(l.Dir, sub.dir)
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("package lists %s: %w", l.Dir, err)
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("package lists %s: %w", l.Dir, err)
		}
		if err := copyListFiles(filepath.Join(root, sub.from), dst, CloneFile); err != nil {
			return fmt.Errorf("package lists %s: %w", l.Dir, err)
		}
	}
	return atomicfile.WriteFile(filepath.Join(l.Dir, stampName), []byte(strconv.FormatInt(t.Unix(), 10)+"\n"), 0o644)
}

// Restore puts the lists into the tree root in place of its own. The
// caller holds the lock.
func (l *Lists) Restore(root string) error {
	return replaceLists(filepath.Join(l.Dir, "lists"), filepath.Join(l.Dir, "cache"), root)
}

// CopyLists puts the package lists and apt's caches of the tree from into
// the tree to in place of its own, as Restore does from the shared ones.
func CopyLists(from, to string) error {
	for _, dir := range []string{TreeLists, treeAptCache} {
		if err := DirInTree(from, dir); err != nil {
			return fmt.Errorf("package lists of %s: %w", from, err)
		}
	}
	return replaceLists(filepath.Join(from, TreeLists), filepath.Join(from, treeAptCache), to)
}

func replaceLists(lists, cache, root string) error {
	for _, sub := range []struct{ from, to string }{{lists, TreeLists}, {cache, treeAptCache}} {
		dst := filepath.Join(root, sub.to)
		if err := DirInTree(root, sub.to); err != nil {
			return fmt.Errorf("package lists into %s: %w", root, err)
		}
		if err := removeListFiles(dst); err != nil {
			return fmt.Errorf("package lists into %s: %w", root, err)
		}
		if err := copyListFiles(sub.from, dst, CloneNew); err != nil {
			return fmt.Errorf("package lists into %s: %w", root, err)
		}
	}
	return nil
}

// listFile is a file of apt's lists or caches: a regular file other than
// the lock, or a symlink (apt links the lists of a file: archive).
func listFile(e fs.DirEntry) bool {
	return (e.Type().IsRegular() || e.Type() == fs.ModeSymlink) && e.Name() != "lock"
}

// copyListFiles clones the list files of src into dst with clone
// (CloneFile into the shared lists, CloneNew into a snapshot).
func copyListFiles(src, dst string, clone func(src, dst string) error) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !listFile(e) {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.Type() == fs.ModeSymlink {
			target, err := os.Readlink(from)
			if err == nil {
				err = os.Symlink(target, to)
			}
			if err != nil {
				return err
			}
			continue
		}
		if err := clone(from, to); err != nil {
			return err
		}
	}
	return nil
}

func removeListFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if listFile(e) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// DirInTree checks that every component of dir inside the tree root is a
// directory, not a symlink that could lead out of the tree.
func DirInTree(root, dir string) error {
	p := root
	for _, elem := range strings.Split(strings.Trim(filepath.Clean("/"+dir), "/"), "/") {
		if elem == "" {
			continue
		}
		p = filepath.Join(p, elem)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (%s)", p, fi.Mode().Type())
		}
	}
	return nil
}

// cleanLists deletes the shared lists of revisions other than the current
// one cur; lists in use (their lock held) are left for a later run.
func cleanLists(d string, cur int) ([]string, error) {
	dir := filepath.Join(d, listsName)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, e := range ents {
		g := listsRE.FindStringSubmatch(e.Name())
		if g == nil || g[3] != "" || g[1] == strconv.Itoa(cur) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		lk, err := flock.Acquire(p+lockSuffix, flock.Exclusive, 0o644, 0)
		if err != nil {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			os.Remove(p + lockSuffix)
			deleted = append(deleted, p)
		}
		lk.Unlock()
	}
	return deleted, errors.Join(errs...)
}

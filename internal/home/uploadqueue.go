package home

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"buildd/internal/atomicfile"
)

// UploadQueue is an upload queue, the directory a dupload_local_queue_dir
// names. buildd-mail moves an approved build into it, buildd-uploader
// uploads from it, buildd-mail empties it when the archive has taken the
// upload, and buildd-watcher clears the leftovers of killed writers from
// it. An upload is NAME_VERSION_ARCH.changes (see ChangesName) with the
// files it lists beside it; once uploaded it also has its marker
// NAME_VERSION_ARCH.upload (see UploadMarker), which holds the upload
// tool's log. While the uploader has still to tell wanna-build of an upload
// (from just before the tool runs until every distribution's queue has it
// Uploaded) it also has NAME_VERSION_ARCH.untold (see UntoldMarker), which
// names the queues (DIST/ARCH) not told yet, so that a run killed or cut off
// from the queue in between is finished by the next. Uploads are added,
// listed and removed under the queue's lock, DIR.lock beside the
// directory, so that the uploader never sees one half added or half
// removed.
type UploadQueue struct{ dir string }

// UploadQueue is the upload queue q, a dupload_local_queue_dir: relative
// to the home, or absolute.
func (h Home) UploadQueue(q string) *UploadQueue { return &UploadQueue{dir: h.UploadDir(q)} }

// Dir is the queue's directory.
func (q *UploadQueue) Dir() string { return q.dir }

// Path is the path of the file name in the queue.
func (q *UploadQueue) Path(name string) string { return filepath.Join(q.dir, name) }

// UploadMarker is the name of the marker of the upload X.changes: X.upload.
func UploadMarker(changes string) string {
	return strings.TrimSuffix(changes, ".changes") + ".upload"
}

// UntoldMarker is the name of the "queue not yet told" marker of the
// upload X.changes: X.untold.
func UntoldMarker(changes string) string {
	return strings.TrimSuffix(changes, ".changes") + ".untold"
}

// checkNames refuses an upload whose names are not plain file names in
// the queue, or whose .changes is not named X.changes.
func (q *UploadQueue) checkNames(changes string, files []string) error {
	if !strings.HasSuffix(changes, ".changes") {
		return fmt.Errorf("upload queue %s: %q is not NAME.changes", q.dir, changes)
	}
	for _, n := range append([]string{changes}, files...) {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") {
			return fmt.Errorf("upload queue %s: %q is not a file name", q.dir, n)
		}
	}
	return nil
}

// Add puts an upload into the queue under its lock, making the directory
// (0750) if it is missing: each of files, copied from the directory from,
// then the .changes named changes, holding data. Each is written to a
// temporary name, fsynced and renamed (atomicfile), the .changes last, so
// the uploader never sees a .changes whose files are not all there.
func (q *UploadQueue) Add(from string, files []string, changes string, data []byte) error {
	if err := q.checkNames(changes, files); err != nil {
		return err
	}
	if err := os.MkdirAll(q.dir, 0o750); err != nil {
		return fmt.Errorf("upload queue: %w", err)
	}
	l, err := LockFile(q.dir, LockTimeout)
	if err != nil {
		return err
	}
	defer l.Unlock()
	for _, f := range files {
		if err := atomicfile.CopyFile(filepath.Join(from, f), q.Path(f), 0o644); err != nil {
			return fmt.Errorf("upload queue %s: add %s: %w", q.dir, changes, err)
		}
	}
	if err := atomicfile.WriteFile(q.Path(changes), data, 0o644); err != nil {
		return fmt.Errorf("upload queue %s: add %s: %w", q.dir, changes, err)
	}
	return nil
}

// Holds reports whether the queue's .changes named changes holds exactly
// data.
func (q *UploadQueue) Holds(changes string, data []byte) bool {
	b, err := os.ReadFile(q.Path(changes))
	return err == nil && bytes.Equal(b, data)
}

// Has reports whether the queue has the .changes named changes, as a
// regular file.
func (q *UploadQueue) Has(changes string) bool {
	st, err := os.Lstat(q.Path(changes))
	return err == nil && st.Mode().IsRegular()
}

// ReadChanges returns the contents of the queue's .changes named changes.
func (q *UploadQueue) ReadChanges(changes string) ([]byte, error) {
	return os.ReadFile(q.Path(changes))
}

// Uploaded reports whether the upload changes has its .upload marker.
func (q *UploadQueue) Uploaded(changes string) bool {
	_, err := os.Lstat(q.Path(UploadMarker(changes)))
	return err == nil
}

// Pending lists, sorted, the uploads of the queue that have no .upload
// marker: the regular, not hidden, *.changes files, read under the
// queue's lock. A queue whose directory does not exist is an error
// wrapping os.ErrNotExist, and its lock is not taken.
func (q *UploadQueue) Pending() ([]string, error) {
	return q.list(".changes", q.Uploaded)
}

// list lists, sorted, the uploads (their .changes names) of the queue that
// have a regular, not hidden, file named *ext, leaving out those for which
// skip is true, under the queue's lock; an error wrapping os.ErrNotExist,
// the lock not taken, when the queue's directory does not exist.
func (q *UploadQueue) list(ext string, skip func(changes string) bool) ([]string, error) {
	if _, err := os.Stat(q.dir); err != nil {
		return nil, err
	}
	l, err := LockFile(q.dir, LockTimeout)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ext) || strings.HasPrefix(n, ".") || !e.Type().IsRegular() {
			continue
		}
		if changes := strings.TrimSuffix(n, ext) + ".changes"; !skip(changes) {
			out = append(out, changes)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Mark writes the marker of the upload changes, holding text (the upload
// tool's log), atomically. Only buildd-uploader marks uploads, one run at
// a time, so it takes no queue lock.
func (q *UploadQueue) Mark(changes, text string) error {
	return atomicfile.WriteFile(q.Path(UploadMarker(changes)), []byte(text), 0o644)
}

// Unmark removes the marker of the upload changes, so that it is uploaded
// again.
func (q *UploadQueue) Unmark(changes string) error {
	return os.Remove(q.Path(UploadMarker(changes)))
}

// SetUntold writes the "queue not yet told" marker of the upload changes
// (see UntoldMarker), naming dists, the queues whose wanna-build has still
// to be told that it was uploaded, DIST/ARCH (see JoinDistArch), one a
// line, atomically. Only buildd-uploader writes it, one run at a time, so
// it takes no queue lock. With no dists there is nothing left to tell:
// the marker is removed (RemoveUntold).
func (q *UploadQueue) SetUntold(changes string, dists []string) error {
	if len(dists) == 0 {
		return q.RemoveUntold(changes)
	}
	path := q.Path(UntoldMarker(changes))
	for _, d := range dists {
		if !validDist(d) {
			return fmt.Errorf("write %s: %q is not DIST/ARCH", path, d)
		}
	}
	return atomicfile.WriteFile(path, []byte(strings.Join(dists, "\n")+"\n"), 0o644)
}

// ReadUntold returns the queues the "queue not yet told" marker of the
// upload changes names: DIST/ARCH, or DIST alone in a marker written
// before markers named the architecture (see SplitDistArch). A missing
// marker is an error wrapping os.ErrNotExist; one that is not a regular
// file, is empty, is not whole lines or holds a line that is neither is
// damaged: an error naming it.
func (q *UploadQueue) ReadUntold(changes string) ([]string, error) {
	path := q.Path(UntoldMarker(changes))
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("damaged %s: not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text, whole := strings.CutSuffix(string(b), "\n")
	if !whole {
		return nil, fmt.Errorf("damaged %s: not one distribution name a line", path)
	}
	dists := strings.Split(text, "\n")
	for _, d := range dists {
		if !validDist(d) {
			return nil, fmt.Errorf("damaged %s: %q is not DIST/ARCH", path, d)
		}
	}
	return dists, nil
}

// validDist reports whether d can be a line of a "queue not yet told"
// marker: DIST/ARCH or DIST, UTF-8 with no blank or control character.
func validDist(d string) bool {
	_, _, err := SplitDistArch(d)
	return err == nil && utf8.ValidString(d) && !strings.ContainsFunc(d, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// RemoveUntold removes the "queue not yet told" marker of the upload
// changes, durably; one already gone is no error.
func (q *UploadQueue) RemoveUntold(changes string) error {
	if err := os.Remove(q.Path(UntoldMarker(changes))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(q.dir)
}

// Untold lists, sorted, the uploads (their .changes names) of the queue
// that have a "queue not yet told" marker: the regular, not hidden,
// *.untold files, read under the queue's lock. A queue whose directory does
// not exist is an error wrapping os.ErrNotExist, and its lock is not taken.
func (q *UploadQueue) Untold() ([]string, error) {
	return q.list(".untold", func(string) bool { return false })
}

// AdoptToolLog makes dput's own upload log of changes (X.HOST.upload, HOST
// the target, any host when target is "") its marker X.upload, so that the
// queue holds only what leaves it when the archive takes the upload.
func (q *UploadQueue) AdoptToolLog(changes, target string) error {
	base := strings.TrimSuffix(changes, ".changes") + "."
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		host, ok := strings.CutPrefix(e.Name(), base)
		if !ok || !strings.HasSuffix(host, ".upload") || host == "upload" {
			continue
		}
		if target == "" || host == target+".upload" {
			return os.Rename(q.Path(e.Name()), q.Path(UploadMarker(changes)))
		}
	}
	return nil
}

// Remove deletes the upload changes from the queue under its lock: files
// (the files its .changes lists), the .changes and its markers (.upload,
// and .untold: the archive has the upload, and merging the archive's
// index sets it Installed in wanna-build whatever it was told); names
// already gone are passed over. A file that cannot be removed does not
// stop the others: its error comes back in failed. err is a failure to
// lock the queue or to make the removals durable.
func (q *UploadQueue) Remove(changes string, files []string) (failed []error, err error) {
	if err := q.checkNames(changes, files); err != nil {
		return nil, err
	}
	l, err := LockFile(q.dir, LockTimeout)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	for _, f := range append(slices.Clone(files), changes, UploadMarker(changes), UntoldMarker(changes)) {
		if err := os.Remove(q.Path(f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			failed = append(failed, err)
		}
	}
	return failed, atomicfile.SyncDir(q.dir)
}

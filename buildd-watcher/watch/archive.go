package watch

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"buildd/internal/atomicfile"
)

// ArchiveSet is one classic archive_logs call: files of Dir (relative to
// home) matching Pattern, older than Keep days, go into
// old-logs/PREFIX-FIRST-LAST.tar.gz; Index also writes the list of names
// beside it as .index.
type ArchiveSet struct {
	Dir, Pattern, Prefix string
	Keep                 int
	Index                bool
}

// archiveSets are the three classic sets: package logs, build logs,
// compressed daemon logs.
func (w *Watcher) archiveSets() []ArchiveSet {
	return []ArchiveSet{
		{Dir: "logs", Pattern: "*", Prefix: "plog", Keep: w.Cfg.PkgLogKeep, Index: true},
		{Dir: "build", Pattern: "build-*.log", Prefix: "blog", Keep: w.Cfg.BuildLogKeep},
		{Dir: "old-logs", Pattern: "daemon-*.log.gz", Prefix: "dlog", Keep: w.Cfg.DaemonLogKeep},
	}
}

// Archive runs one set, at most every Keep days (the stamp
// old-logs/PREFIX-stamp). The archive is written with archive/tar and
// compress/gzip to a temporary file, synced and renamed into place; only
// then are the files deleted. It returns the archive's path, "" when
// nothing was due.
func (w *Watcher) Archive(a ArchiveSet) (string, error) {
	keep := time.Duration(a.Keep) * day
	due, err := w.stampDue(w.Home.Path("old-logs", a.Prefix+"-stamp"), keep)
	if err != nil || !due {
		return "", err
	}
	dir := w.Home.Path(a.Dir)
	matches, err := filepath.Glob(filepath.Join(dir, a.Pattern))
	if err != nil {
		return "", err
	}
	cutoff := time.Now().Add(-keep)
	var todo []string
	var oldest, newest time.Time
	for _, m := range matches {
		st, err := os.Lstat(m)
		if err != nil || !st.Mode().IsRegular() || hidden(st.Name()) || st.ModTime().After(cutoff) {
			continue
		}
		todo = append(todo, st.Name())
		if oldest.IsZero() || st.ModTime().Before(oldest) {
			oldest = st.ModTime()
		}
		if st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	if len(todo) == 0 {
		w.Log.Printf("Archiving logs in %s: no files to archive", a.Dir)
		return "", nil
	}
	sort.Strings(todo)
	base := w.freeName(fmt.Sprintf("%s-%s-%s", a.Prefix, formatTime(oldest), formatTime(newest)))
	archive := w.Home.Path("old-logs", base+".tar.gz")
	if err := writeTarGz(archive, dir, todo); err != nil {
		return "", err
	}
	if a.Index {
		index := w.Home.Path("old-logs", base+".index")
		if err := atomicfile.WriteFile(index, []byte(strings.Join(todo, "\n")+"\n"), 0o644); err != nil {
			return "", err
		}
	}
	var errs []string
	for _, f := range todo {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	w.Log.Printf("Archived %d files from %s to %s in %s", len(todo), formatTime(oldest), formatTime(newest), archive)
	return archive, joinErrs(errs)
}

// freeName returns base, or base with "-N" appended, so that no archive of
// old-logs/ is overwritten.
func (w *Watcher) freeName(base string) string {
	name := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(w.Home.Path("old-logs", name+".tar.gz")); os.IsNotExist(err) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, n)
	}
}

// writeTarGz writes the named files of dir, by their base names, into a
// gzip-compressed tar at path (see writeGzipAtomic).
func writeTarGz(path, dir string, names []string) error {
	return writeGzipAtomic(path, 0o644, "", time.Time{}, func(gz io.Writer) error {
		tw := tar.NewWriter(gz)
		for _, n := range names {
			if err := addFile(tw, filepath.Join(dir, n), n); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
		if err := tw.Close(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	})
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr, err := tar.FileInfoHeader(st, "")
	if err != nil {
		return err
	}
	hdr.Name = name
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// The header promised st.Size() bytes: a log still growing is cut there.
	if _, err := io.Copy(tw, io.LimitReader(f, st.Size())); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

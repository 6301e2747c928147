package watch

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/home"
)

// OldFiles warns the admin about entries of build/ and of the upload
// queues not changed for warning_age days (a directory: nothing in it
// changed), except those whose home-relative name matches no_warn_pattern.
// reported-old-files remembers when each was reported; a file is reported
// again only warning_age days later. It returns the names mailed.
func (w *Watcher) OldFiles() ([]string, error) {
	age := time.Duration(w.Cfg.WarningAge) * day
	cutoff := time.Now().Add(-age)
	seen := map[[2]uint64]string{}
	var errs []string
	add := func(rel string, dirAsTree bool) {
		p := w.abs(rel)
		st, err := os.Lstat(p)
		if err != nil {
			return
		}
		newest := st.ModTime()
		if st.IsDir() && dirAsTree {
			newest, err = newestIn(p)
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
		}
		if newest.After(cutoff) {
			return
		}
		sys := st.Sys().(*syscall.Stat_t)
		seen[[2]uint64{sys.Dev, sys.Ino}] = rel
	}
	for _, q := range w.queueDirs() {
		ents, err := os.ReadDir(w.Home.UploadQueue(q).Dir())
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !hidden(e.Name()) {
				add(filepath.Join(q, e.Name()), false)
			}
		}
	}
	ents, err := os.ReadDir(w.Home.BuildDir())
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !hidden(e.Name()) && !strings.HasPrefix(e.Name(), "chroot-") && !slices.Contains(home.StateFiles, e.Name()) {
			add(filepath.Join("build", e.Name()), true)
		}
	}
	noWarn := regexp.MustCompile(w.Cfg.NoWarnPattern)
	var warn []string
	for _, rel := range seen {
		if !noWarn.MatchString(rel) {
			warn = append(warn, rel)
		}
	}
	sort.Strings(warn)
	if len(warn) == 0 {
		return nil, joinErrs(errs)
	}
	do, err := w.reportOld(warn, age)
	if err != nil {
		return nil, err
	}
	if len(do) > 0 {
		w.mail(w.Cfg.AdminMail, "buildd-watcher found some old files",
			"buildd-watcher has found some old files or directories in\n"+
				"~buildd/upload and/or ~buildd/build. Those are:\n\n  "+
				strings.Join(do, "\n  ")+"\n\n"+
				"Please have a look at them and remove them if they're obsolete.\n")
	}
	return do, joinErrs(errs)
}

// reportOld updates reported-old-files and returns the names due for a
// warning: never reported, or reported at least age ago.
func (w *Watcher) reportOld(warn []string, age time.Duration) ([]string, error) {
	path := w.Home.Path("reported-old-files")
	lock, err := home.LockFile(path, home.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	reported := map[string]int64{}
	if b, err := os.ReadFile(path); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue
			}
			if t, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				reported[f[0]] = t
			}
		}
	}
	now := time.Now().Unix()
	var do []string
	for _, rel := range warn {
		if t, ok := reported[rel]; !ok || now-t >= int64(age/time.Second) {
			do = append(do, rel)
			reported[rel] = now
		}
	}
	var names []string
	for rel := range reported {
		if _, err := os.Lstat(w.abs(rel)); err == nil {
			names = append(names, rel)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, rel := range names {
		fmt.Fprintf(&b, "%s %d\n", rel, reported[rel])
	}
	return do, atomicfile.WriteFile(path, []byte(b.String()), 0o660)
}

// queueDirs are the upload queue directories of the config, as given
// (relative to home, or absolute), without repeats.
func (w *Watcher) queueDirs() []string {
	var out []string
	seen := map[string]bool{}
	add := func(q string) {
		if q != "" && !seen[q] {
			seen[q] = true
			out = append(out, q)
		}
	}
	for _, q := range w.Cfg.UploadQueues {
		add(q.DuploadLocalQueueDir)
	}
	for _, d := range w.Cfg.Dists {
		add(d.DuploadLocalQueueDir)
	}
	return out
}

// abs is the path of a name relative to home (or already absolute).
func (w *Watcher) abs(rel string) string {
	if filepath.IsAbs(rel) {
		return rel
	}
	return w.Home.Path(rel)
}

// newestIn is the newest modification time of dir and everything in it.
func newestIn(dir string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	return newest, err
}

// hidden names are temporary files and our lock files, never reported.
func hidden(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".lock")
}

func joinErrs(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}

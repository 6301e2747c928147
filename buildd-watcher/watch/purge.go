package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Purge deletes the directories listed in build/PURGE. A line is taken
// relative to home, symlinks and ".." resolved; what does not then lie
// strictly inside home's build/ is refused, reported by mail and dropped
// from PURGE, and nothing is deleted for it. A line naming nothing is
// dropped; a directory that cannot be deleted stays in PURGE for the next
// run.
func (w *Watcher) Purge() (purged, refused []string, err error) {
	build, err := filepath.EvalSymlinks(w.Home.BuildDir())
	if err != nil {
		return nil, nil, err
	}
	var failed []string
	err = w.Home.Purge().Drain(func(line string) error {
		dir, why := purgeTarget(w.Home.Dir, build, strings.TrimSpace(line))
		switch {
		case why != "":
			refused = append(refused, fmt.Sprintf("%q: %s", line, why))
			return nil
		case dir == "":
			return nil
		}
		if err := os.RemoveAll(dir); err != nil {
			failed = append(failed, err.Error())
			return err
		}
		w.Log.Printf("Purged %s", dir)
		purged = append(purged, dir)
		return nil
	})
	if len(refused) > 0 {
		w.Log.Printf("refused to purge, outside %s: %s", build, strings.Join(refused, "; "))
		w.mail(w.Cfg.AdminMail, "buildd-watcher refused to purge",
			"buildd-watcher deletes only directories inside "+build+".\n"+
				"These lines of build/PURGE point elsewhere; nothing was deleted for them\n"+
				"and they were removed from build/PURGE:\n\n  "+strings.Join(refused, "\n  ")+"\n")
	}
	if err == nil && len(failed) > 0 {
		err = errors.New(strings.Join(failed, "; ") + " (kept in build/PURGE)")
	}
	return purged, refused, err
}

// purgeTarget resolves a PURGE line to the directory to delete. why says
// why it is refused; dir is "" (and why "") when there is nothing to do.
func purgeTarget(homeDir, build, line string) (dir, why string) {
	if line == "" {
		return "", ""
	}
	p := line
	if !filepath.IsAbs(p) {
		p = filepath.Join(homeDir, p)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		if c := filepath.Clean(p); !inside(build, c) && !inside(filepath.Join(homeDir, "build"), c) {
			return "", "not inside the build directory"
		}
		return "", ""
	}
	if err != nil {
		return "", err.Error()
	}
	if !inside(build, resolved) {
		return "", fmt.Sprintf("resolves to %s, not inside the build directory", resolved)
	}
	st, err := os.Lstat(resolved)
	if err != nil {
		return "", err.Error()
	}
	if !st.IsDir() {
		return "", fmt.Sprintf("%s is not a directory", resolved)
	}
	return resolved, ""
}

// inside reports whether the clean path p lies strictly below base.
func inside(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}

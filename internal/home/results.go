package home

import (
	"errors"
	"os"
	"path/filepath"

	"buildd/internal/control"
)

// RemoveBuild removes a build's results from build/: the .changes named
// changes and the files it lists. It reports whether there was such a
// .changes; one that cannot be read or parsed is removed alone, and the
// error says why. Files already gone are passed over.
func (h Home) RemoveBuild(changes string) (bool, error) {
	path := filepath.Join(h.BuildDir(), changes)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	var errs []error
	var c *control.Changes
	if err == nil {
		c, err = control.ParseChanges(path, data)
	}
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, f := range c.Files {
			if err := os.Remove(filepath.Join(h.BuildDir(), f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return true, errors.Join(errs...)
}

package watch

import (
	"errors"
	"time"

	"buildd/internal/atomicfile"
)

// TempAge is how long a temporary file of an atomic write (see
// atomicfile.File) stays untouched before it is taken for the leftover of
// a killed writer: far longer than any write takes.
const TempAge = time.Hour

// CleanTemp removes the leftover temporary files of atomic writes (older
// than TempAge) from build/ and every upload queue directory, logging each
// one. It returns the paths removed.
func (w *Watcher) CleanTemp() ([]string, error) {
	var removed []string
	var errs []error
	dirs := []string{w.Home.BuildDir()}
	for _, q := range w.queueDirs() {
		dirs = append(dirs, w.Home.UploadQueue(q).Dir())
	}
	for _, dir := range dirs {
		gone, err := atomicfile.CleanTemp(dir, TempAge)
		for _, p := range gone {
			w.Log.Printf("Removed stale temporary file %s", p)
		}
		removed = append(removed, gone...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

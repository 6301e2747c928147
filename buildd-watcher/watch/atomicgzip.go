package watch

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"time"

	"buildd/internal/atomicfile"
)

// writeGzipAtomic replaces path with a gzip stream at the best compression
// of what fill writes (atomicfile: temporary file, fsync, rename), so a
// reader or a crash never sees half an archive. name and modTime go into
// the gzip header (empty and zero: none). When fill fails nothing is
// written and its error is returned as it is.
func writeGzipAtomic(path string, perm os.FileMode, name string, modTime time.Time, fill func(io.Writer) error) error {
	out, err := atomicfile.Create(path, perm)
	if err != nil {
		return err
	}
	defer out.Abort()
	gz, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	if err != nil {
		return err
	}
	gz.Name, gz.ModTime = name, modTime
	if err := fill(gz); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return out.Commit()
}

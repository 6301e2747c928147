package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"buildd/buildd/build"
	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/queue"
)

// Log delivery: every finished build's log goes to the queue's log store
// (the status web's), through the same path as the dist's queue calls
// (local store, ssh wanna-build --put-log, or PostgreSQL). finish puts the
// compressed log into HOME/log-spool first; each round (and the end of
// --once) delivers what the spool holds and removes an entry only once the
// store has confirmed it, so a queue that cannot be reached loses nothing:
// its logs wait for the next round.

// LogSpoolDir is the spool under home.
const LogSpoolDir = "log-spool"

// badSuffix marks a spool file that is not understood: it is left for
// the admin and not tried again.
const badSuffix = ".bad"

// spoolEntry is the first line of a spool file, as JSON; the gzip stream
// of the log follows it. An entry spooled before entries carried the
// architecture has none: it is of its dist's only architecture here.
type spoolEntry struct {
	Dist    string `json:"dist"`
	Arch    string `json:"arch,omitempty"`
	Package string `json:"package"`
	Version string `json:"version"`
	Time    int64  `json:"time"`
	Status  string `json:"status"`
	Expires int64  `json:"expires"`
}

func (d *Daemon) logSpool() string { return d.home.Path(LogSpoolDir) }

// spoolLog puts the log of the ended job j, built for dist, into the
// spool (temporary file, then rename), compressed, to be delivered by
// DeliverLogs. A job without a log, or whose log is too large for the
// store (it stays in logs/), has nothing to spool; an error is worth
// trying again.
func (d *Daemon) spoolLog(c *config.Config, dist *config.Dist, j *job, status build.Status) error {
	pv := debversion.SplitPkgVersion(subjectPkgv(j.entry))
	f, err := os.Open(j.LogPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		return nil
	}
	end := time.Now()
	e := spoolEntry{Dist: dist.DistName, Arch: dist.BuiltArchitecture, Package: pv.Name, Version: pv.Version, Time: end.Unix(), Status: string(status),
		Expires: end.Add(time.Duration(c.LogKeep) * 24 * time.Hour).Unix()}
	err = d.writeSpool(e, f, st.Size())
	if errors.Is(err, queue.ErrLogTooLarge) {
		d.log.Printf("Log of %s %s not spooled for the log store: %v", pv, on(dist), err)
		return nil
	}
	return err
}

func (d *Daemon) writeSpool(e spoolEntry, log io.ReaderAt, size int64) error {
	if err := os.MkdirAll(d.logSpool(), 0o755); err != nil {
		return err
	}
	name := filepath.Join(d.logSpool(), fmt.Sprintf("%s_%s_%d_%s_%s", e.Package, e.Version, e.Time, e.Dist, e.Arch))
	out, err := atomicfile.Create(name, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	head, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := out.Write(append(head, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := queue.CompressLog(out, log, size); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if st, err := out.Stat(); err == nil && st.Size() > queue.MaxLogGzip+int64(len(head))+1 {
		return fmt.Errorf("%w: %d bytes compressed, the log store takes at most %d (the log stays in logs/)", queue.ErrLogTooLarge, st.Size(), queue.MaxLogGzip)
	}
	return out.Commit()
}

// DeliverLogs delivers the spooled logs to the log stores of their dists
// and architectures and removes each one the store confirmed. A queue
// whose store fails keeps the rest of its logs for the next round. The temporary files of a
// spooling that a kill interrupted go once they are an hour old.
func (d *Daemon) DeliverLogs(ctx context.Context) {
	c := d.config()
	if _, err := atomicfile.CleanTemp(d.logSpool(), time.Hour); err != nil {
		d.log.Printf("%s: %v", d.logSpool(), err)
	}
	ents, err := os.ReadDir(d.logSpool())
	if err != nil {
		if !os.IsNotExist(err) {
			d.log.Printf("Can't read %s: %v", d.logSpool(), err)
		}
		return
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), badSuffix) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	failed := map[string]error{}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		path := filepath.Join(d.logSpool(), name)
		err := d.deliver(ctx, c, path, failed)
		if err == nil {
			if err := os.Remove(path); err != nil {
				d.log.Printf("Can't remove %s: %v", path, err)
			}
		}
	}
	for where, err := range failed {
		d.log.Printf("Logs of %s wait in %s: %v", where, d.logSpool(), err)
	}
}

// deliver sends one spool file to the log store of its dist and arch;
// failed holds the queues (DIST/ARCH, or DIST for an entry without its
// arch) whose store failed this round (their logs are not tried again).
// An entry naming a dist without its architecture, which the host builds
// for several, can go to none: it is renamed as not understood.
func (d *Daemon) deliver(ctx context.Context, c *config.Config, path string, failed map[string]error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	head, err := r.ReadBytes('\n')
	var e spoolEntry
	if err == nil {
		err = json.Unmarshal(head, &e)
	}
	var dist *config.Dist
	if err == nil {
		dist, err = c.Resolve(e.Dist, e.Arch)
		if err != nil && (e.Arch != "" || len(c.Arches(e.Dist)) < 2) {
			// The dist (or arch) is not built here now: kept for a
			// config that has it again.
			where := home.JoinDistArch(e.Dist, e.Arch)
			failed[where] = err
			return err
		}
	}
	if err != nil {
		d.log.Printf("Spooled log %s not understood, renamed %s%s for the admin: %v", path, path, badSuffix, err)
		if err := os.Rename(path, path+badSuffix); err != nil {
			d.log.Printf("%v", err)
		}
		return err
	}
	if err := failed[dist.Where()]; err != nil {
		return err
	}
	l := queue.BuildLog{Package: e.Package, Version: e.Version, Time: e.Time, Status: queue.Outcome(e.Status), Expires: e.Expires}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := d.queue(c, dist).PutLog(qctx, l, r); err != nil {
		failed[dist.Where()] = err
		return err
	}
	d.log.Printf("Log of %s %s delivered to the log store", l.PkgVersion(), on(dist))
	return nil
}

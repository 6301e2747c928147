// Package home owns the build user's home directory and the classic files in
// it that several programs share: build/REDO, build/SBUILD-GIVEN-BACK,
// build/PURGE, build/buildd.pid, outdated-packages, the NO-DAEMON-PLEASE and
// EXIT-DAEMON-PLEASE flags, the upload queues (UploadQueue), the counters
// and summaries of stats/ (Stats), and the FILE.lock locks that guard them
// (a flock, see package flock, with a note of its holder). It owns only the
// home's files: how a file is replaced and how it is locked are the
// packages atomicfile and flock.
//
// Every file here that another program reads is rewritten whole, with
// atomicfile, under the file's lock: a crash leaves either the old or the
// new contents, never a mix.
package home

import (
	"os"
	"path/filepath"
)

// Home is a buildd home directory (~buildd).
type Home struct {
	Dir string
}

// New returns the home at dir.
func New(dir string) Home { return Home{Dir: dir} }

// Path joins elements under the home directory.
func (h Home) Path(elem ...string) string {
	return filepath.Join(append([]string{h.Dir}, elem...)...)
}

// Well-known places, as the classic suite names them.
func (h Home) BuildDir() string   { return h.Path("build") }
func (h Home) LogsDir() string    { return h.Path("logs") }
func (h Home) OldLogsDir() string { return h.Path("old-logs") }
func (h Home) StatsDir() string   { return h.Path("stats") }
func (h Home) MQueueDir() string  { return h.Path("mqueue") }
func (h Home) UploadDir(q string) string {
	if filepath.IsAbs(q) {
		return q
	}
	return h.Path(q)
}

// Flag files.
const (
	NoDaemonPlease   = "NO-DAEMON-PLEASE"
	ExitDaemonPlease = "EXIT-DAEMON-PLEASE"
	// HoldBuilds is set by the host monitor when it finds something on the
	// machines volume it does not understand; buildd starts no new build
	// while it exists.
	HoldBuilds = "HOLD-BUILDS"
)

// Flag reports whether the flag file name exists in the home directory.
func (h Home) Flag(name string) bool {
	_, err := os.Stat(h.Path(name))
	return err == nil
}

// Init creates the directories every program expects.
func (h Home) Init() error {
	for _, d := range []string{h.BuildDir(), h.LogsDir(), h.OldLogsDir(), h.StatsDir(), h.MQueueDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// StateFiles are the names of the suite's own state files in build/
// (REDO, BUILDING, FINISHED, QUARANTINE, INFRA-FAILURES, SKIP, PURGE and
// the default pid file): old when nothing happened, never leftovers of a
// build.
var StateFiles = []string{"REDO", "BUILDING", "FINISHED", "QUARANTINE", "INFRA-FAILURES", "SKIP", "PURGE", "buildd.pid"}

// REDO is build/REDO.
func (h Home) REDO() *REDOFile { return &REDOFile{path: h.Path("build", "REDO")} }

// Building is build/BUILDING: the jobs buildd is running, in REDO's
// format. buildd adds a line when a build starts and removes it when
// everyone knows the build's end (see Finished); lines left by a crash
// whose build had not ended go back to REDO when buildd starts again.
func (h Home) Building() *REDOFile { return &REDOFile{path: h.Path("build", "BUILDING")} }

// Skip is build/SKIP.
func (h Home) Skip() *SkipFile { return &SkipFile{path: h.Path("build", "SKIP")} }

// Purge is build/PURGE.
func (h Home) Purge() *PurgeFile { return &PurgeFile{path: h.Path("build", "PURGE")} }

// Outdated is outdated-packages.
func (h Home) Outdated() *OutdatedFile {
	return &OutdatedFile{path: h.Path("outdated-packages")}
}

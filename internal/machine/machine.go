// Package machine owns the build machines under machines_dir: one btrfs
// filesystem holding, per machine NAME, a directory
//
//	NAME/
//	├── .buildd-machine          marker: this directory is a machine of ours
//	├── current -> NAME-2        the revision in effect, switched atomically
//	├── NAME-1/                  read-only revision subvolumes
//	├── NAME-2/
//	├── .new-3/                  a revision being made (create, import, upgrade)
//	├── .recv-3/NAME-7/          a revision being received (send.go)
//	├── work-2-4711-1718000000-hello_1.0-1/       a build's working snapshot
//	├── work-2-4711-1718000000-hello_1.0-1.lock   flock held by its owner
//	├── layer-2-KEY/             a revision with build-dependencies installed (layer.go)
//	├── .apt-archives/ .apt-lists/   apt's downloads, shared by the builds (aptcache.go)
//	├── .admin.lock              held by create/import/upgrade/delete
//	└── .revisions.lock          taking snapshots (shared) vs deleting revisions
//
// A working snapshot is named work-REV-PID-UNIXTIME-JOB: the revision it was
// taken from, the owning process, when, and the job. Its owner holds an
// flock on the .lock file beside it for the snapshot's whole life; the kernel
// drops it when the owner dies, however it dies, so a working snapshot whose
// lock is free is a stray, and Clean deletes it.
//
// The procedures follow the Build OS machine layout: a revision is made as
// .new-N, made read-only, renamed NAME-N, and made current by a new symlink
// renamed over current; an old revision is deleted once no working snapshot
// uses it (but the newest one before current, the parent of the next
// incremental send); a machine is deleted by removing current, waiting for its working
// snapshots to go, deleting its revisions and then the directory.
package machine

import (
	"errors"
	"fmt"
	"io"
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

// Names in a machine directory.
const (
	markerName    = ".buildd-machine"
	currentName   = "current"
	currentNew    = "current.new"
	adminLock     = ".admin.lock"
	revisionsLock = ".revisions.lock"
	newPrefix     = ".new-"
	workPrefix    = "work-"
	lockSuffix    = ".lock"
)

// revisionsWait is how long a change to the revisions, or a new working
// snapshot, waits for the revisions lock.
const revisionsWait = time.Minute

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]*$`)
	newRE  = regexp.MustCompile(`^\.new-([0-9]+)$`)
	workRE = regexp.MustCompile(`^work-([0-9]+)-([0-9]+)-([0-9]+)-([A-Za-z0-9.+~_-]+)$`)
	jobBad = regexp.MustCompile(`[^A-Za-z0-9.+~_-]`)
)

// Store is a machines_dir.
type Store struct {
	Dir string
	// Log receives the output of the commands run by Create, Import and
	// Upgrade (debootstrap, apt-get, tar); nil discards it.
	Log io.Writer
}

// Machine is one machine as List sees it.
type Machine struct {
	Name      string
	Dist      string // from the marker, "" if unknown
	Arch      string // the architecture of its programs
	Cross     string // the architecture it cross-builds for; "" for a native machine
	Emulated  bool   // its programs run through qemu-user on this host
	Current   string // revision name current points at; "" if none
	Revisions []Revision
	Layers    []Layer // least recently used first
	Working   []WorkingInfo
}

// Revision is one NAME-N subvolume.
type Revision struct {
	Name     string
	Number   int
	ReadOnly bool
	Current  bool
	// UUID names the revision across the fleet: the btrfs UUID of the
	// subvolume it was made as, which a host that received it by push
	// holds as its received UUID; the same on every host.
	UUID string
	// Received reports whether it came by receive rather than being made here.
	Received bool
	Made     time.Time // when this host made or received it
}

// WorkingInfo describes one working snapshot.
type WorkingInfo struct {
	Name     string
	Path     string
	Revision int
	PID      int
	Started  time.Time
	Job      string
	Live     bool // its owner holds the lock; false: a stray, for Clean
}

// Open returns the store at dir, which must be a directory on btrfs.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("machines_dir %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("machines_dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("machines_dir %s: not a directory", dir)
	}
	ok, err := onBtrfs(abs)
	if err != nil {
		return nil, fmt.Errorf("machines_dir %s: statfs: %w", dir, err)
	}
	if !ok {
		return nil, fmt.Errorf("machines_dir %s: not on a btrfs filesystem (build machines need btrfs snapshots)", dir)
	}
	return &Store{Dir: abs}, nil
}

func (s *Store) log() io.Writer {
	if s.Log == nil {
		return io.Discard
	}
	return s.Log
}

func (s *Store) machineDir(name string) string { return filepath.Join(s.Dir, name) }

func checkName(name string) error {
	if !nameRE.MatchString(name) || name == currentName {
		return fmt.Errorf("machine name %q: use letters, digits and . + _ -", name)
	}
	return nil
}

// revisionNumber parses NAME-N.
func revisionNumber(machine, entry string) (int, bool) {
	rest, ok := strings.CutPrefix(entry, machine+"-")
	if !ok || rest == "" {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// machineDirOf checks that name is one of our machines and returns its directory.
func (s *Store) machineDirOf(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	d := s.machineDir(name)
	if _, err := os.Stat(filepath.Join(d, markerName)); err != nil {
		if _, err2 := os.Stat(d); err2 == nil {
			return "", fmt.Errorf("machine %s: %s is not a buildd machine (no %s)", name, d, markerName)
		}
		return "", fmt.Errorf("machine %s: no such machine in %s", name, s.Dir)
	}
	return d, nil
}

// current returns the revision name current points at.
func currentRevision(dir, name string) (string, int, error) {
	t, err := os.Readlink(filepath.Join(dir, currentName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", 0, fmt.Errorf("machine %s: no current revision (%s/%s missing)", name, dir, currentName)
		}
		return "", 0, fmt.Errorf("machine %s: %w", name, err)
	}
	n, ok := revisionNumber(name, t)
	if !ok || strings.Contains(t, "/") {
		return "", 0, fmt.Errorf("machine %s: %s/%s points at %q, not a revision %s-N", name, dir, currentName, t, name)
	}
	return t, n, nil
}

// List returns every machine of the store, sorted by name.
func (s *Store) List() ([]Machine, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("machines_dir %s: %w", s.Dir, err)
	}
	var out []Machine
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := s.machineDir(e.Name())
		if _, err := os.Stat(filepath.Join(d, markerName)); err != nil {
			continue
		}
		m, err := s.inspect(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// inspect reads one machine directory.
func (s *Store) inspect(name string) (Machine, error) {
	d := s.machineDir(name)
	m := Machine{Name: name}
	mk := readMarker(d)
	m.Dist, m.Arch, m.Cross = mk.Dist, mk.Arch, mk.Cross
	if m.Arch != "" && m.Cross == "" {
		m.Emulated, _ = Emulated(m.Arch)
	}
	m.Current, _, _ = currentRevision(d, name)
	ents, err := os.ReadDir(d)
	if err != nil {
		return m, fmt.Errorf("machine %s: %w", name, err)
	}
	for _, e := range ents {
		p := filepath.Join(d, e.Name())
		if n, ok := revisionNumber(name, e.Name()); ok && e.IsDir() {
			ro, _ := readOnly(p)
			r := Revision{Name: e.Name(), Number: n, ReadOnly: ro, Current: e.Name() == m.Current}
			if si, err := getSubvolInfo(p); err == nil {
				r.UUID, r.Received, r.Made = si.identity(), si.ReceivedUUID != "", si.Made
			}
			m.Revisions = append(m.Revisions, r)
		}
		if w, ok := parseWork(d, e.Name()); ok && e.IsDir() {
			w.Live = flock.Held(p + lockSuffix)
			m.Working = append(m.Working, w)
		}
	}
	sort.Slice(m.Revisions, func(i, j int) bool { return m.Revisions[i].Number < m.Revisions[j].Number })
	if m.Layers, err = layersIn(d); err != nil {
		return m, fmt.Errorf("machine %s: %w", name, err)
	}
	return m, nil
}

func parseWork(dir, entry string) (WorkingInfo, bool) {
	g := workRE.FindStringSubmatch(entry)
	if g == nil {
		return WorkingInfo{}, false
	}
	rev, _ := strconv.Atoi(g[1])
	pid, _ := strconv.Atoi(g[2])
	t, _ := strconv.ParseInt(g[3], 10, 64)
	return WorkingInfo{Name: entry, Path: filepath.Join(dir, entry), Revision: rev, PID: pid, Started: time.Unix(t, 0), Job: g[4]}, true
}

// marker is what a machine's .buildd-machine says of it.
type marker struct {
	Dist  string
	Arch  string // the architecture of its programs
	Cross string // the architecture it cross-builds for; "" for a native machine
}

func readMarker(dir string) marker {
	var m marker
	data, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Dist: "); ok {
			m.Dist = v
		}
		if v, ok := strings.CutPrefix(l, "Arch: "); ok {
			m.Arch = v
		}
		if v, ok := strings.CutPrefix(l, "Cross: "); ok {
			m.Cross = v
		}
	}
	return m
}

// write writes the marker into the machine directory d.
func (m marker) write(d string) error {
	text := fmt.Sprintf("Dist: %s\nArch: %s\n", m.Dist, m.Arch)
	if m.Cross != "" {
		text += "Cross: " + m.Cross + "\n"
	}
	return atomicfile.WriteFile(filepath.Join(d, markerName), []byte(text), 0o644)
}

// Working is a build's working snapshot: a writable snapshot of a machine's
// current revision, owned by this process until Delete.
type Working struct {
	Machine  string
	Revision string // the revision it was taken from, NAME-N
	UUID     string // that revision's UUID, the same on every host holding it (Revision.UUID)
	Layer    string // the layer of that revision it was taken from, layer-N-KEY; "" if none
	path     string
	lock     *flock.Lock
}

// Path is the snapshot's directory: the build's root.
func (w *Working) Path() string { return w.path }

// NewWorking takes a working snapshot of machine name's current revision for
// job (a package_version or any label; characters outside [A-Za-z0-9.+~_-]
// become _).
func (s *Store) NewWorking(name, job string) (*Working, error) {
	return s.newWorking(name, job, func(d string, n int) (string, error) {
		rp := filepath.Join(d, fmt.Sprintf("%s-%d", name, n))
		if !isSubvolume(rp) {
			return "", fmt.Errorf("machine %s: revision %s is not a btrfs subvolume", name, rp)
		}
		ro, err := readOnly(rp)
		if err != nil {
			return "", fmt.Errorf("machine %s: %w", name, err)
		}
		if !ro {
			return "", fmt.Errorf("machine %s: revision %s is not read-only: refusing to build in it", name, rp)
		}
		return rp, nil
	})
}

// newWorking takes a working snapshot for job of what source names for the
// current revision n (the revision or one of its layers), holding the
// revisions lock shared meanwhile; source's "" is no snapshot and no error.
func (s *Store) newWorking(name, job string, source func(d string, n int) (string, error)) (*Working, error) {
	d, err := s.machineDirOf(name)
	if err != nil {
		return nil, err
	}
	rl, err := flock.Acquire(filepath.Join(d, revisionsLock), flock.Shared, 0o644, revisionsWait)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	defer rl.Unlock()
	rev, n, err := currentRevision(d, name)
	if err != nil {
		return nil, err
	}
	rp, err := source(d, n)
	if rp == "" || err != nil {
		return nil, err
	}
	layer := ""
	if filepath.Base(rp) != rev {
		layer = filepath.Base(rp)
	}
	job = jobBad.ReplaceAllString(job, "_")
	if len(job) > 120 {
		job = job[:120]
	}
	if job == "" {
		job = "job"
	}
	var wname string
	var lk *flock.Lock
	for i := 0; ; i++ {
		wname = fmt.Sprintf("%s%d-%d-%d-%s", workPrefix, n, os.Getpid(), time.Now().Unix()+int64(i), job)
		if _, err := os.Lstat(filepath.Join(d, wname)); err == nil {
			continue
		}
		if lk, err = flock.Acquire(filepath.Join(d, wname+lockSuffix), flock.Exclusive, 0o644, 0); err == nil {
			break
		}
		if i > 100 {
			return nil, fmt.Errorf("machine %s: working snapshot: %w", name, err)
		}
	}
	fmt.Fprintf(lk.File(), "%d %s\n", os.Getpid(), job)
	wp := filepath.Join(d, wname)
	if err := snapshot(rp, wp, false); err != nil {
		os.Remove(wp + lockSuffix)
		lk.Unlock()
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	w := &Working{Machine: name, Revision: rev, Layer: layer, path: wp, lock: lk}
	if si, err := getSubvolInfo(filepath.Join(d, rev)); err == nil {
		w.UUID = si.identity()
	}
	return w, nil
}

// Delete deletes the snapshot (with anything nested in it) and its lock.
// Calling it again is harmless.
func (w *Working) Delete() error {
	if w.lock == nil {
		return nil
	}
	if _, err := os.Lstat(w.path); err == nil {
		if err := deleteSubvolume(w.path); err != nil {
			return err
		}
	}
	os.Remove(w.path + lockSuffix)
	err := w.lock.Unlock()
	w.lock = nil
	return err
}

// Machine is one machine of the store, as List sees it.
func (s *Store) Machine(name string) (Machine, error) {
	if _, err := s.machineDirOf(name); err != nil {
		return Machine{}, err
	}
	return s.inspect(name)
}

// Current returns machine name's current revision.
func (s *Store) Current(name string) (Revision, error) {
	m, err := s.Machine(name)
	if err != nil {
		return Revision{}, err
	}
	for _, r := range m.Revisions {
		if r.Current {
			return r, nil
		}
	}
	return Revision{}, fmt.Errorf("machine %s: no current revision", name)
}

// String is "dist/arch", "dist/arch cross to ARCH".
func (m marker) String() string {
	s := m.Dist + "/" + m.Arch
	if m.Cross != "" {
		s += " cross to " + m.Cross
	}
	return s
}

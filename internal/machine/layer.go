package machine

import (
	"errors"
	"fmt"
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

// A layer is a read-only snapshot of a working snapshot just after a build
// installed its build-dependencies (or, a step layer, the part of them it
// shares with another layer), cleaned of the build's own files:
//
//	layer-N-KEY         read-only subvolume: revision N plus one set of packages
//	layer-N-KEY.info    its size (KiB) and packages; its mtime is its last use
//	.layer-new-N-KEY    a layer being made, under the flock .layer-new-N-KEY.lock
//
// KEY names the exact set of packages installed (the caller's hash of
// them), N the revision it was made on: a layer is never used for another
// revision, and Clean deletes the layers of revisions that are no longer
// current. A build that resolves to the same set takes its working
// snapshot from the layer instead of installing; one that needs more
// takes it from the largest layer whose packages it all needs, and
// installs the others (the caller chooses, from Layers' Packages).
const (
	layerPrefix    = "layer-"
	layerNewPrefix = ".layer-new-"
	infoSuffix     = ".info"
)

var (
	layerRE = regexp.MustCompile(`^layer-([0-9]+)-([0-9a-f]{16,64})$`)
	keyRE   = regexp.MustCompile(`^[0-9a-f]{16,64}$`)
)

// Layer is one layer as Layers sees it.
type Layer struct {
	Name     string // layer-N-KEY
	Path     string
	Revision int
	Key      string
	SizeKiB  int64     // what its packages take, from its .info
	Packages []string  // its packages (NAME_VERSION_ARCH), from its .info
	LastUsed time.Time // the .info file's mtime
}

// LayerInfo is what a layer's .info file records.
type LayerInfo struct {
	SizeKiB  int64    // the installed size of its packages
	Packages []string // each package's NAME_VERSION_ARCH, as apt names its .deb
}

func layerName(rev int, key string) string { return fmt.Sprintf("%s%d-%s", layerPrefix, rev, key) }

// revisionOf is the number of revision name NAME-N of machine.
func revisionOf(machine, rev string) (int, error) {
	n, ok := revisionNumber(machine, rev)
	if !ok {
		return 0, fmt.Errorf("machine %s: %q is not a revision %s-N", machine, rev, machine)
	}
	return n, nil
}

// NewWorkingFromLayer takes a working snapshot for job of machine name's
// layer KEY of the current revision, as NewWorking takes one of the
// revision, and marks the layer used. ok is false, with no error, when the
// current revision has no such layer.
func (s *Store) NewWorkingFromLayer(name, key, job string) (w *Working, ok bool, err error) {
	if !keyRE.MatchString(key) {
		return nil, false, fmt.Errorf("machine %s: layer key %q is not 16 to 64 hex digits", name, key)
	}
	w, err = s.newWorking(name, job, func(d string, rev int) (string, error) {
		lp := filepath.Join(d, layerName(rev, key))
		if !isSubvolume(lp) {
			return "", nil
		}
		return lp, nil
	})
	if w == nil || err != nil {
		return nil, false, err
	}
	now := time.Now()
	os.Chtimes(filepath.Join(filepath.Dir(w.path), w.Layer+infoSuffix), now, now)
	return w, true, nil
}

// NewLayer is a layer AddLayer is making.
type NewLayer struct {
	Name string // layer-N-KEY
	done chan struct{}
	err  error
}

// Wait waits until the layer is ready, or made by another build, and
// returns nil; or why it could not be made (it is not there then).
func (l *NewLayer) Wait() error {
	<-l.done
	return l.err
}

// AddLayer keeps the state of working snapshot w as the layer KEY of w's
// revision: a snapshot of w, cleaned by clean (given the new layer's root;
// it removes what the build itself put there), made read-only, synced and
// renamed into place. It returns once the snapshot is taken, so that w can
// go on changing while the rest is done: NewLayer.Wait waits for it. A
// layer that exists already, or is being made by another build, is left
// as it is.
func (s *Store) AddLayer(w *Working, key string, info LayerInfo, clean func(root string) error) *NewLayer {
	l := &NewLayer{done: make(chan struct{})}
	finish := func(err error) *NewLayer {
		l.err = err
		close(l.done)
		return l
	}
	if !keyRE.MatchString(key) {
		return finish(fmt.Errorf("machine %s: layer key %q is not 16 to 64 hex digits", w.Machine, key))
	}
	rev, err := revisionOf(w.Machine, w.Revision)
	if err != nil {
		return finish(err)
	}
	d := filepath.Dir(w.path)
	l.Name = layerName(rev, key)
	final := filepath.Join(d, l.Name)
	if isSubvolume(final) {
		return finish(nil)
	}
	tmp := filepath.Join(d, layerNewPrefix+fmt.Sprintf("%d-%s", rev, key))
	lk, err := flock.Acquire(tmp+lockSuffix, flock.Exclusive, 0o644, 0)
	if errors.Is(err, flock.ErrLocked) {
		return finish(nil)
	}
	if err != nil {
		return finish(fmt.Errorf("machine %s: layer %s: %w", w.Machine, l.Name, err))
	}
	// The revisions lock, shared, keeps the revision from being deleted
	// meanwhile; deleting layers takes it exclusively.
	rl, err := flock.Acquire(filepath.Join(d, revisionsLock), flock.Shared, 0o644, revisionsWait)
	if err != nil {
		os.Remove(tmp + lockSuffix)
		lk.Unlock()
		return finish(fmt.Errorf("machine %s: %w", w.Machine, err))
	}
	fail := func(err error) error {
		deleteSubvolume(tmp)
		return fmt.Errorf("machine %s: layer %s: %w", w.Machine, l.Name, err)
	}
	err = nil
	if isSubvolume(tmp) {
		err = deleteSubvolume(tmp)
	}
	if err == nil {
		if err = snapshot(w.path, tmp, false); err != nil {
			err = fail(err)
		}
	}
	if err != nil {
		rl.Unlock()
		os.Remove(tmp + lockSuffix)
		lk.Unlock()
		return finish(err)
	}
	go func() {
		defer func() {
			rl.Unlock()
			os.Remove(tmp + lockSuffix)
			lk.Unlock()
			close(l.done)
		}()
		l.err = finishLayer(tmp, final, filepath.Join(d, l.Name+infoSuffix), info, clean, fail)
	}()
	return l
}

// finishLayer makes the snapshot tmp the layer final: cleaned, its .info
// written, read-only, synced, renamed.
func finishLayer(tmp, final, infoPath string, info LayerInfo, clean func(root string) error, fail func(error) error) error {
	if err := clean(tmp); err != nil {
		return fail(err)
	}
	if err := writeInfo(infoPath, info); err != nil {
		return fail(err)
	}
	if err := setReadOnly(tmp, true); err != nil {
		return fail(err)
	}
	// The build installed without an fsync per file: one sync makes the
	// layer durable before its name says it is ready.
	if err := syncFS(tmp); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	return nil
}

func writeInfo(path string, info LayerInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Size: %d\n", info.SizeKiB)
	for _, p := range info.Packages {
		fmt.Fprintf(&b, "Package: %s\n", p)
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}

// readInfo reads a layer's .info; a missing or damaged one is size 0.
func readInfo(path string) (LayerInfo, time.Time) {
	var info LayerInfo
	fi, err := os.Stat(path)
	if err != nil {
		return info, time.Time{}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return info, fi.ModTime()
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Size: "); ok {
			info.SizeKiB, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "Package: "); ok {
			info.Packages = append(info.Packages, v)
		}
	}
	return info, fi.ModTime()
}

// Layers lists machine name's layers, least recently used first.
func (s *Store) Layers(name string) ([]Layer, error) {
	d, err := s.machineDirOf(name)
	if err != nil {
		return nil, err
	}
	return layersIn(d)
}

func layersIn(d string) ([]Layer, error) {
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, err
	}
	var out []Layer
	for _, e := range ents {
		g := layerRE.FindStringSubmatch(e.Name())
		if g == nil || !e.IsDir() {
			continue
		}
		rev, _ := strconv.Atoi(g[1])
		p := filepath.Join(d, e.Name())
		info, used := readInfo(p + infoSuffix)
		out = append(out, Layer{Name: e.Name(), Path: p, Revision: rev, Key: g[2], SizeKiB: info.SizeKiB, Packages: info.Packages, LastUsed: used})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUsed.Before(out[j].LastUsed) })
	return out, nil
}

// EvictLayers deletes machine name's layers of revisions other than the
// current one, then the least recently used ones until the others together
// take at most budgetKiB. It returns the names it deleted.
func (s *Store) EvictLayers(name string, budgetKiB int64) ([]string, error) {
	d, err := s.machineDirOf(name)
	if err != nil {
		return nil, err
	}
	return evictLayers(d, name, budgetKiB)
}

func evictLayers(d, name string, budgetKiB int64) ([]string, error) {
	rl, err := flock.Acquire(filepath.Join(d, revisionsLock), flock.Exclusive, 0o644, revisionsWait)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	defer rl.Unlock()
	_, cur, _ := currentRevision(d, name)
	layers, err := layersIn(d)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	var total int64
	var keep []Layer
	var drop []Layer
	for _, l := range layers {
		if l.Revision != cur {
			drop = append(drop, l)
			continue
		}
		keep = append(keep, l)
		total += l.SizeKiB
	}
	for len(keep) > 0 && total > budgetKiB {
		drop = append(drop, keep[0])
		total -= keep[0].SizeKiB
		keep = keep[1:]
	}
	var deleted []string
	var errs []error
	for _, l := range drop {
		if err := deleteSubvolume(l.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(l.Path + infoSuffix)
		deleted = append(deleted, l.Path)
	}
	return deleted, errors.Join(errs...)
}

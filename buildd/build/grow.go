package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"buildd/internal/control"
	"buildd/internal/machine"
)

// Growing layers (the miss half of depcache.go). On a miss the
// build-dependencies are installed on top of the largest layer of the
// revision whose packages are all among the ones needed, not on the bare
// revision, and the result is kept as a new layer: a snapshot of the one it
// grew from, so what they have in common is shared on disk. When another
// layer shares more of the needed packages than any such layer holds (at
// least minStep more), the shared part is installed and kept as a layer of
// its own first, a step, which the next builds needing it grow from.
//
// The result must be what installing on the bare revision gives: after
// each install the snapshot's installed packages must be the revision's
// plus exactly the ones resolved on the bare revision, at those versions.
// Anything else drops the grown snapshot, and the build installs in its
// bare one, kept until then, as before.

// minStep is how many packages a step layer adds at least to the layer it
// grows from.
const minStep = 4

// pkgSet is a set of packages by NAME_VERSION_ARCH, as apt names the .deb
// and a layer's .info lists them.
type pkgSet map[string]bool

// id is the file's package as NAME_VERSION_ARCH.
func (f aptFile) id() string { return strings.TrimSuffix(f.name, ".deb") }

// parts are the file's package name, version (apt writes an epoch's colon
// as %3a in the file name) and architecture.
func (f aptFile) parts() (name, version, arch string) {
	name, rest, _ := strings.Cut(f.id(), "_")
	version, arch, _ = strings.Cut(rest, "_")
	return name, strings.ReplaceAll(version, "%3a", ":"), arch
}

// key is the file's package as dpkg's status names it: NAME:ARCH.
func (f aptFile) key() string {
	name, _, arch := f.parts()
	return name + ":" + arch
}

// spec is the file's package as apt-get install takes it, pinned to its
// version: NAME:ARCH=VERSION (NAME=VERSION for arch all).
func (f aptFile) spec() string {
	name, ver, arch := f.parts()
	if arch == "all" {
		return name + "=" + ver
	}
	return name + ":" + arch + "=" + ver
}

func setOf(files []aptFile) pkgSet {
	s := pkgSet{}
	for _, f := range files {
		s[f.id()] = true
	}
	return s
}

// without is the files whose package is not in s.
func without(files []aptFile, s pkgSet) []aptFile {
	var out []aptFile
	for _, f := range files {
		if !s[f.id()] {
			out = append(out, f)
		}
	}
	return out
}

// growth is how a miss is installed: on layer from (nil: a fresh snapshot
// of the revision), first the step (none if nil), then the rest.
type growth struct {
	from *machine.Layer
	step []aptFile
}

// planGrowth chooses, among the layers of the working snapshot's revision,
// the one to grow from and the step, if any; nil when no layer shares
// enough with files to be worth it.
func (b *builder) planGrowth(files []aptFile) *growth {
	layers, err := revisionLayers(b.store, b.work.Machine, b.work.Revision)
	if err != nil {
		fmt.Fprintf(b.log, "W: layers: %v\n", err)
		return nil
	}
	return chooseGrowth(layers, files)
}

// revisionLayers are the layers of machine's revision rev (NAME-N) that
// say which packages they hold.
func revisionLayers(store *machine.Store, name, rev string) ([]machine.Layer, error) {
	layers, err := store.Layers(name)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(rev[strings.LastIndex(rev, "-")+1:])
	if err != nil {
		return nil, fmt.Errorf("machine %s: %q is not a revision NAME-N", name, rev)
	}
	var mine []machine.Layer
	for _, l := range layers {
		if l.Revision == n && len(l.Packages) > 0 {
			mine = append(mine, l)
		}
	}
	return mine, nil
}

// chooseGrowth is planGrowth's choice among layers.
func chooseGrowth(layers []machine.Layer, files []aptFile) *growth {
	want := setOf(files)
	// largestIn is the largest layer all of whose packages are in s.
	largestIn := func(s pkgSet) *machine.Layer {
		var best *machine.Layer
		for i, l := range layers {
			if (best == nil || len(l.Packages) > len(best.Packages)) && subset(l.Packages, s) {
				best = &layers[i]
			}
		}
		return best
	}
	g := &growth{from: largestIn(want)}
	have := 0
	if g.from != nil {
		have = len(g.from.Packages)
	}
	var shared pkgSet
	for _, l := range layers {
		common := pkgSet{}
		for _, p := range l.Packages {
			if want[p] {
				common[p] = true
			}
		}
		if len(common) >= have+minStep && len(common) > len(shared) && len(common) < len(want) {
			shared = common
		}
	}
	if shared != nil {
		for _, f := range files {
			if shared[f.id()] {
				g.step = append(g.step, f)
			}
		}
		g.from = largestIn(shared)
	}
	if g.from == nil && g.step == nil {
		return nil
	}
	return g
}

func subset(pkgs []string, s pkgSet) bool {
	for _, p := range pkgs {
		if !s[p] {
			return false
		}
	}
	return true
}

// grow installs files (resolved on the bare revision, layer key) by a
// growth, and keeps the result as layer key. false: the build is back in
// its bare snapshot, nothing installed there, and installs as before.
func (b *builder) grow(ctx context.Context, opt string, files []aptFile, key string) bool {
	g := b.planGrowth(files)
	if g == nil {
		return false
	}
	bare, bareRoot := b.work, b.root
	var w *machine.Working
	var err error
	if g.from != nil {
		w, _, err = b.store.NewWorkingFromLayer(b.work.Machine, g.from.Key, b.src.String())
	} else {
		w, err = b.store.NewWorking(b.work.Machine, b.src.String())
	}
	if err == nil && w == nil {
		err = fmt.Errorf("layer %s is gone", g.from.Name)
	}
	if err == nil {
		err = carryInto(bareRoot, w.Path())
	}
	if err != nil {
		fmt.Fprintf(b.log, "W: growing a layer: %v; installing on the bare revision\n", err)
		if w != nil {
			b.deleteWorking(w)
		}
		return false
	}
	b.work, b.root = w, w.Path()
	undo := func(why string) bool {
		fmt.Fprintf(b.log, "W: growing a layer: %s; installing on the bare revision\n", why)
		b.deleteWorking(w)
		b.work, b.root = bare, bareRoot
		return false
	}
	base, err := dpkgStatus(bareRoot)
	if err != nil {
		return undo(err.Error())
	}
	from := "the revision " + b.work.Revision
	have := pkgSet{}
	if g.from != nil {
		from = g.from.Name
		for _, p := range g.from.Packages {
			have[p] = true
		}
	}
	if g.step != nil {
		need := without(g.step, have)
		fmt.Fprintf(b.log, "Step layer: the %d packages this build shares with another layer, %d of them on %s\n", len(g.step), len(g.step)-len(need), from)
		specs := make([]string, len(need))
		for i, f := range need {
			specs[i] = "'" + f.spec() + "'"
		}
		if why := b.installExactly(ctx, need, "install "+strings.Join(specs, " "), base, g.step); why != "" {
			return undo(why)
		}
		from = b.keepLayer(layerKey(b.work.Revision, b.target.layerVariant(b.archOnly()), g.step), g.step, need, false)
		have = setOf(g.step)
	}
	rest := without(files, have)
	fmt.Fprintf(b.log, "Growing from %s (%d of the %d packages): installing the other %d\n", from, len(files)-len(rest), len(files), len(rest))
	if why := b.installExactly(ctx, rest, fmt.Sprintf("%sbuild-dep '%s'", opt, b.srcDir), base, files); why != "" {
		return undo(why)
	}
	b.deleteWorking(bare)
	b.addLayer(key, files, rest)
	b.res.LayerFrom = from
	return true
}

// installExactly runs apt-get's command (build-dep or install) in the
// snapshot, the files need cloned in from the package cache, and checks
// that the snapshot then has the packages installed of the revision (base)
// plus all: it returns "" or what differed.
func (b *builder) installExactly(ctx context.Context, need []aptFile, command string, base map[string]installed, all []aptFile) string {
	cached := b.cacheIn(need)
	b.res.Downloaded += sizeOf(need) - cached
	fmt.Fprintf(b.log, "%d bytes from the machine's package cache, %d to download\n", cached, sizeOf(need)-cached)
	if msg, _ := b.install(ctx, command, nil); msg != "" {
		return msg
	}
	b.cacheOut(need)
	got, err := dpkgStatus(b.root)
	if err != nil {
		return err.Error()
	}
	wantSet := map[string]string{}
	for k, p := range base {
		wantSet[k] = p.version
	}
	for _, f := range all {
		_, ver, _ := f.parts()
		wantSet[f.key()] = ver
	}
	if d := diffInstalled(wantSet, got, 5); d != "" {
		return "the installed packages are not the bare revision's plus the resolved ones: " + d
	}
	return ""
}

// installScript is the script of an apt-get command that installs into the
// snapshot:
//   - man-db's index is not kept (no build reads it): debconf's
//     man-db/auto-update is false, for when man-db itself is installed, and
//     the flag its trigger looks for is gone, so no install rebuilds the
//     index (a quarter of a small install's time);
//   - apt keeps what it downloads, for cacheOut (the machine has apt delete
//     it; a layer drops it, cleanLayer);
//   - dpkg unpacks without an fsync per file (--force-unsafe-io), and the
//     step runs with every sync suppressed (install): the snapshot is thrown
//     away on a crash, and a layer made of it is synced once before it is
//     kept (machine's AddLayer).
func installScript(command string) string {
	return "echo 'man-db man-db/auto-update boolean false' | debconf-set-selections\n" +
		"rm -f /var/lib/man-db/auto-update\n" +
		"apt-get -q -o APT::Keep-Downloaded-Packages=true -o Dpkg::Options::=--force-unsafe-io " + command
}

func sizeOf(files []aptFile) int64 {
	var n int64
	for _, f := range files {
		n += f.size
	}
	return n
}

// carryInto gives the snapshot to what the build put into the bare one
// before its build-dependencies: the package lists and apt's caches, the
// dist's extra sources and the build home's files.
func carryInto(from, to string) error {
	if err := machine.CopyLists(from, to); err != nil {
		return err
	}
	if err := fileInTree(from, extraSourcesFile); err == nil {
		data, err := os.ReadFile(filepath.Join(from, extraSourcesFile))
		if err != nil {
			return err
		}
		if err := writeInTree(to, extraSourcesFile, string(data)); err != nil {
			return err
		}
	}
	return machine.CloneTree(filepath.Join(from, machine.BuildHome), filepath.Join(to, machine.BuildHome))
}

func (b *builder) deleteWorking(w *machine.Working) {
	if err := w.Delete(); err != nil {
		fmt.Fprintf(b.log, "E: deleting working snapshot %s: %v\n", w.Path(), err)
	}
}

// installed is one package of a tree's dpkg status.
type installed struct {
	version string // "(STATUS)" when not fully installed, so that it differs from every version
	kib     int64  // its Installed-Size
}

// full reports whether the package is fully installed ("install ok
// installed").
func (i installed) full() bool { return !strings.HasPrefix(i.version, "(") }

// dpkgStatus reads the dpkg status of the tree root: each package present
// (not merely known), by NAME:ARCH.
func dpkgStatus(root string) (map[string]installed, error) {
	const status = "var/lib/dpkg/status"
	if err := fileInTree(root, status); err != nil {
		return nil, err
	}
	in, err := os.Open(filepath.Join(root, status))
	if err != nil {
		return nil, err
	}
	defer in.Close()
	set := map[string]installed{}
	r := control.NewReader(in, status).Keep("Package", "Status", "Architecture", "Version", "Installed-Size")
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return set, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", status, root, err)
		}
		st := p.Get("Status")
		if strings.HasSuffix(st, " not-installed") || strings.HasSuffix(st, " config-files") {
			continue
		}
		v := p.Get("Version")
		if st != "install ok installed" {
			v = "(" + st + ")"
		}
		kib, _ := strconv.ParseInt(p.Get("Installed-Size"), 10, 64)
		set[p.Get("Package")+":"+p.Get("Architecture")] = installed{version: v, kib: kib}
	}
}

// shareWithLayers makes the files of the packages fresh (installed in the
// tree root of a new layer, not taken from the layer it grew from) share
// their data with the same package's files in another layer of the
// machine's revision rev that has it (machine's Dedupe): each package version is then
// stored once on disk, however many layers hold it. It returns what it did,
// for the log: it runs while the build goes on.
func shareWithLayers(store *machine.Store, name, rev, root string, fresh []aptFile) string {
	t0 := time.Now()
	layers, err := revisionLayers(store, name, rev)
	if err != nil {
		return fmt.Sprintf("W: sharing files with other layers: %v", err)
	}
	holder := map[string]string{} // package id -> a layer's path
	for _, l := range layers {
		for _, p := range l.Packages {
			if holder[p] == "" {
				holder[p] = l.Path
			}
		}
	}
	paths := map[string][]string{} // layer path -> the paths to share with it
	for _, f := range fresh {
		l := holder[f.id()]
		if l == "" {
			continue
		}
		name, _, arch := f.parts()
		for _, list := range []string{name + ":" + arch + ".list", name + ".list"} {
			p := filepath.Join("var/lib/dpkg/info", list)
			if fileInTree(root, p) != nil {
				continue
			}
			data, err := os.ReadFile(filepath.Join(root, p))
			if err == nil {
				paths[l] = append(paths[l], strings.Split(string(data), "\n")...)
			}
			break
		}
	}
	var shared int64
	for l, ps := range paths {
		n, err := machine.Dedupe(root, l, ps)
		shared += n
		if err != nil {
			return fmt.Sprintf("W: sharing files with other layers: %v", err)
		}
	}
	if shared == 0 {
		return ""
	}
	return fmt.Sprintf("It shares %.1f MiB of its files with %d other layers (%.1f s)", float64(shared)/(1<<20), len(paths), time.Since(t0).Seconds())
}

// diffInstalled names up to max packages whose version differs.
func diffInstalled(want map[string]string, got map[string]installed, max int) string {
	var d []string
	for p, v := range want {
		if got[p].version != v {
			d = append(d, fmt.Sprintf("%s %s, want %s", p, orNone(got[p].version), v))
		}
	}
	for p, i := range got {
		if _, ok := want[p]; !ok {
			d = append(d, fmt.Sprintf("%s %s, want none", p, i.version))
		}
	}
	return listSome(d, max)
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

func listSome(d []string, max int) string {
	sort.Strings(d)
	if len(d) > max {
		d = append(d[:max], fmt.Sprintf("and %d more", len(d)-max))
	}
	return strings.Join(d, ", ")
}

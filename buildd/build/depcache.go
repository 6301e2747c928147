package build

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"buildd/internal/machine"
)

// What the build-dependency step reuses from earlier builds on the same
// machine revision (see machine's layer.go and aptcache.go):
//
//   - the package lists, refreshed once per lists_max_age and copied into
//     each snapshot instead of an apt-get update per build;
//   - a layer: resolve first (apt-get --print-uris build-dep, which names
//     every .deb apt would install with its size and the index's checksum),
//     hash that set into a key, and when the revision has a layer of that
//     key, continue in a snapshot of the layer instead of installing;
//   - on a miss, the .deb files an earlier build downloaded, checked against
//     the sizes and checksums apt gave, so apt downloads only the others;
//     after the install the new ones are kept, and the snapshot becomes a
//     layer;
//   - on a miss, the largest layer that has some of the packages: the
//     build installs the others on top of it (grow.go).

// listsWait is how long a build waits for another one refreshing the lists.
const listsWait = 15 * time.Minute

// aptFile is one line of apt-get --print-uris: a .deb to install.
type aptFile struct {
	uri  string
	name string // apt's file name in /var/cache/apt/archives
	size int64
	hash string // "MD5Sum:hex", "SHA256:hex", ...
}

var debName = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]*_[A-Za-z0-9.+~%-]+_[a-z0-9-]+\.deb$`)

// parsePrintURIs reads apt-get --print-uris output: "'URI' NAME SIZE HASH"
// per file; other lines (notes) are skipped. A file line that does not
// parse, or names a file outside the archives directory, is an error.
func parsePrintURIs(out string) ([]aptFile, error) {
	var files []aptFile
	for i, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "'") {
			continue
		}
		end := strings.Index(l[1:], "'")
		if end < 0 {
			return nil, fmt.Errorf("apt-get --print-uris:%d: unclosed URI in %q", i+1, l)
		}
		w := strings.Fields(l[end+2:])
		if len(w) != 3 || !debName.MatchString(w[0]) {
			return nil, fmt.Errorf("apt-get --print-uris:%d: not URI NAME SIZE HASH: %q", i+1, l)
		}
		size, err := strconv.ParseInt(w[1], 10, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("apt-get --print-uris:%d: bad size in %q", i+1, l)
		}
		if _, _, err := hashOf(w[2]); err != nil {
			return nil, fmt.Errorf("apt-get --print-uris:%d: %w", i+1, err)
		}
		files = append(files, aptFile{uri: l[1 : end+1], name: w[0], size: size, hash: w[2]})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// hashOf splits apt's "TYPE:hex" checksum into a new hash of that type and
// the expected digest.
func hashOf(s string) (hash.Hash, []byte, error) {
	typ, hx, _ := strings.Cut(s, ":")
	sum, err := hex.DecodeString(hx)
	if err != nil || len(sum) == 0 {
		return nil, nil, fmt.Errorf("bad checksum %q", s)
	}
	var h hash.Hash
	switch typ {
	case "MD5Sum":
		h = md5.New()
	case "SHA1":
		h = sha1.New()
	case "SHA256":
		h = sha256.New()
	case "SHA512":
		h = sha512.New()
	default:
		return nil, nil, fmt.Errorf("unknown checksum type in %q", s)
	}
	if len(sum) != h.Size() {
		return nil, nil, fmt.Errorf("bad checksum %q", s)
	}
	return h, sum, nil
}

// verify checks that the file at path is f: its size and checksum.
func (f aptFile) verify(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	h, want, err := hashOf(f.hash)
	if err != nil {
		return err
	}
	n, err := io.Copy(h, in)
	if err != nil {
		return err
	}
	if n != f.size || string(h.Sum(nil)) != string(want) {
		return fmt.Errorf("%s is not %s (%d bytes, %s)", path, f.name, f.size, f.hash)
	}
	return nil
}

// layerKey names the set of files apt would install on revision rev for
// a build of variant (target.layerVariant).
func layerKey(rev, variant string, files []aptFile) string {
	h := sha256.New()
	fmt.Fprintf(h, "buildd layer 2\nrevision %s\n%s", rev, variant)
	for _, f := range files {
		fmt.Fprintf(h, "%s %d %s\n", f.name, f.size, f.hash)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// sourcesKey names the dist's extra apt sources, which the shared lists
// depend on besides the revision.
func sourcesKey(lines []string) string {
	h := sha256.Sum256([]byte("buildd lists 1\n" + strings.Join(lines, "\n") + "\n"))
	return hex.EncodeToString(h[:])[:32]
}

// updateLists gives the snapshot fresh package lists: the machine's shared
// ones when they are younger than lists_max_age (shared reports it),
// else apt-get update, whose lists are then shared; force skips the
// shared ones. It returns "" or why it failed.
func (b *builder) updateLists(ctx context.Context, force bool) (msg string, shared bool) {
	maxAge := time.Duration(b.cfg.ListsMaxAge) * time.Second
	update := func() string {
		msg, _ := b.apt(ctx, "apt-get -q update", nil)
		return msg
	}
	if maxAge <= 0 {
		return update(), false
	}
	lists, err := b.store.OpenLists(b.work.Machine, b.work.Revision, sourcesKey(b.job.Dist.AptSources))
	if err != nil {
		fmt.Fprintf(b.log, "W: shared package lists: %v\n", err)
		return update(), false
	}
	restore := func(since time.Time) bool {
		t := lists.Fetched()
		if t.IsZero() || time.Since(t) > maxAge || t.Before(since) {
			return false
		}
		if err := lists.Restore(b.root); err != nil {
			fmt.Fprintf(b.log, "W: %v\n", err)
			return false
		}
		fmt.Fprintf(b.log, "Package lists of %s (%s old, shared by the machine's builds; lists_max_age %d s)\n",
			t.UTC().Format(time.RFC1123Z), time.Since(t).Round(time.Second), b.cfg.ListsMaxAge)
		return true
	}
	// A forced refresh takes no lists older than itself (another build's
	// refresh that it waited for is new enough).
	var since time.Time
	if force {
		since = time.Now()
	} else if lk, err := lists.Lock(false, listsWait); err == nil {
		ok := restore(since)
		lk.Unlock()
		if ok {
			return "", true
		}
	}
	// Refresh under the exclusive lock; a build that waited for another's
	// refresh uses it.
	lk, err := lists.Lock(true, listsWait)
	if err != nil {
		fmt.Fprintf(b.log, "W: %v\n", err)
		return update(), false
	}
	defer lk.Unlock()
	if restore(since) {
		return "", true
	}
	t0 := time.Now()
	if msg := update(); msg != "" {
		return msg, false
	}
	if err := lists.Save(b.root, t0); err != nil {
		fmt.Fprintf(b.log, "W: keeping the package lists for later builds: %v\n", err)
	}
	return "", false
}

// resolve asks apt, without installing, which .deb files the
// build-dependencies need. The archives directory is emptied first, so
// apt names every one. nil: apt could not say (the install that follows
// reports why).
func (b *builder) resolve(ctx context.Context, opt string) []aptFile {
	if err := b.emptyArchives(); err != nil {
		return nil
	}
	var out strings.Builder
	script := fmt.Sprintf("apt-get -qq --print-uris %sbuild-dep '%s'", opt, b.srcDir)
	if msg, _ := b.runStep(ctx, step{network: true, dir: machine.BuildHome, script: script, binds: b.binds, capture: &out, quiet: true}); msg != "" {
		return nil
	}
	files, err := parsePrintURIs(out.String())
	if err != nil {
		fmt.Fprintf(b.log, "W: %v\n", err)
		return nil
	}
	return files
}

// emptyArchives removes the .deb files of the snapshot's archives
// directory, so that apt-get --print-uris names every file it needs.
func (b *builder) emptyArchives() error {
	if err := machine.DirInTree(b.root, machine.TreeArchives); err != nil {
		return err
	}
	debs, err := filepath.Glob(filepath.Join(b.root, machine.TreeArchives, "*.deb"))
	for _, d := range debs {
		if err := os.Remove(d); err != nil {
			return err
		}
	}
	return err
}

// fromLayer continues the build in a working snapshot of the layer key,
// with the build home's files cloned into it; false when there is no such
// layer or it cannot be used (the build then installs).
func (b *builder) fromLayer(key string) bool {
	w, ok, err := b.store.NewWorkingFromLayer(b.work.Machine, key, b.src.String())
	if err != nil {
		fmt.Fprintf(b.log, "W: layer %s: %v\n", key, err)
	}
	if !ok {
		return false
	}
	if err := machine.CloneTree(b.inBuild(), filepath.Join(w.Path(), machine.BuildHome)); err != nil {
		fmt.Fprintf(b.log, "W: layer %s: %v\n", w.Layer, err)
		if err := w.Delete(); err != nil {
			fmt.Fprintf(b.log, "E: deleting working snapshot: %v\n", err)
		}
		return false
	}
	old := b.work
	b.work, b.root = w, w.Path()
	if err := old.Delete(); err != nil {
		fmt.Fprintf(b.log, "E: deleting working snapshot %s: %v\n", old.Path(), err)
	}
	return true
}

// cacheIn clones into the snapshot's archives directory the files the
// machine's package cache has, each checked against apt's size and
// checksum (a file that does not match is dropped from the cache). It
// returns how many bytes it supplied.
func (b *builder) cacheIn(files []aptFile) int64 {
	if b.cfg.PackageCacheSize <= 0 {
		return 0
	}
	cache, err := b.store.PackageCache(b.work.Machine)
	if err != nil {
		fmt.Fprintf(b.log, "W: package cache: %v\n", err)
		return 0
	}
	var n int64
	now := time.Now()
	for _, f := range files {
		src := filepath.Join(cache, f.name)
		if _, err := os.Lstat(src); err != nil {
			continue
		}
		if err := f.verify(src); err != nil {
			fmt.Fprintf(b.log, "W: package cache: %v: dropped\n", err)
			os.Remove(src)
			continue
		}
		if err := machine.CloneNew(src, filepath.Join(b.root, machine.TreeArchives, f.name)); err != nil {
			fmt.Fprintf(b.log, "W: package cache: %v\n", err)
			continue
		}
		os.Chtimes(src, now, now)
		n += f.size
	}
	return n
}

// cacheOut keeps in the machine's package cache the files apt downloaded,
// each checked against apt's size and checksum, then trims the cache to
// package_cache_size.
func (b *builder) cacheOut(files []aptFile) {
	if b.cfg.PackageCacheSize <= 0 {
		return
	}
	cache, err := b.store.PackageCache(b.work.Machine)
	if err != nil {
		fmt.Fprintf(b.log, "W: package cache: %v\n", err)
		return
	}
	for _, f := range files {
		dst := filepath.Join(cache, f.name)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		src := filepath.Join(b.root, machine.TreeArchives, f.name)
		if err := fileInTree(b.root, filepath.Join(machine.TreeArchives, f.name)); err != nil {
			continue // a file: source, used where it is
		}
		if err := f.verify(src); err != nil {
			fmt.Fprintf(b.log, "W: package cache: %v: not kept\n", err)
			continue
		}
		if err := machine.CloneFile(src, dst); err != nil {
			fmt.Fprintf(b.log, "W: package cache: %v\n", err)
		}
	}
	if _, err := b.store.EvictPackages(b.work.Machine, int64(b.cfg.PackageCacheSize)<<10); err != nil {
		fmt.Fprintf(b.log, "W: package cache: %v\n", err)
	}
}

// addLayer keeps the snapshot, build-dependencies installed (fresh of them
// by this build), as the layer key, the build's own.
func (b *builder) addLayer(key string, files, fresh []aptFile) {
	b.res.Layer, b.res.LayerNew = b.keepLayer(key, files, fresh, true), true
}

// pendingLayer is a layer being finished while the build goes on
// (machine's AddLayer); settleLayers waits for it.
type pendingLayer struct {
	nl       *machine.NewLayer
	packages int
	kib      int64
	own      bool   // the build's own layer, its Install-Layer
	shared   string // what sharing its files with other layers did
}

// keepLayer starts keeping the snapshot, files installed (fresh of them by
// this build, the others taken from the layer it grew from), as the layer
// key, and returns its name; the build goes on meanwhile.
func (b *builder) keepLayer(key string, files, fresh []aptFile, own bool) string {
	info := machine.LayerInfo{SizeKiB: b.installedKiB(files)}
	for _, f := range files {
		info.Packages = append(info.Packages, f.id())
	}
	p := &pendingLayer{packages: len(files), kib: info.SizeKiB, own: own}
	name, rev := b.work.Machine, b.work.Revision
	p.nl = b.store.AddLayer(b.work, key, info, func(root string) error {
		if err := cleanLayer(root); err != nil {
			return err
		}
		p.shared = shareWithLayers(b.store, name, rev, root, fresh)
		return nil
	})
	b.pending = append(b.pending, p)
	return p.nl.Name
}

// settleLayers waits for the layers the build is keeping, says what became
// of them, then trims the machine's layers to layer_cache_size.
func (b *builder) settleLayers() {
	if len(b.pending) == 0 {
		return
	}
	for _, p := range b.pending {
		if err := p.nl.Wait(); err != nil {
			fmt.Fprintf(b.log, "W: %v\n", err)
			if p.own {
				b.res.Layer, b.res.LayerNew, b.res.LayerFrom = "", false, ""
			}
			continue
		}
		fmt.Fprintf(b.log, "Kept as layer %s (%d packages, %d MiB installed) for later builds\n", p.nl.Name, p.packages, (p.kib+1023)/1024)
		if p.shared != "" {
			fmt.Fprintf(b.log, "%s\n", p.shared)
		}
	}
	b.pending = nil
	if gone, err := b.store.EvictLayers(b.work.Machine, int64(b.cfg.LayerCacheSize)<<10); err != nil {
		fmt.Fprintf(b.log, "W: %v\n", err)
	} else if len(gone) > 0 {
		fmt.Fprintf(b.log, "Dropped %d least recently used layers (layer_cache_size %d MiB)\n", len(gone), b.cfg.LayerCacheSize)
	}
}

// cleanLayer removes from a new layer what the build put there (the build
// home's files, the downloaded .deb files, the dist's extra sources) and
// apt's binary caches, which apt remakes when it needs them: kept, they
// would be tens of MiB of each layer's own.
func cleanLayer(root string) error {
	if err := mountedUnder(root); err != nil {
		return err
	}
	for _, c := range []struct {
		dir  string
		drop func(name string) bool
	}{
		{machine.BuildHome, func(string) bool { return true }},
		{machine.TreeArchives, func(n string) bool { return strings.HasSuffix(n, ".deb") }},
		{filepath.Dir(machine.TreeArchives), func(n string) bool { return strings.HasSuffix(n, ".bin") }},
	} {
		if err := machine.DirInTree(root, c.dir); err != nil {
			return err
		}
		ents, err := os.ReadDir(filepath.Join(root, c.dir))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !c.drop(e.Name()) {
				continue
			}
			if err := os.RemoveAll(filepath.Join(root, c.dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(filepath.Join(root, extraSourcesFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// installedKiB adds up the Installed-Size of files' packages in the
// snapshot's dpkg status: what the layer adds to its revision.
func (b *builder) installedKiB(files []aptFile) int64 {
	st, err := dpkgStatus(b.root)
	if err != nil {
		return 0
	}
	var kib int64
	for _, f := range files {
		kib += st[f.key()].kib
	}
	return kib
}

package dispatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"buildd/internal/config"
	"buildd/internal/control"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/queue"
)

// upload handles "ok": the signed text is the .changes of the build on
// d's architecture (its Architecture field names no other). Its files,
// checked against build/, and the signed .changes are copied into the
// upload queue of every dist it names (each for d's architecture),
// atomically (temporary names, fsync, rename, the .changes last), then
// removed from build/. The .changes in the upload
// queue is byte for byte the clearsigned block that was verified (for
// PGP/MIME, the signed text).
func (j *job) upload(ctx context.Context, d *config.Dist, pkgv, text string) error {
	p := j.p
	c, err := control.ParseChanges(pkgv+".changes", []byte(text))
	if err != nil {
		j.fail("The signed .changes cannot be used: %v\nSend the .changes from the build log unchanged.", err)
		return nil
	}
	if got := (debversion.PkgVersion{Name: c.Source, Version: c.Version}).String(); got != pkgv {
		p.logf("%s(%s): re-aimed .changes for %s refused", pkgv, d.Where(), got)
		j.fail("The signed .changes is for %s, but the subject names %s.\nAnswer the log mail of %s with its own .changes.", got, pkgv, got)
		return nil
	}
	if other := slices.DeleteFunc(slices.Clone(c.Architecture), func(a string) bool {
		return a == d.BuiltArchitecture || a == "all" || a == "source"
	}); len(other) > 0 {
		p.logf("%s(%s): .changes for %s refused under the subject of %s", pkgv, d.Where(), strings.Join(other, " "), d.BuiltArchitecture)
		j.fail("The signed .changes is for the build on %s, but this reply answers the build on %s.\nAnswer the log mail of that build with its own .changes.", strings.Join(other, " "), d.BuiltArchitecture)
		return nil
	}
	dists := strings.Fields(c.Distribution)
	if len(dists) == 0 {
		j.fail("Couldn't find a valid Distribution: line.")
		return nil
	}
	var targets []*config.Dist
	named := false
	for _, dn := range dists {
		td, ok := p.Cfg.DistArch(dn, d.BuiltArchitecture)
		if !ok {
			j.fail("Package %s has target distribution %s, which this buildd does not build for %s.\nFix the Distribution: field.", pkgv, dn, d.BuiltArchitecture)
			return nil
		}
		named = named || td.Where() == d.Where()
		targets = append(targets, td)
	}
	if !named {
		p.logf("%s(%s): .changes for %s refused under the subject of dist %s", pkgv, d.Where(), strings.Join(dists, " "), d.DistName)
		j.fail("The signed .changes is for %s, but the subject says dist=%s.\nAnswer the log mail of that distribution.", strings.Join(dists, " "), d.DistName)
		return nil
	}
	name := changesName(pkgv, c.Architecture, d.BuiltArchitecture)
	queues := uploadQueues(p.Home, targets)
	changesData := []byte(text)
	if !j.m.PGPMIME {
		changesData = j.sig.Block
	}
	if j.resumed && allHold(queues, name, changesData) {
		j.act(pkgv, d, "already moved to upload (resumed)")
		return j.purge(d, pkgv)
	}
	if j.outdated(d, pkgv, targets) {
		return nil
	}
	var wrong []string
	for _, td := range targets {
		ok, err := j.checkState(ctx, td, pkgv, queue.Building, queue.Built, queue.InstallWait, queue.ReuploadWait, queue.BuildAttempted)
		if err != nil {
			return err
		}
		if !ok {
			wrong = append(wrong, td.Where())
		}
	}
	if len(wrong) > 0 {
		j.fail("Package %s has target distributions %s\nfor which it isn't registered as Building.\nPlease fix this by either modifying the Distribution: header or\ntaking the package in those distributions, too.", pkgv, strings.Join(wrong, " "))
		return nil
	}
	if ok, err := j.checkBuilt(pkgv, c.Files); !ok {
		return err
	}
	if err := j.spend(pkgv, d); err != nil {
		return err
	}
	var files []string
	for _, f := range c.Files {
		files = append(files, f.Name)
	}
	for _, q := range queues {
		if err := q.Add(p.Home.BuildDir(), files, name, changesData); err != nil {
			return err
		}
		j.act(pkgv, d, "moved to %s as %s", q.Dir(), name)
	}
	for _, f := range c.Files {
		if err := os.Remove(filepath.Join(p.Home.BuildDir(), f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.logf("Cannot remove build/%s: %v", f.Name, err)
		}
	}
	return j.purge(d, pkgv)
}

// checkBuilt checks that every file the .changes names is in build/, a
// regular file (not a symlink to elsewhere) with the size and SHA-256 the
// .changes gives.
func (j *job) checkBuilt(pkgv string, files []control.ChangesFile) (bool, error) {
	var missing, bad []string
	for _, f := range files {
		if f.SHA256 == "" {
			j.fail("The .changes has no Checksums-Sha256 entry for %s: send the .changes dpkg-genchanges wrote.", f.Name)
			return false, nil
		}
		path := filepath.Join(j.p.Home.BuildDir(), f.Name)
		if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
			bad = append(bad, fmt.Sprintf("%s (not a regular file: %s)", f.Name, st.Mode().Type()))
			continue
		}
		got, size, err := sha256File(path)
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, f.Name)
			continue
		}
		if err != nil {
			return false, err
		}
		if size != f.Size || got != f.SHA256 {
			bad = append(bad, fmt.Sprintf("%s (size %d, sha256 %s; the .changes says size %d, sha256 %s)", f.Name, size, got, f.Size, f.SHA256))
		}
	}
	if len(missing) > 0 {
		j.fail("While trying to move the built package %s to upload,\nthe following files mentioned in the .changes were not found in %s:\n%s\nRebuild the package (retry), or put the files there.", pkgv, j.p.Home.BuildDir(), strings.Join(missing, " "))
		return false, nil
	}
	if len(bad) > 0 {
		j.fail("While trying to move the built package %s to upload,\nthe following files had bad checksums:\n%s\nThe .changes does not describe the files that were built: send the\n.changes from the latest build log, or retry the build.", pkgv, strings.Join(bad, "\n"))
		return false, nil
	}
	return true, nil
}

// changesName is the classic upload name: PKG_VERSION (no epoch)_ARCH.changes,
// ARCH "multi" when several non-all architectures are listed.
func changesName(pkgv string, arches []string, builtArch string) string {
	arch := builtArch
	var real []string
	for _, a := range arches {
		if a != "all" && a != "source" {
			real = append(real, a)
		}
	}
	switch {
	case len(real) > 1:
		arch = "multi"
	case len(real) == 1:
		arch = real[0]
	}
	return home.ChangesName(debversion.SplitPkgVersion(pkgv), arch)
}

// uploadQueues are the upload queues of dists, each once.
func uploadQueues(h home.Home, dists []*config.Dist) []*home.UploadQueue {
	var out []*home.UploadQueue
	seen := map[string]bool{}
	for _, d := range dists {
		q := h.UploadQueue(d.DuploadLocalQueueDir)
		if !seen[q.Dir()] {
			seen[q.Dir()] = true
			out = append(out, q)
		}
	}
	return out
}

// allHold reports whether every one of queues holds the .changes name
// with exactly data.
func allHold(queues []*home.UploadQueue, name string, data []byte) bool {
	for _, q := range queues {
		if !q.Holds(name, data) {
			return false
		}
	}
	return len(queues) > 0
}

func sha256File(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// removeFromUpload handles upload-rem: the package's .changes, its files
// and the .upload marker leave the dist's upload queue.
func (j *job) removeFromUpload(d *config.Dist, pkgv string) error {
	q := j.p.Home.UploadQueue(d.DuploadLocalQueueDir)
	name := home.ChangesName(debversion.SplitPkgVersion(pkgv), d.BuiltArchitecture)
	j.act(pkgv, d, "remove from upload dir %s", q.Dir())
	data, err := q.ReadChanges(name)
	if errors.Is(err, os.ErrNotExist) {
		j.p.logf("%s does not exist", name)
		return nil
	}
	if err != nil {
		return err
	}
	return j.p.removeUploaded(q, name, data)
}

// removeUploaded deletes the upload name, whose .changes holds data, from
// the queue q: its files, the .changes and its marker.
func (p *Processor) removeUploaded(q *home.UploadQueue, name string, data []byte) error {
	var files []string
	if c, err := control.ParseChanges(name, data); err == nil {
		for _, f := range c.Files {
			files = append(files, f.Name)
		}
	} else {
		p.logf("%s/%s: %v; removing only the .changes and .upload", q.Dir(), name, err)
	}
	p.logf("Removing files from %s: %s", q.Dir(), strings.Join(append(files, name, home.UploadMarker(name)), " "))
	failed, err := q.Remove(name, files)
	for _, e := range failed {
		p.logf("Can't remove: %v", e)
	}
	return err
}

// installed handles "X.changes INSTALLED/ACCEPTED": the upload is in the
// archive, so it leaves the upload queue. The mail is unsigned, so it
// clears only what is exactly its own: a .changes named as the suite names
// uploads (NAME_VERSION_ARCH.changes) that buildd-uploader has already
// uploaded (its .upload marker is there). An upload still waiting to go is
// never touched by it.
func (j *job) installed() error {
	p := j.p
	name := j.subj.Changes
	if err := checkChangesName(name); err != nil {
		p.logf("%s INSTALLED notice ignored: %v", name, err)
		return nil
	}
	var found []*home.UploadQueue
	for _, q := range uploadQueues(p.Home, distPtrs(p.Cfg)) {
		if q.Has(name) {
			found = append(found, q)
		}
	}
	switch len(found) {
	case 0:
		p.logf("Can't identify upload directory for %s!", name)
		return nil
	case 1:
	default:
		p.logf("Found more than one upload directory for %s - not deleting binaries!", name)
		return nil
	}
	if !found[0].Uploaded(name) {
		p.logf("%s INSTALLED notice ignored: %s/%s is not uploaded yet (no %s)", name, found[0].Dir(), name, home.UploadMarker(name))
		return nil
	}
	data, err := found[0].ReadChanges(name)
	if err != nil {
		return err
	}
	p.logf("%s has been installed; removing from upload dir", debversion.SplitPkgVersion(name).Name)
	return p.removeUploaded(found[0], name, data)
}

// checkChangesName checks an upload's name, NAME_VERSION_ARCH.changes
// (VERSION without its epoch), as a mail gives it.
func checkChangesName(name string) error {
	base, ok := strings.CutSuffix(name, ".changes")
	i := strings.LastIndexByte(base, '_')
	if !ok || i < 0 {
		return fmt.Errorf("%q is not NAME_VERSION_ARCH.changes", name)
	}
	if _, err := debversion.ParsePkgVersion(base[:i]); err != nil {
		return fmt.Errorf("%q: %w", name, err)
	}
	if err := debversion.CheckName(base[i+1:]); err != nil {
		return fmt.Errorf("%q: architecture %q", name, base[i+1:])
	}
	return nil
}

func distPtrs(c *config.Config) []*config.Dist {
	out := make([]*config.Dist, len(c.Dists))
	for i := range c.Dists {
		out[i] = &c.Dists[i]
	}
	return out
}

// purge is the classic purge_pkg for d's dist and architecture: drop the
// package's lines of d from REDO, delete the .changes of its build on d's
// architecture and its files from build/, and schedule its build
// directory for deletion (build/PURGE, done by buildd-watcher).
func (j *job) purge(d *config.Dist, pkgv string) error {
	return j.p.purge(d, pkgv)
}

func (p *Processor) purge(d *config.Dist, pkgv string) error {
	// REDO is rewritten (under its lock) only when it names the package.
	if es, _, err := p.Home.REDO().Read(); err != nil {
		return err
	} else if p.hasRedo(es, pkgv, d) {
		if err := p.Home.REDO().Remove(func(e home.RedoEntry) bool { return e.PkgVersion == pkgv && p.means(d, e) }); err != nil {
			return err
		}
		p.logf("Deleted %s (%s) from REDO list.", pkgv, d.Where())
	}
	pv := debversion.SplitPkgVersion(pkgv).NoEpoch()
	changes := home.ChangesName(pv, d.BuiltArchitecture)
	if found, _ := p.Home.RemoveBuild(changes); found {
		p.logf("Purging files: %s", changes)
	}
	dir := filepath.Join(p.Home.BuildDir(), pv.Name+"-"+pv.Upstream())
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil
	}
	if err := p.Home.Purge().Add(dir); err != nil {
		return err
	}
	p.logf("Scheduled %s for purging", dir)
	return nil
}

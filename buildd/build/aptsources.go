package build

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"buildd/internal/machine"
	"buildd/internal/machine/sandbox"
)

// extraSourcesFile is where a dist's apt_sources go inside the snapshot.
const extraSourcesFile = "/etc/apt/sources.list.d/buildd-extra.list"

// aptSources checks the dist's apt_sources lines and returns the local
// directories their file: URIs name (file:/x and file:///x), in order,
// without duplicates, each checked with sandbox.CheckBind against the tree
// root. An error names the config line.
func aptSources(where, root string, lines []string) ([]string, error) {
	var dirs []string
	seen := map[string]bool{}
	for i, l := range lines {
		dir, err := aptSourceDir(l)
		if err == nil && dir != "" && !seen[dir] {
			seen[dir] = true
			dirs = append(dirs, dir)
			err = sandbox.CheckBind(root, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%s apt_sources[%d] %q: %w", where, i+1, l, err)
		}
	}
	return dirs, nil
}

// aptSourceDir checks one one-line-style source ("deb [opts] URI SUITE
// [COMPONENT...]") and returns the directory of a file: URI, else "".
func aptSourceDir(line string) (string, error) {
	if strings.ContainsAny(line, "\n\r#") {
		return "", fmt.Errorf("not a single source line")
	}
	w := strings.Fields(line)
	if len(w) == 0 || (w[0] != "deb" && w[0] != "deb-src") {
		return "", fmt.Errorf(`not a "deb" or "deb-src" line`)
	}
	i := 1
	if i < len(w) && strings.HasPrefix(w[i], "[") {
		for i < len(w) && !strings.HasSuffix(w[i], "]") {
			i++
		}
		if i == len(w) {
			return "", fmt.Errorf("options not closed by ]")
		}
		i++
	}
	if len(w) < i+2 {
		return "", fmt.Errorf("no URI and suite")
	}
	uri, suite := w[i], w[i+1]
	if !strings.HasSuffix(suite, "/") && len(w) < i+3 {
		return "", fmt.Errorf("no component after suite %s", suite)
	}
	rest, ok := strings.CutPrefix(uri, "file:")
	if !ok {
		return "", nil
	}
	if strings.HasPrefix(rest, "//") {
		if !strings.HasPrefix(rest, "///") {
			return "", fmt.Errorf("file: URI with a host: write file:/PATH or file:///PATH")
		}
		rest = rest[2:]
	}
	dir := rest
	if len(dir) > 1 {
		dir = strings.TrimSuffix(dir, "/")
	}
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" || strings.Contains(dir, "%") {
		return "", fmt.Errorf("file: path %s is not an absolute, clean directory other than /", rest)
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", err
	} else if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", dir)
	}
	return dir, nil
}

// extraSources writes the dist's apt_sources into the snapshot and records
// the directories the apt steps bind. It fails the build (given back,
// fetch-src) on a bad line.
func (b *builder) extraSources() bool {
	d := b.job.Dist
	if len(d.AptSources) == 0 {
		return true
	}
	where := fmt.Sprintf("[[dist]] %s", d.DistName)
	if b.cfg.File != "" {
		where = fmt.Sprintf("%s:%d: %s", b.cfg.File, d.Line, where)
	}
	dirs, err := aptSources(where, b.root, d.AptSources)
	if err == nil {
		err = writeInTree(b.root, extraSourcesFile, "# buildd: apt_sources of "+where+"\n"+strings.Join(d.AptSources, "\n")+"\n")
	}
	if err != nil {
		b.fail(GivenBack, StageFetch, err.Error())
		return false
	}
	fmt.Fprintf(b.log, "Extra apt sources (%s):\n  %s\n", extraSourcesFile, strings.Join(d.AptSources, "\n  "))
	for _, dir := range dirs {
		fmt.Fprintf(b.log, "Bound read-only for the apt steps: %s\n", dir)
	}
	b.binds = dirs
	return true
}

// writeInTree writes a file at path inside the tree root, refusing to
// follow a symlink anywhere on the way (it could lead out of the tree).
func writeInTree(root, path, text string) error {
	if err := machine.DirInTree(root, filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	full := filepath.Join(root, path)
	tmp := full + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, full)
}

// fileInTree checks that path inside the tree root is a regular file reached
// without symlinks. What the build user made (the unpacked source, the built
// files) must be checked so before buildd, as root on the host, reads or
// writes it; no process of the sandbox is alive then to change it.
func fileInTree(root, path string) error {
	if err := machine.DirInTree(root, filepath.Dir(path)); err != nil {
		return err
	}
	fi, err := os.Lstat(filepath.Join(root, path))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s in %s is not a regular file (%s)", path, root, fi.Mode().Type())
	}
	return nil
}

// mountedUnder fails if anything is mounted at or below dir in buildd's
// mount namespace. The sandboxes' mounts (local archives included) live in
// their own namespaces, gone when a step ends; this makes sure deleting the
// snapshot can never recurse into a mounted directory.
func mountedUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := sandbox.UnescapeMountPath(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			return fmt.Errorf("refusing to delete %s: %s is mounted there", dir, mp)
		}
	}
	return nil
}

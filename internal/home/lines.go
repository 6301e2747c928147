package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"buildd/internal/atomicfile"
)

// LockTimeout bounds how long a program waits for a shared file's lock.
const LockTimeout = 30 * time.Second

// lineFile is a shared text file of one record a line, rewritten whole
// under its lock; perm is its mode (0 for 0644).
type lineFile struct {
	path string
	perm os.FileMode
}

// read returns the file's lines; a missing file has none.
func (lf lineFile) read() ([]string, error) {
	b, err := os.ReadFile(lf.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := strings.Split(string(b), "\n")
	if n := len(out); n > 0 && out[n-1] == "" {
		out = out[:n-1]
	}
	return out, nil
}

// update rewrites the file with what f returns from its current lines,
// under the lock. When f returns an error, or the lines unchanged, nothing
// is written.
func (lf lineFile) update(f func(lines []string) ([]string, error)) error {
	if err := os.MkdirAll(filepath.Dir(lf.path), 0o755); err != nil {
		return err
	}
	l, err := LockFile(lf.path, LockTimeout)
	if err != nil {
		return err
	}
	defer l.Unlock()
	lines, err := lf.read()
	if err != nil {
		return err
	}
	out, err := f(slices.Clone(lines))
	if err != nil || slices.Equal(out, lines) {
		return err
	}
	var b strings.Builder
	for _, s := range out {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	perm := lf.perm
	if perm == 0 {
		perm = 0o644
	}
	return atomicfile.WriteFile(lf.path, []byte(b.String()), perm)
}

// LineError is a bad line in a home file: "REDO:12: bad line "..."".
type LineError struct {
	File string
	Line int
	Text string
	Why  string
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %s %q", filepath.Base(e.File), e.Line, e.Why, e.Text)
}

// Means tells whether a record that names dist and arch is about the
// queue a caller means (see config.Config.Means). arch is "" in a record
// that names only its dist (a line of a classic format, or one written
// before the host built several architectures of that dist): it means the
// dist's only architecture on the host, and none when the host builds the
// dist for several, which the error says.
type Means func(dist, arch string) (bool, error)

// JoinDistArch is how the home's lines name a build's queue: DIST/ARCH,
// or DIST alone when arch is "".
func JoinDistArch(dist, arch string) string {
	if arch == "" {
		return dist
	}
	return dist + "/" + arch
}

// SplitDistArch reads a queue as the home's lines name it: DIST/ARCH, or
// DIST alone (arch "").
func SplitDistArch(s string) (dist, arch string, err error) {
	dist, arch, slash := strings.Cut(s, "/")
	if dist == "" || slash && (arch == "" || strings.Contains(arch, "/")) {
		return "", "", fmt.Errorf("%q is not DIST or DIST/ARCH", s)
	}
	return dist, arch, nil
}

// RedoEntry is one line of build/REDO: "pkg_version dist/arch [binNMU
// changelog]". A line of the classic form names the dist alone
// ("pkg_version dist ..."): Arch is "" (see Means).
type RedoEntry struct {
	PkgVersion string `json:"pkgv"` // name_version
	Dist       string `json:"dist"`
	Arch       string `json:"arch,omitempty"`      // "": the line names the dist alone
	BinNMU     int    `json:"binnmu,omitempty"`    // 0: not a binNMU
	Changelog  string `json:"changelog,omitempty"` // binNMU changelog text
}

func (e RedoEntry) String() string {
	if e.BinNMU > 0 {
		return fmt.Sprintf("%s %s %d %s", e.PkgVersion, e.Where(), e.BinNMU, e.Changelog)
	}
	return e.PkgVersion + " " + e.Where()
}

// Where is e's queue as its line names it: DIST/ARCH, or DIST alone.
func (e RedoEntry) Where() string { return JoinDistArch(e.Dist, e.Arch) }

// Named names e's build in messages, as log mail subjects do:
// "PKG_VERSION on ARCH (dist=DIST)" ("PKG_VERSION (dist=DIST)" when the
// line names the dist alone).
func (e RedoEntry) Named() string {
	if e.Arch == "" {
		return fmt.Sprintf("%s (dist=%s)", e.PkgVersion, e.Dist)
	}
	return fmt.Sprintf("%s on %s (dist=%s)", e.PkgVersion, e.Arch, e.Dist)
}

// ParseRedoLine parses one REDO line.
func ParseRedoLine(s string) (RedoEntry, error) {
	f := strings.Fields(s)
	if len(f) < 2 || !strings.Contains(f[0], "_") || strings.HasPrefix(f[0], "_") || strings.HasSuffix(f[0], "_") {
		return RedoEntry{}, errors.New("bad line")
	}
	dist, arch, err := SplitDistArch(f[1])
	if err != nil {
		return RedoEntry{}, errors.New("bad dist/arch in line")
	}
	e := RedoEntry{PkgVersion: f[0], Dist: dist, Arch: arch}
	if len(f) > 2 {
		n, err := strconv.Atoi(f[2])
		if err != nil || n < 1 {
			return RedoEntry{}, errors.New("bad binNMU number in line")
		}
		e.BinNMU = n
		e.Changelog = strings.Join(f[3:], " ")
	}
	return e, nil
}

// REDOFile is build/REDO.
type REDOFile struct{ path string }

// Path is the file's path.
func (r *REDOFile) Path() string { return r.path }

func parseRedo(path string, lines []string) ([]RedoEntry, []error) {
	var out []RedoEntry
	var bad []error
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		e, err := ParseRedoLine(l)
		if err != nil {
			bad = append(bad, &LineError{path, i + 1, l, err.Error()})
			continue
		}
		out = append(out, e)
	}
	return out, bad
}

// Read returns the entries; bad lines come back as *LineError (buildd logs
// them; they stay in the file until an admin mends them).
func (r *REDOFile) Read() ([]RedoEntry, []error, error) {
	lines, err := lineFile{path: r.path}.read()
	if err != nil {
		return nil, nil, err
	}
	es, bad := parseRedo(r.path, lines)
	return es, bad, nil
}

// Add appends entries, skipping any already present for the same package
// version, dist and arch. Bad lines are kept (see Edit).
func (r *REDOFile) Add(add ...RedoEntry) error {
	return r.Update(func(es []RedoEntry) []RedoEntry {
		for _, a := range add {
			dup := false
			for _, e := range es {
				if e.PkgVersion == a.PkgVersion && e.Dist == a.Dist && e.Arch == a.Arch {
					dup = true
				}
			}
			if !dup {
				es = append(es, a)
			}
		}
		return es
	})
}

// Remove deletes the entries for which drop returns true. Bad lines are
// kept (see Edit).
func (r *REDOFile) Remove(drop func(RedoEntry) bool) error {
	return r.Update(func(es []RedoEntry) []RedoEntry {
		var keep []RedoEntry
		for _, e := range es {
			if !drop(e) {
				keep = append(keep, e)
			}
		}
		return keep
	})
}

// Update is Edit for callers that learn of bad lines from Read.
func (r *REDOFile) Update(f func([]RedoEntry) []RedoEntry) error {
	_, err := r.Edit(f)
	return err
}

// Edit rewrites the file with f's result, under the lock. Lines that do
// not parse are kept verbatim, so an admin's typo is not lost: each stays
// after the entry it followed (the nearest earlier one that f kept, else
// at the top), and comes back as a *LineError ("REDO:12: bad line ...")
// with its line number before the rewrite. Blank lines are dropped.
func (r *REDOFile) Edit(f func([]RedoEntry) []RedoEntry) (bad []error, err error) {
	err = lineFile{path: r.path}.update(func(lines []string) ([]string, error) {
		var old []RedoEntry
		// follow[k]: the bad lines (indexes into lines) after the k-th old
		// entry, k counted from 1; follow[0]: those before the first.
		follow := [][]int{nil}
		for i, l := range lines {
			if strings.TrimSpace(l) == "" {
				continue
			}
			e, perr := ParseRedoLine(l)
			if perr != nil {
				bad = append(bad, &LineError{r.path, i + 1, l, perr.Error()})
				follow[len(old)] = append(follow[len(old)], i)
				continue
			}
			old = append(old, e)
			follow = append(follow, nil)
		}
		entries := f(append([]RedoEntry(nil), old...))
		if len(bad) == 0 {
			out := make([]string, len(entries))
			for i, e := range entries {
				out[i] = e.String()
			}
			return out, nil
		}

		// The old entries f kept (the first ones of each value, as many
		// as it returned) keep their bad lines; a dropped entry's go to
		// the nearest earlier kept one, or to the top.
		wanted := map[RedoEntry]int{}
		for _, e := range entries {
			wanted[e]++
		}
		carry := make([][]int, len(old)+1) // carry[k]: the bad lines written after old entry k
		keptAt := map[RedoEntry][]int{}    // the kept old entries of each value, in file order
		carry[0] = follow[0]
		anchor := 0
		for k, e := range old {
			if wanted[e] > 0 {
				wanted[e]--
				anchor = k + 1
				keptAt[e] = append(keptAt[e], anchor)
			}
			carry[anchor] = append(carry[anchor], follow[k+1]...)
		}
		var out []string
		write := func(k int) {
			for _, i := range carry[k] {
				out = append(out, lines[i])
			}
		}
		write(0)
		for _, e := range entries {
			out = append(out, e.String())
			if ks := keptAt[e]; len(ks) > 0 {
				write(ks[0])
				keptAt[e] = ks[1:]
			}
		}
		return out, nil
	})
	return bad, err
}

// SkipFile is build/SKIP: builds buildd must not do, one a line.
// "pkg_version dist/arch" names the build of that version in one dist for
// one architecture (what buildd-mail writes when a newer version
// superseded it there); "pkg_version" alone, the classic form admins
// write by hand, names it in every dist and architecture; "pkg_version
// dist" names it in the dist's only architecture on the host, and nothing
// when the host builds the dist for several (see Means). buildd consumes
// a line when it skips a build the line names. A line of any other form
// names nothing and is kept as it is.
type SkipFile struct{ path string }

// skipNames reports whether line names the build of pkgv that means
// stands for; the error is an ambiguous line's (see Means).
func skipNames(line, pkgv string, means Means) (bool, error) {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != pkgv {
		return false, nil
	}
	switch len(f) {
	case 1:
		return true, nil
	case 2:
		dist, arch, err := SplitDistArch(f[1])
		if err != nil {
			return false, nil
		}
		return means(dist, arch)
	}
	return false, nil
}

// Add appends the line for pkgv in dist for arch (dist "" for every dist
// and architecture) unless it is there already.
func (s *SkipFile) Add(pkgv, dist, arch string) error {
	if pkgv == "" || strings.ContainsFunc(pkgv+dist+arch, unicode.IsSpace) || strings.Contains(dist+arch, "/") || (dist == "") != (arch == "") {
		return fmt.Errorf("%s: cannot add %q for %q: a line is PKG_VERSION [DIST/ARCH], without blanks", s.path, pkgv, JoinDistArch(dist, arch))
	}
	line := pkgv
	if dist != "" {
		line += " " + JoinDistArch(dist, arch)
	}
	return lineFile{path: s.path}.update(func(lines []string) ([]string, error) {
		for _, l := range lines {
			if strings.Join(strings.Fields(l), " ") == line {
				return lines, nil
			}
		}
		return append(lines, line), nil
	})
}

// Take reports whether a line names the build of pkgv that means stands
// for, removing every line that does. A missing file names nothing and is
// not created. A line naming pkgv in a dist without its architecture that
// the host builds for several names nothing and is kept; the error (a
// *LineError for each) says so, beside the result.
func (s *SkipFile) Take(pkgv string, means Means) (bool, error) {
	lines, err := lineFile{path: s.path}.read()
	if err != nil {
		return false, err
	}
	var bad []error
	named := false
	for i, l := range lines {
		ok, err := skipNames(l, pkgv, means)
		if err != nil {
			bad = append(bad, &LineError{s.path, i + 1, l, err.Error() + " in line"})
		}
		named = named || ok
	}
	if !named {
		return false, errors.Join(bad...)
	}
	found := false
	err = lineFile{path: s.path}.update(func(lines []string) ([]string, error) {
		var keep []string
		for _, l := range lines {
			if ok, _ := skipNames(l, pkgv, means); ok {
				found = true
				continue
			}
			keep = append(keep, l)
		}
		return keep, nil
	})
	return found, errors.Join(append(bad, err)...)
}

// PurgeFile is build/PURGE: directories to delete, one a line.
type PurgeFile struct{ path string }

// Add appends directories.
func (p *PurgeFile) Add(dirs ...string) error {
	return lineFile{path: p.path}.update(func(lines []string) ([]string, error) {
		return append(lines, dirs...), nil
	})
}

// Drain hands every line to do and keeps only those do fails on.
func (p *PurgeFile) Drain(do func(dir string) error) error {
	return lineFile{path: p.path}.update(func(lines []string) ([]string, error) {
		var keep []string
		for _, l := range lines {
			if strings.TrimSpace(l) == "" {
				continue
			}
			if err := do(l); err != nil {
				keep = append(keep, l)
			}
		}
		return keep, nil
	})
}

// OutdatedFile is outdated-packages: "old_pkgv new_pkgv unixtime
// dist/arch". A line of the classic form names the dist alone (see
// Means).
type OutdatedFile struct{ path string }

// OutdatedKeep is how long an outdated-packages entry is kept.
const OutdatedKeep = 21 * 24 * time.Hour

// Add records that old was superseded by new in dist for arch, dropping
// entries older than OutdatedKeep.
func (o *OutdatedFile) Add(old, new, dist, arch string, now time.Time) error {
	if old == "" || new == "" || dist == "" || arch == "" || strings.ContainsFunc(old+new+dist+arch, unicode.IsSpace) || strings.Contains(dist+arch, "/") {
		return fmt.Errorf("%s: cannot add %q %q for %q: a line is OLD NEW UNIXTIME DIST/ARCH, without blanks", o.path, old, new, JoinDistArch(dist, arch))
	}
	return lineFile{path: o.path}.update(func(lines []string) ([]string, error) {
		var keep []string
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) != 4 {
				continue
			}
			sec, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || now.Sub(time.Unix(sec, 0)) > OutdatedKeep {
				continue
			}
			keep = append(keep, l)
		}
		return append(keep, fmt.Sprintf("%s %s %d %s", old, new, now.Unix(), JoinDistArch(dist, arch))), nil
	})
}

// IsOutdated reports whether pkgv was recorded as superseded in the dist
// and arch means stands for, and by what. A classic line naming a dist
// that the host builds for several architectures names none of them; the
// error (a *LineError) says so when no line names pkgv there.
func (o *OutdatedFile) IsOutdated(pkgv string, means Means) (string, bool, error) {
	lines, err := lineFile{path: o.path}.read()
	if err != nil {
		return "", false, err
	}
	var bad []error
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] != pkgv {
			continue
		}
		dist, arch, err := SplitDistArch(f[3])
		if err != nil {
			continue
		}
		ok, err := means(dist, arch)
		if err != nil {
			bad = append(bad, &LineError{o.path, i + 1, l, err.Error() + " in line"})
		}
		if ok {
			return f[1], true, nil
		}
	}
	return "", false, errors.Join(bad...)
}

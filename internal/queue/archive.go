package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"buildd/internal/control"
	"buildd/internal/debversion"
)

// MergeFiles are the inputs of --merge-v3, in the classic argument order
// "Packages... . Sources... [. Packages-for-deps... [. Packages-arch-specific...]]".
type MergeFiles struct {
	Packages     []string // binaries in the archive for the architecture (and all)
	Sources      []string
	DepPackages  []string // binaries available for build dependencies; default Packages
	ArchSpecific []string // Packages-arch-specific files
}

// ParseMergeArgs splits the --merge-v3 arguments at the "." separators.
func ParseMergeArgs(args []string) (MergeFiles, error) {
	var groups [][]string
	cur := []string{}
	for _, a := range args {
		if a == "." {
			groups = append(groups, cur)
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	groups = append(groups, cur)
	if len(groups) > 4 || len(groups) < 2 || len(groups[0]) == 0 || len(groups[1]) == 0 {
		return MergeFiles{}, errors.New("usage: --merge-v3 PACKAGES... . SOURCES... [. PACKAGES-FOR-DEPS... [. PACKAGES-ARCH-SPECIFIC...]]")
	}
	m := MergeFiles{Packages: groups[0], Sources: groups[1]}
	if len(groups) > 2 {
		m.DepPackages = groups[2]
	}
	if len(groups) > 3 {
		m.ArchSpecific = groups[3]
	}
	if len(m.DepPackages) == 0 {
		m.DepPackages = m.Packages
	}
	return m, nil
}

// Source statuses of a merge, kept in a record's Notes.
const (
	StatusInstalled     = "installed"
	StatusOutOfDate     = "out-of-date"
	StatusUncompiled    = "uncompiled"
	StatusNotInArchList = "arch-not-in-arch-list"
	StatusArchSpecific  = "packages-arch-specific"
	StatusArchAll       = "overwritten-by-arch-all"
	StatusArchAllOnly   = "arch-all-only"
)

// Source is the newest version of one source package in the archive and
// what the archive holds of its binaries for the architecture.
type Source struct {
	Name, Version     string
	Section, Priority string
	Binaries          []string
	BuildDepends      string // Build-Depends and Build-Depends-Arch
	BuildConflicts    string // Build-Conflicts and Build-Conflicts-Arch
	Status            string
	BinNMU            int // highest binNMU of the installed binaries
	forUs             bool
	allOnly           bool
	compiled          bool
	installed         bool
}

type binPkg struct {
	version string // the source version it was built from
	all     bool
}

// Archive is what --merge-v3 read from the indexes for one architecture.
type Archive struct {
	Arch     string
	Sources  map[string]*Source
	binaries map[string]binPkg // Packages: name → newest
	// Available is the newest version of each binary package available for
	// build dependencies (Packages-for-deps), for Dep-Wait.
	Available   map[string]string
	DepPackages []string
}

// Names returns the source names in order.
func (a *Archive) Names() []string {
	names := make([]string, 0, len(a.Sources))
	for n := range a.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// pasEntry is one line of Packages-arch-specific.
type pasEntry struct {
	arches   []string
	positive bool
}

func (p *pasEntry) ignores(arch string) bool {
	if p == nil {
		return false
	}
	for _, a := range p.arches {
		neg := strings.HasPrefix(a, "!")
		if control.ArchMatches(strings.TrimPrefix(a, "!"), arch) {
			return neg
		}
	}
	return p.positive
}

func readPAS(files []string) (map[string]*pasEntry, error) {
	pas := map[string]*pasEntry{}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			l := sc.Text()
			if i := strings.IndexByte(l, '#'); i >= 0 {
				l = l[:i]
			}
			l = strings.TrimSpace(l)
			if l == "" {
				continue
			}
			p, arches, ok := strings.Cut(l, ":")
			if !ok || strings.TrimSpace(p) == "" {
				f.Close()
				return nil, fmt.Errorf("%s:%d: expected \"package: arch...\", got %q", name, n, l)
			}
			list := strings.Fields(arches)
			pas[strings.TrimSpace(p)] = &pasEntry{arches: list, positive: len(list) == 0 || !strings.HasPrefix(list[0], "!")}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return pas, nil
}

// eachParagraph reads every paragraph of the control files, keeping the
// named fields.
func eachParagraph(files []string, keep []string, fn func(name string, p *control.Paragraph) error) error {
	for _, name := range files {
		rc, err := control.Open(name)
		if err != nil {
			return err
		}
		rd := control.NewReader(rc, name).Keep(keep...)
		for {
			p, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err == nil {
				err = fn(name, p)
			}
			if err != nil {
				rc.Close()
				return err
			}
		}
		if err := rc.Close(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func need(name string, p *control.Paragraph, field string) (string, error) {
	v := p.Get(field)
	if v == "" {
		return "", fmt.Errorf("%s:%d: paragraph has no %s field", name, p.Line, field)
	}
	return v, nil
}

func checkVersion(name string, p *control.Paragraph, v string) error {
	if _, err := debversion.Parse(v); err != nil {
		f, _ := p.Lookup("Version")
		return fmt.Errorf("%s:%d: %v", name, f.Line, err)
	}
	return nil
}

func joinRel(a, b string) string {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ", " + b
}

// ReadArchive reads the indexes of a merge for arch. A malformed paragraph
// is an error naming the file and the line.
func ReadArchive(arch string, files MergeFiles) (*Archive, error) {
	pas, err := readPAS(files.ArchSpecific)
	if err != nil {
		return nil, err
	}
	a := &Archive{Arch: arch, Sources: make(map[string]*Source, 40000), binaries: make(map[string]binPkg, 80000),
		DepPackages: files.DepPackages}
	err = eachParagraph(files.Sources, []string{"Package", "Version", "Binary", "Architecture", "Section", "Priority",
		"Build-Depends", "Build-Depends-Arch", "Build-Conflicts", "Build-Conflicts-Arch"},
		func(file string, p *control.Paragraph) error {
			name, err := need(file, p, "Package")
			if err != nil {
				return err
			}
			version, err := need(file, p, "Version")
			if err != nil {
				return err
			}
			if err := checkVersion(file, p, version); err != nil {
				return err
			}
			archField, err := need(file, p, "Architecture")
			if err != nil {
				return err
			}
			forUs, allOnly := false, true
			for _, w := range strings.Fields(archField) {
				if w == "all" {
					continue
				}
				allOnly = false
				if control.ArchMatches(w, arch) {
					forUs = true
				}
			}
			if old := a.Sources[name]; old != nil && debversion.Compare(old.Version, version) > 0 {
				return nil
			}
			a.Sources[name] = &Source{
				Name: name, Version: version, Section: p.Get("Section"), Priority: p.Get("Priority"),
				Binaries:       strings.FieldsFunc(p.Get("Binary"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }),
				BuildDepends:   joinRel(p.Get("Build-Depends"), p.Get("Build-Depends-Arch")),
				BuildConflicts: joinRel(p.Get("Build-Conflicts"), p.Get("Build-Conflicts-Arch")),
				forUs:          forUs,
				allOnly:        allOnly,
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	binFields := []string{"Package", "Version", "Architecture", "Source"}
	a.Available = make(map[string]string, 80000)
	sameDeps := slices.Equal(files.DepPackages, files.Packages) || len(files.DepPackages) == 0
	err = eachParagraph(files.Packages, binFields, func(file string, p *control.Paragraph) error {
		bin, srcName, version, binnmu, pkgArch, err := binaryOf(file, p)
		if err != nil || pkgArch != arch && pkgArch != "all" {
			return err
		}
		if sameDeps {
			a.available(bin, p.Get("Version"))
		}
		if old, ok := a.binaries[bin]; !ok || debversion.Compare(old.version, version) < 0 {
			a.binaries[bin] = binPkg{version: version, all: pkgArch == "all"}
		}
		if pkgArch == "all" {
			return nil
		}
		s := a.Sources[srcName]
		if s == nil {
			return nil
		}
		s.compiled = true
		if s.Version != version {
			return nil
		}
		s.installed = true
		s.BinNMU = max(s.BinNMU, binnmu)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sameDeps {
		err = eachParagraph(files.DepPackages, binFields, func(file string, p *control.Paragraph) error {
			bin, _, _, _, pkgArch, err := binaryOf(file, p)
			if err != nil || pkgArch != arch && pkgArch != "all" {
				return err
			}
			a.available(bin, p.Get("Version"))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, s := range a.Sources {
		a.classify(s, pas)
	}
	return a, nil
}

func (a *Archive) available(bin, version string) {
	if old, ok := a.Available[bin]; !ok || debversion.Compare(old, version) < 0 {
		a.Available[bin] = version
	}
}

// binaryOf reads a Packages paragraph: the source name and version it was
// built from (the binNMU suffix split off).
func binaryOf(file string, p *control.Paragraph) (bin, src, version string, binnmu int, arch string, err error) {
	if bin, err = need(file, p, "Package"); err != nil {
		return
	}
	if version, err = need(file, p, "Version"); err != nil {
		return
	}
	if err = checkVersion(file, p, version); err != nil {
		return
	}
	if arch, err = need(file, p, "Architecture"); err != nil {
		return
	}
	if i := strings.LastIndex(version, "+b"); i > 0 {
		if n, e := strconv.Atoi(version[i+2:]); e == nil {
			version, binnmu = version[:i], n
		}
	}
	src = bin
	if s := p.Get("Source"); s != "" {
		name, rest, hasVer := strings.Cut(s, " ")
		src = name
		if hasVer {
			version = strings.Trim(strings.TrimSpace(rest), "()")
		}
	}
	return
}

// classify sets s.Status as the classic merge does.
func (a *Archive) classify(s *Source, pas map[string]*pasEntry) {
	if s.allOnly {
		s.Status = StatusArchAllOnly
		return
	}
	switch {
	case s.installed:
		s.Status = StatusInstalled
	case s.compiled:
		s.Status = StatusOutOfDate
	default:
		s.Status = StatusUncompiled
	}
	if !s.forUs && s.Status != StatusInstalled {
		s.Status = StatusNotInArchList
	}
	if pas["%"+s.Name].ignores(a.Arch) {
		s.Status = StatusArchSpecific
		return
	}
	if len(s.Binaries) == 0 {
		return
	}
	anyPAS := false
	for _, bin := range s.Binaries {
		if pas[bin].ignores(a.Arch) {
			anyPAS = true
			continue
		}
		if b, ok := a.binaries[bin]; ok && b.all {
			continue
		}
		return
	}
	if anyPAS {
		s.Status = StatusArchSpecific
	} else {
		s.Status = StatusArchAll
	}
}

// overwritten returns a binary of s that the archive has, for this
// architecture, from a newer source version, and that version; "" when
// there is none.
func (a *Archive) overwritten(s *Source) (bin, version string) {
	for _, bin := range s.Binaries {
		if b, ok := a.binaries[bin]; ok && !b.all && debversion.Compare(s.Version, b.version) < 0 {
			return bin, b.version
		}
	}
	return "", ""
}

package daemon

import (
	"fmt"
	"regexp"
	"slices"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/queue"
)

// Skipped is a listed package the dist's rules leave alone, and why.
type Skipped struct {
	PkgVersion string
	Why        string
}

// SelectQueue orders the packages of dist's needs-build list to try
// taking: first those the dist's rules allow, in the queue's order, then
// the weak_no_auto_build ones, which are taken only when nothing else is
// left. It leaves out no_auto_build packages, those given back less than
// delay_after_give_back ago (givenBack), those no_build_regex rejects or
// build_regex does not accept (matched, as the classic buildd does,
// against "SECTION/PKG_VERSION" as wanna-build lists it) and those busy
// says are building here already.
func SelectQueue(d *config.Dist, listed []queue.Candidate, slotKiB int64, busy func(pkgv string) bool) (take []queue.Candidate, skipped []Skipped, err error) {
	noBuild, build, err := distRegexps(d)
	if err != nil {
		return nil, nil, err
	}
	var weak []queue.Candidate
	for _, l := range listed {
		pkgv := l.PkgVersion()
		listedAs := pkgv
		if l.Section != "" {
			listedAs = l.Section + "/" + pkgv
		}
		switch {
		case noBuild != nil && noBuild.MatchString(listedAs):
			skipped = append(skipped, Skipped{pkgv, "no_build_regex"})
		case build != nil && !build.MatchString(listedAs):
			skipped = append(skipped, Skipped{pkgv, "build_regex"})
		case slices.Contains(d.NoAutoBuild, l.Name):
			skipped = append(skipped, Skipped{pkgv, "no_auto_build"})
		case slotKiB > 0 && l.Memory > slotKiB:
			skipped = append(skipped, Skipped{pkgv, fmt.Sprintf("too big for this builder's slots: expected to need %d MiB, a slot has %d MiB", l.Memory>>10, slotKiB>>10)})
		case busy != nil && busy(pkgv):
			skipped = append(skipped, Skipped{pkgv, "building already"})
		case slices.Contains(d.WeakNoAutoBuild, l.Name):
			weak = append(weak, l)
		default:
			take = append(take, l)
		}
	}
	return append(take, weak...), skipped, nil
}

func distRegexps(d *config.Dist) (noBuild, build *regexp.Regexp, err error) {
	if d.NoBuildRegex != "" {
		if noBuild, err = regexp.Compile(d.NoBuildRegex); err != nil {
			return nil, nil, fmt.Errorf("dist %s: no_build_regex: %w", d.DistName, err)
		}
	}
	if d.BuildRegex != "" {
		if build, err = regexp.Compile(d.BuildRegex); err != nil {
			return nil, nil, fmt.Errorf("dist %s: build_regex: %w", d.DistName, err)
		}
	}
	return noBuild, build, nil
}

// SelectREDO splits REDO's entries into at most n jobs to start now and
// the entries to keep. Distribution order from the config decides which
// lines win, then the order of the file. A job carries its architecture:
// an entry naming its dist alone (a classic line) is of the dist's only
// architecture in c; one whose dist c builds for several stays in REDO,
// and is returned in bad: the error, naming the line, says that its
// architecture is missing. An entry for a dist or architecture this host
// does not build, or one building here already (busy), stays in REDO.
func SelectREDO(c *config.Config, entries []home.RedoEntry, dists []config.Dist, n int, busy func(home.RedoEntry) bool) (take, keep []home.RedoEntry, bad []error) {
	taken := make([]bool, len(entries))
	job := make([]home.RedoEntry, len(entries)) // each entry with its arch, when it has one here
	for i, e := range entries {
		job[i] = e
		if e.Arch != "" {
			continue
		}
		d, err := c.Resolve(e.Dist, "")
		switch {
		case err == nil:
			job[i].Arch = d.BuiltArchitecture
		case len(c.Arches(e.Dist)) > 1:
			bad = append(bad, fmt.Errorf("REDO: %q: %w", e.String(), err))
		}
	}
	for _, d := range dists {
		for i, e := range job {
			if len(take) >= n {
				break
			}
			if taken[i] || e.Dist != d.DistName || e.Arch != d.BuiltArchitecture || (busy != nil && busy(e)) {
				continue
			}
			taken[i] = true
			if slices.ContainsFunc(take, func(t home.RedoEntry) bool { return t.Where() == e.Where() && t.PkgVersion == e.PkgVersion }) {
				continue // a second line for the same job goes
			}
			take = append(take, e)
		}
	}
	for i, e := range entries {
		if !taken[i] {
			keep = append(keep, e)
		}
	}
	return take, keep, bad
}

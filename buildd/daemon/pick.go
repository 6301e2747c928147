package daemon

import (
	"fmt"
	"regexp"
	"slices"
	"time"

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
func SelectQueue(d *config.Dist, listed []queue.Candidate, givenBack map[string]time.Time, busy func(pkgv string) bool) (take []queue.Candidate, skipped []Skipped, err error) {
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
		case !givenBack[pkgv].IsZero():
			skipped = append(skipped, Skipped{pkgv, "given back at " + givenBack[pkgv].Format(time.DateTime)})
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
// lines win, then the order of the file. An entry for a dist this host
// does not build, or one building here already (busy), stays in REDO.
func SelectREDO(entries []home.RedoEntry, dists []config.Dist, n int, busy func(dist, pkgv string) bool) (take, keep []home.RedoEntry) {
	taken := make([]bool, len(entries))
	for _, d := range dists {
		for i, e := range entries {
			if len(take) >= n {
				break
			}
			if taken[i] || e.Dist != d.DistName || (busy != nil && busy(e.Dist, e.PkgVersion)) {
				continue
			}
			dup := false
			for _, t := range take {
				dup = dup || (t.Dist == e.Dist && t.PkgVersion == e.PkgVersion)
			}
			if dup {
				taken[i] = true // a second line for the same job goes
				continue
			}
			taken[i] = true
			take = append(take, e)
		}
	}
	for i, e := range entries {
		if !taken[i] {
			keep = append(keep, e)
		}
	}
	return take, keep
}

package daemon

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
)

// Listed is one package a dist's queue lists as needing a build, in the
// queue's order (best first).
type Listed struct {
	PkgVersion string // name_version
	Section    string
	BinNMU     int
}

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
func SelectQueue(d *config.Dist, listed []Listed, givenBack map[string]time.Time, busy func(pkgv string) bool) (take []Listed, skipped []Skipped, err error) {
	noBuild, build, err := distRegexps(d)
	if err != nil {
		return nil, nil, err
	}
	var weak []Listed
	for _, l := range listed {
		name, _, _ := strings.Cut(l.PkgVersion, "_")
		listedAs := l.PkgVersion
		if l.Section != "" {
			listedAs = l.Section + "/" + l.PkgVersion
		}
		switch {
		case noBuild != nil && noBuild.MatchString(listedAs):
			skipped = append(skipped, Skipped{l.PkgVersion, "no_build_regex"})
		case build != nil && !build.MatchString(listedAs):
			skipped = append(skipped, Skipped{l.PkgVersion, "build_regex"})
		case slices.Contains(d.NoAutoBuild, name):
			skipped = append(skipped, Skipped{l.PkgVersion, "no_auto_build"})
		case !givenBack[l.PkgVersion].IsZero():
			skipped = append(skipped, Skipped{l.PkgVersion, "given back at " + givenBack[l.PkgVersion].Format(time.DateTime)})
		case busy != nil && busy(l.PkgVersion):
			skipped = append(skipped, Skipped{l.PkgVersion, "building already"})
		case slices.Contains(d.WeakNoAutoBuild, name):
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

package queue

import (
	"fmt"
	"sort"

	"buildd/internal/control"
	"buildd/internal/debversion"
)

// Notice is a mail the merge asks to send once its transaction is
// committed: the builder of a package that got a newer source version.
type Notice struct {
	Builder, Subject, Body string
}

// Installability is the result of the build-dependency check
// (dose-builddebcheck) of the merge: Checked maps a source name to the
// version checked, Problems the uninstallable ones to the explanation.
type Installability struct {
	Checked  map[string]string
	Problems map[string]string
}

// MergeStats counts what a merge did.
type MergeStats struct {
	Sources, New, Changed, Deleted, Unchanged int
}

// Merge applies the archive to the queue as the classic --merge-v3 does:
// installed → Installed; not for this architecture → Auto-Not-For-Us (a
// manual Not-For-Us is never overridden); uncompiled or out-of-date →
// Needs-Build unless that version is already further; sources gone from
// the archive are removed. Dep-Wait packages whose dependencies are now
// available go back to Needs-Build; inst (nil when not checked) moves
// packages between Needs-Build and BD-Uninstallable.
func (s *Session) Merge(tx Tx, a *Archive, inst *Installability) ([]Notice, MergeStats, error) {
	var notices []Notice
	var st MergeStats
	registered := map[string]*Record{}
	if err := tx.ForEach(func(r *Record) error { registered[r.Package] = r; return nil }); err != nil {
		return nil, st, err
	}
	for _, name := range a.Names() {
		src := a.Sources[name]
		st.Sources++
		r := registered[name]
		delete(registered, name)
		changed, n, err := s.mergeOne(tx, a, src, r)
		if err != nil {
			return nil, st, err
		}
		notices = append(notices, n...)
		switch {
		case changed && r == nil:
			st.New++
		case changed:
			st.Changed++
		default:
			st.Unchanged++
		}
	}
	for _, name := range sortedKeys(registered) {
		r := registered[name]
		s.vlog("merge-v3 %s_%s (%s, %s, previous: %s): deleted from database", name, r.Version, s.Arch, s.Dist, r.State)
		r.PreviousState, r.State = r.State, "deleted"
		if err := s.log(tx, r, "--merge-v3: deleted"); err != nil {
			return nil, st, err
		}
		if err := tx.Delete(name); err != nil {
			return nil, st, err
		}
		st.Deleted++
	}
	if err := s.resolveDepWait(tx, a); err != nil {
		return nil, st, err
	}
	if inst != nil {
		if err := s.applyInstallability(tx, inst); err != nil {
			return nil, st, err
		}
	}
	return notices, st, nil
}

func (s *Session) vlog(format string, args ...any) {
	if s.Verbose {
		s.printf(format+"\n", args...)
	}
}

func (s *Session) mergeOne(tx Tx, a *Archive, src *Source, r *Record) (bool, []Notice, error) {
	status := src.Status
	if r == nil {
		if status == StatusArchSpecific {
			return false, nil, nil
		}
		// A new source one of whose binaries a newer source now builds is
		// probably outdated: skipped, as the classic merge does, unless its
		// own binaries at this version are in the archive (README:
		// Deliberate differences).
		if bin, ver := a.overwritten(src); bin != "" && status != StatusInstalled {
			s.vlog("merge-v3 %s_%s (%s, %s): skipped because binaries (assumed to be) overwritten (%s, %s vs. %s)", src.Name, src.Version, s.Arch, s.Dist, bin, src.Version, ver)
			return false, nil, nil
		}
		r = &Record{Package: src.Name}
	}
	if status == StatusInstalled && src.Version == r.Version && src.BinNMU < r.BinNMU {
		status = StatusOutOfDate
	}
	logPrefix := fmt.Sprintf("merge-v3 %s_%s (%s, %s, previous: %s, %s):", src.Name, src.Version, s.Arch, s.Dist, r.Version, r.State)
	if r.State == NotForUs {
		return false, nil, nil
	}
	switch status {
	case StatusInstalled, StatusNotInArchList, StatusArchSpecific, StatusArchAll, StatusArchAllOnly:
		to := Installed
		if status != StatusInstalled {
			to = AutoNotForUs
			if r.State.in(Failed, FailedRemoved, DepWait, DepWaitRemoved) {
				return false, nil, nil
			}
		}
		change := false
		if r.State != to {
			s.change(r, to)
			if to == Installed {
				r.Depends, r.ExtraDepends, r.ExtraConflicts = "", "", ""
			}
			change = true
		}
		set := func(dst *string, v string) {
			if *dst != v {
				*dst, change = v, true
			}
		}
		set(&r.Version, src.Version)
		set(&r.Section, src.Section)
		set(&r.Priority, src.Priority)
		if to == Installed {
			set(&r.InstalledVersion, src.Version)
			if r.BinNMU != src.BinNMU {
				r.BinNMU, change = src.BinNMU, true
			}
		} else {
			set(&r.Notes, status)
		}
		if !change {
			return false, nil, nil
		}
		s.vlog("%s set to %s/%s", logPrefix, to, r.Notes)
		return true, nil, s.save(tx, r, "--merge-v3: "+string(to))
	}
	// Uncompiled or out-of-date: does it need building anew?
	if src.Version == r.Version && src.BinNMU >= r.BinNMU {
		return false, nil, nil
	}
	if src.Version == r.Version && r.State != Installed {
		return false, nil, nil
	}
	if r.State == FailedRemoved {
		return false, nil, nil
	}
	var notices []Notice
	if r.State.in(Building, Built, BuildAttempted) {
		notices = append(notices, Notice{
			Builder: r.Builder,
			Subject: fmt.Sprintf("new version of %s_%s (dist=%s)", r.Package, r.Version, s.Dist),
			Body: fmt.Sprintf("As far as I'm informed, you're currently building the package %s\n"+
				"in version %s.\n\n"+
				"Now there's a new source version %s. If you haven't finished\n"+
				"compiling %s yet, you can stop it to save some work.\n"+
				"Just to inform you...\n"+
				"(This is an automated message)\n", r.Package, r.Version, src.Version, r.Package),
		})
		s.vlog("%s new version while building %s -- sending mail to builder (%s)", logPrefix, r.Version, r.Builder)
	}
	s.change(r, NeedsBuild)
	r.Notes, r.Version, r.Section, r.Priority = status, src.Version, src.Section, src.Priority
	r.Builder, r.BuildPri = "", 0
	if src.BinNMU == 0 {
		r.BinNMU, r.BinNMUChangelog = 0, ""
	}
	s.vlog("%s set to needs-builds", logPrefix)
	return true, notices, s.save(tx, r, "--merge-v3: needs-build")
}

// resolveDepWait moves Dep-Wait packages whose every dependency is
// available in the Packages-for-deps to Needs-Build.
func (s *Session) resolveDepWait(tx Tx, a *Archive) error {
	var ready []*Record
	if err := tx.ForEachInState(DepWait, func(r *Record) error {
		if depsAvailable(r.Depends, a.Available) {
			ready = append(ready, r)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, r := range ready {
		s.change(r, NeedsBuild)
		r.Depends = ""
		s.vlog("merge-v3 %s_%s (%s, %s): dependencies available, from dep-wait to %s", r.Package, r.Version, s.Arch, s.Dist, r.State)
		if err := s.save(tx, r, "--merge-v3: dep-wait"); err != nil {
			return err
		}
	}
	return nil
}

// depsAvailable reports whether every relation of deps is satisfied by
// avail (binary name → newest version).
func depsAvailable(deps string, avail map[string]string) bool {
	rels, err := control.ParseRelations(deps)
	if err != nil || len(rels) == 0 {
		return false
	}
	for _, g := range rels {
		ok := false
		for _, rel := range g {
			if v, found := avail[rel.Name]; found && satisfies(v, rel.Op, rel.Version) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func satisfies(have, op, want string) bool {
	if op == "" {
		return true
	}
	c := debversion.Compare(have, want)
	switch op {
	case ">>":
		return c > 0
	case ">=", ">":
		return c >= 0
	case "=":
		return c == 0
	case "<=", "<":
		return c <= 0
	case "<<":
		return c < 0
	}
	return false
}

// applyInstallability moves checked packages between Needs-Build and
// BD-Uninstallable.
func (s *Session) applyInstallability(tx Tx, inst *Installability) error {
	var recs []*Record
	for _, st := range []State{NeedsBuild, BDUninstallable} {
		if err := tx.ForEachInState(st, func(r *Record) error {
			if v, ok := inst.Checked[r.Package]; ok && v == r.Version {
				recs = append(recs, r)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	for _, r := range recs {
		problem, bad := inst.Problems[r.Package]
		change := bad && r.State == NeedsBuild || !bad && r.State == BDUninstallable
		problemChange := bad && problem != r.BDProblem
		if !change && !problemChange {
			continue
		}
		action := ""
		if change {
			if bad {
				s.change(r, BDUninstallable)
			} else {
				s.change(r, NeedsBuild)
			}
			action = "--merge-all (edos)"
			s.vlog("edos-builddebchange changed state of %s_%s (%s) to %s", r.Package, r.Version, s.Arch, r.State)
		}
		if bad {
			r.BDProblem = problem
		}
		if err := s.save(tx, r, action); err != nil {
			return err
		}
	}
	return nil
}

// InstallCandidates are the sources whose build dependencies the merge
// should check: those it will leave in Needs-Build or BD-Uninstallable.
func (s *Session) InstallCandidates(tx Tx, a *Archive) ([]*Source, error) {
	var out []*Source
	seen := map[string]bool{}
	for _, name := range a.Names() {
		src := a.Sources[name]
		if src.Status == StatusUncompiled || src.Status == StatusOutOfDate {
			out = append(out, src)
			seen[name] = true
		}
	}
	for _, st := range []State{NeedsBuild, BDUninstallable, DepWait} {
		if err := tx.ForEachInState(st, func(r *Record) error {
			if src := a.Sources[r.Package]; src != nil && !seen[r.Package] {
				out = append(out, src)
				seen[r.Package] = true
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sortedKeys(m map[string]*Record) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

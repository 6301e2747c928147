package queue

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"buildd/internal/debversion"
)

// TimeFormat is how state change times are printed (UTC), as the classic
// tool's $curr_date.
const TimeFormat = "2006 Jan 02 15:04:05"

// List prints the records in state (or "all") in the classic format and
// order, ending with "Total N package(s)". user (-U) restricts the list to
// that builder's packages and Needs-Build ones; minAge (--min-age) keeps
// those in their state for more than minAge days, a negative one (--max-age)
// those for less than -minAge days.
func (s *Session) List(tx Tx, state, user string, minAge int) error {
	all := strings.EqualFold(state, "all")
	var recs []*Record
	keep := func(r *Record) error {
		if user != "" && r.State != NeedsBuild && r.Builder != user {
			return nil
		}
		age := s.Now.Unix() - r.StateChange
		if minAge > 0 && age <= int64(minAge)*86400 || minAge < 0 && age >= int64(-minAge)*86400 {
			return nil
		}
		if s.API < 1 && (r.ExtraDepends != "" || r.ExtraConflicts != "") {
			return nil
		}
		recs = append(recs, r)
		return nil
	}
	if all {
		if err := tx.ForEach(keep); err != nil {
			return err
		}
	} else {
		st, ok := ParseState(state)
		if !ok {
			return fmt.Errorf("Unknown state to list: %s", state)
		}
		if err := tx.ForEachInState(st, keep); err != nil {
			return err
		}
	}
	perState := map[State]int{}
	var b strings.Builder
	for _, p := range SortForBuild(recs, s.Now) {
		s.listOne(&b, p, all)
		perState[p.State]++
		if b.Len() > 64<<10 {
			s.printf("%s", b.String())
			b.Reset()
		}
	}
	if all {
		keys := make([]string, 0, len(perState))
		for st := range perState {
			keys = append(keys, string(st))
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "Total %d package(s) in state %s.\n", perState[State(k)], k)
		}
	}
	fmt.Fprintf(&b, "Total %d package(s)\n", len(recs))
	s.printf("%s", b.String())
	return nil
}

// Bracket is the text between [] in a list line:
// "priority:notes[:PREV-FAILED][:bp{N}][:binNMU{N}]:calprio{N}:days{N}".
func Bracket(p Prioritized) string {
	c := p.Priority + ":" + p.Notes
	if strings.HasPrefix(string(p.PreviousState), "Failed") {
		c += ":PREV-FAILED"
	}
	if bp := p.BuildPri + p.PermBuildPri; bp != 0 {
		c += ":bp{" + strconv.Itoa(bp) + "}"
	}
	if p.BinNMU > 0 {
		c += ":binNMU{" + strconv.Itoa(p.BinNMU) + "}"
	}
	return c + ":calprio{" + strconv.Itoa(p.CalPrio) + "}:days{" + strconv.Itoa(p.Days) + "}"
}

func (s *Session) listOne(b *strings.Builder, p Prioritized, all bool) {
	b.WriteString(p.Section + "/" + p.Package + "_" + p.Version)
	if all {
		b.WriteString(": " + string(p.State))
	}
	if p.State != NeedsBuild && p.Builder != "" {
		b.WriteString(" by " + p.Builder)
	}
	b.WriteString(" [" + Bracket(p) + "]\n")
	switch {
	case strings.HasPrefix(string(p.State), "Failed"):
		b.WriteString("  Reasons for failing:\n" + strings.Join(strings.Split(p.Failed, "\n"), "\n    ") + "\n")
	case p.State == DepWait:
		b.WriteString("  Dependencies: " + p.Depends + "\n")
	case p.State == BDUninstallable:
		b.WriteString("  Reasons for BD-Uninstallable:\n    " + strings.Join(strings.Split(p.BDProblem, "\n"), "\n    ") + "\n")
	}
	if !s.Verbose {
		return
	}
	if p.PreviousState != "" {
		b.WriteString("  Previous state was " + string(p.PreviousState) + "\n")
	} else {
		b.WriteString("  No previous state recorded\n")
	}
	if p.StateChange != 0 {
		b.WriteString("  State changed at " + p.StateChangeTime().Format(TimeFormat) + "\n")
	}
	if p.PreviousState != "" {
		fmt.Fprintf(b, "  Previous state %s left %d ago\n", p.PreviousState, s.Now.Unix()-p.StateChange)
	}
	if p.OldFailed != "" {
		b.WriteString("  Previous failing reasons:\n    " + strings.Join(strings.Split(p.OldFailed, "\n"), "\n    ") + "\n")
	}
}

// InfoField is one "Key: value" line of --info.
type InfoField struct{ Key, Value string }

// InfoFields are the --info lines of r, in the classic order: the first
// keys, then the others sorted by their database column name.
func (s *Session) InfoFields(r *Record) []InfoField {
	var out []InfoField
	add := func(k, v string) {
		if v != "" {
			out = append(out, InfoField{k, v})
		}
	}
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	add("Package", r.Package)
	add("Version", r.Version)
	add("Builder", r.Builder)
	add("State", string(r.State))
	add("Section", r.Section)
	add("Priority", r.Priority)
	add("Installed-Version", r.InstalledVersion)
	add("Previous-State", string(r.PreviousState))
	if r.StateChange != 0 {
		add("State-Change", r.StateChangeTime().Format(TimeFormat))
	}
	// The rest in the order of the classic column names: anytime,
	// bd_problem, binary_nmu_changelog, binary_nmu_version, buildpri,
	// calprio, component, depends, distribution, extra_conflicts,
	// extra_depends, failed, notes, old_failed, permbuildpri, state_days,
	// state_time, successtime.
	add("Build-time", num(r.BuildTime))
	add("BD-Problem", r.BDProblem)
	add("Binary-NMU-Changelog", r.BinNMUChangelog)
	add("Binary-NMU-Version", num(int64(r.BinNMU)))
	add("BuildPri", num(int64(r.BuildPri)))
	add("CalculatedPri", strconv.Itoa(CalPrio(r, s.Now)))
	add("component", Component(r.Section))
	add("Depends", r.Depends)
	add("Distribution", s.Dist)
	add("Extra-Conflicts", r.ExtraConflicts)
	add("Extra-Dependencies", r.ExtraDepends)
	add("Failed", r.Failed)
	add("Notes", r.Notes)
	add("Old-Failed", r.OldFailed)
	add("PermBuildPri", num(int64(r.PermBuildPri)))
	add("State-Days", strconv.Itoa(StateDays(r, s.Now)))
	add("State-Time", strconv.FormatInt(max(s.Now.Unix()-r.StateChange, 0), 10))
	add("Success-build-time", num(r.SuccessTime))
	return out
}

// registered reads the record of the package arg names ("name" or
// "name_version"); one the queue does not hold is refused.
func (s *Session) registered(tx Tx, arg string) (string, *Record, error) {
	name := debversion.SplitPkgVersion(arg).Name
	r, err := tx.Get(name)
	if err == nil && r == nil {
		err = s.refuse(name, "not registered")
	}
	return name, r, err
}

// Info prints the --info block of the package named by arg ("name" or
// "name_version").
func (s *Session) Info(tx Tx, arg string) error {
	name, r, err := s.registered(tx, arg)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(name + ":\n")
	for _, f := range s.InfoFields(r) {
		v := strings.ReplaceAll(strings.TrimSuffix(f.Value, "\n"), "\n", "\n    ")
		fmt.Fprintf(&b, "  %-20s: %s\n", f.Key, v)
	}
	s.printf("%s", b.String())
	return nil
}

// History prints the transactions of the package named by arg ("" for
// all), one a line: the time, then the classic log line.
func (s *Session) History(tx Tx, arg string) error {
	name := ""
	if arg != "" {
		name = debversion.SplitPkgVersion(arg).Name
	}
	return tx.History(name, func(t *Transaction) error {
		s.printf("%s: %s\n", timeOf(t.Time), t.Line(s.Dist))
		return nil
	})
}

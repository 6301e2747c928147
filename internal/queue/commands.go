package queue

import (
	"fmt"
	"strings"

	"buildd/internal/control"
	"buildd/internal/debversion"
)

// Command is a state-setting operation of the classic tool.
type Command int

// The state-setting commands, named after their options.
const (
	Take Command = iota
	SetBuilt
	SetAttempted
	SetUploaded
	SetFailed
	SetDepWait
	GiveBack
	NoBuild
	BinNMU
	BuildPriority
	PermBuildPriority
)

// action is the classic table of checks per command.
type action struct {
	builder    bool    // the caller must be the builder (or -o)
	noVersion  bool    // no version check
	binVersion bool    // the version must be the binNMU version
	from       []State // allowed states (nil: any)
	warnFrom   []State // allowed with a warning
	to         State   // generic transition
	name       string  // action name in the history (--NAME) and messages
}

var actions = map[Command]action{
	Take:         {noVersion: true},
	SetBuilt:     {builder: true, to: Built, name: "built", from: []State{Building, BuildAttempted}},
	SetAttempted: {builder: true, to: BuildAttempted, name: "attempted", from: []State{Building, BuildAttempted}},
	SetUploaded:  {builder: true, to: Uploaded, name: "uploaded", from: []State{Building, Built, BuildAttempted}, binVersion: true},
	SetFailed: {builder: true, to: Failed, name: "failed",
		from:     []State{Building, Built, BuildAttempted, DepWait, Failed},
		warnFrom: []State{NeedsBuild, Uploaded, DepWait, BDUninstallable}},
	SetDepWait:        {builder: true, warnFrom: []State{NeedsBuild, Failed, BDUninstallable}},
	GiveBack:          {builder: true, to: BDUninstallable, name: "give-back"},
	NoBuild:           {},
	BinNMU:            {},
	BuildPriority:     {},
	PermBuildPriority: {},
}

// Apply runs cmd on the package argument arg ("name_version") with the
// classic checks in the classic order: registered, builder, version, state.
// n is the number of --binNMU and the --build-priority options. A refusal is
// a *Refused (its message already printed); any other error is a database
// error that must abort the transaction.
func (s *Session) Apply(tx Tx, cmd Command, arg string, n int) error {
	name, version, err := SplitArg(arg)
	if err != nil {
		return err
	}
	if strings.ContainsRune(s.Message, 0) {
		// A PostgreSQL queue cannot store it: refused on both stores.
		return s.refuse(name, "the message holds a NUL byte; nothing changed")
	}
	r, err := tx.Get(name)
	if err != nil {
		return err
	}
	a := actions[cmd]
	if cmd == Take {
		return s.take(tx, name, version, r)
	}
	if r == nil {
		return s.refuse(name, "not registered yet.")
	}
	if a.builder && r.Builder != "" && s.User != r.Builder && !s.Override && !builderIsUser(r.Builder, s.User) {
		return s.refuse(r.Package, "not taken by you, but by %s. Skipping.", r.Builder)
	}
	if !a.noVersion {
		nmu := r.FullVersion()
		if (!versionMatches(r, version) || a.binVersion) && vcmp(nmu, version) != 0 {
			by := ""
			if r.Builder != "" {
				by = " by " + r.Builder
			}
			return s.refuse(r.Package, "version mismatch (%s%s)", nmu, by)
		}
	}
	if a.from != nil && !r.State.in(a.from...) && !r.State.in(a.warnFrom...) {
		return s.refuse(name, "skiping: state is %s, not in %s", r.State, joinStates(append(append([]State{}, a.from...), a.warnFrom...)))
	}
	if r.State.in(a.warnFrom...) {
		s.printf("%s: warning: state is %s, processing anyways.\n", name, r.State)
	}

	switch cmd {
	case SetFailed:
		if r.State == Failed {
			s.printf("%s: already registered as failed; will append new message\n", r.Package)
		}
		r.Builder = s.User
		if r.Failed != "" {
			r.Failed += "\n"
		}
		r.Failed += s.Message
	case NoBuild:
		return s.noBuild(tx, r)
	case GiveBack:
		done, err := s.giveBack(tx, name, r)
		if done || err != nil {
			return err
		}
	case SetDepWait:
		return s.depWait(tx, r)
	case BuildPriority:
		r.BuildPri = n
		return s.setPriority(tx, r, n)
	case PermBuildPriority:
		r.PermBuildPri = n
		return s.setPriority(tx, r, n)
	case BinNMU:
		return s.binNMU(tx, name, version, r, n)
	}
	if a.to != "" {
		s.change(r, a.to)
		if err := s.save(tx, r, "--"+a.name); err != nil {
			return err
		}
		if s.Verbose {
			s.printf("%s: registered as %s\n", name, a.name)
		}
	}
	return nil
}

// builderIsUser accepts a builder "user-suffix" for user, as the classic
// tool does for buildd_arch-host names.
func builderIsUser(builder, user string) bool {
	i := strings.IndexByte(builder, '-')
	if i <= 0 || i == len(builder)-1 {
		return false
	}
	return builder[:i] == user && isWord(builder[:i]) && isWord(builder[i+1:i+2])
}

func isWord(s string) bool {
	for _, c := range s {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

// take is the classic add_one_building.
func (s *Session) take(tx Tx, name, version string, r *Record) error {
	reason := ""
	if r != nil {
		switch {
		case r.State == NotForUs || r.State == AutoNotForUs:
			reason = "not suitable for this architecture"
		case r.State == DepWait:
			reason = "not all source dependencies available yet"
		case r.State == BDUninstallable:
			reason = "source dependencies are not installable"
		case r.State == Uploaded && vcmp(version, r.Version) <= 0:
			reason = "already uploaded by " + r.Builder
			if vcmp(r.Version, version) != 0 {
				reason += " (in newer version " + r.Version + ")"
			}
		case r.State == Installed && vcmp(version, r.Version) < 0:
			if s.Override {
				s.printf("%s: Warning: newer version %s already installed, but overridden.\n", name, r.Version)
			} else {
				reason = "newer version " + r.Version + " already in archive; doesn't need rebuilding"
				s.printf("%s: Note: If the following is due to an epoch  change, use --override\n", name)
			}
		case r.State == Installed && versionMatches(r, version):
			reason = "is up-to-date in the archive; doesn't need rebuilding"
		case r.State == NeedsBuild && vcmp(version, r.Version) < 0:
			if s.Override {
				s.printf("%s: Warning: newer version %s needs building, but overridden.\n", name, r.Version)
			} else {
				reason = "newer version " + r.Version + " needs building, not " + version
			}
		case r.State.in(Building, Built, BuildAttempted):
			switch {
			case vcmp(r.Version, version) < 0:
				s.printf("%s: Warning: Older version %s is being built by %s\n", name, r.Version, r.Builder)
			case s.Override:
				s.printf("User %s had already taken the following package,\nbut overriding this as you request:\n", r.Builder)
			case r.Builder == s.User:
				s.printf("%s: Note: already taken by you.\n", name)
				s.takeOK(name, version, r, "ok")
				return nil
			default:
				reason = "already taken by " + r.Builder
				if vcmp(r.Version, version) != 0 {
					reason += " (in newer version " + r.Version + ")"
				}
			}
		case (r.State == Failed || r.State == FailedRemoved) && versionMatches(r, version):
			if s.Override {
				s.printf("The following package previously failed (by %s)\nbut overriding this as you request:\n", r.Builder)
			} else {
				reason = "build of " + version + " failed previously:\n    " + strings.Join(strings.Split(r.Failed, "\n"), "\n    ")
				if r.State == FailedRemoved {
					reason += "\nalso the package doesn't need builing"
				}
			}
		}
	}
	if reason != "" {
		if s.API < 1 {
			s.printf("%s: NOT OK!\n  %s\n", name, reason)
		} else {
			s.printf("- %s:\n    - status: not ok\n    - reason: \"%s\"\n", name, reason)
		}
		return &Refused{Pkg: name, Msg: reason}
	}
	if r == nil {
		r = &Record{Package: name}
	}
	word := "ok"
	if s.API < 1 {
		if r.BinNMU > 0 {
			s.printf("%s: Warning: needs binary NMU %d\n%s\n", name, r.BinNMU, r.BinNMUChangelog)
			word = "aok"
		} else if strings.HasPrefix(string(r.PreviousState), "Failed") || strings.HasPrefix(string(r.State), "Failed") {
			s.printf("%s: Warning: Previous version failed!\n", name)
		}
	}
	s.takeOK(name, version, r, word)
	s.change(r, Building)
	r.Package, r.Version, r.Builder = name, version, s.User
	if s.Lease > 0 {
		r.LeaseUntil = s.Now.Unix() + s.Lease
	}
	return s.save(tx, r, "--take")
}

// takeOK prints the success of a take: "PKG: ok" with -v, or the --api=1
// YAML block.
func (s *Session) takeOK(name, version string, r *Record, word string) {
	if s.API < 1 {
		if s.Verbose {
			s.printf("%s: %s\n", name, word)
		}
		return
	}
	s.printf("- %s:\n    - status: ok\n    - pkg-ver: %s_%s\n", name, name, version)
	if r.BinNMU > 0 {
		s.printf("    - binNMU: %d\n", r.BinNMU)
		if r.BinNMUChangelog != "" {
			s.printf("    - extra-changelog: %s\n", r.BinNMUChangelog)
		}
	}
	if r.ExtraDepends != "" {
		s.printf("    - extra-depends: %s\n", r.ExtraDepends)
	}
	if r.ExtraConflicts != "" {
		s.printf("    - extra-conflicts: %s\n", r.ExtraConflicts)
	}
}

// noBuild is the classic add_one_notforus: Not-For-Us, or back to Failed
// when it already was.
func (s *Session) noBuild(tx Tx, r *Record) error {
	if r.State == NotForUs {
		s.change(r, Failed)
		r.Failed = "Was Not-For-Us previously"
		r.Builder, r.Depends = "", ""
		if err := s.save(tx, r, "--no-build(rev)"); err != nil {
			return err
		}
		s.printf("%s: now not unsuitable anymore\n", r.Package)
		return nil
	}
	s.change(r, NotForUs)
	r.Builder, r.Depends, r.BinNMU, r.BinNMUChangelog = "", "", 0, ""
	if err := s.save(tx, r, "--no-build"); err != nil {
		return err
	}
	if s.Verbose {
		s.printf("%s: registered as unsuitable\n", r.Package)
	}
	return nil
}

// giveBack does the give-back checks; done reports that it has finished
// the package (refused, or forced out of BD-Uninstallable).
func (s *Session) giveBack(tx Tx, name string, r *Record) (done bool, err error) {
	switch {
	case r.State == BDUninstallable:
		if !s.Override {
			return true, s.refuse(name, "has uninstallable build-dependencies. Skipping\n  (use --override to clear dependency list and give back anyway)")
		}
		s.printf("%s: Forcing uninstallability mark to be removed. This is not permanent and might be reset with the next trigger run\n", name)
		s.change(r, NeedsBuild)
		r.Builder, r.Depends = "", ""
		if err := s.save(tx, r, "--give-back"); err != nil {
			return true, err
		}
		if s.Verbose {
			s.printf("%s: given back\n", name)
		}
		return true, nil
	case r.State == DepWait:
		if !s.Override {
			return true, s.refuse(name, "waiting for source dependencies. Skipping\n  (use --override to clear dependency list and give back anyway)")
		}
		s.printf("%s: Forcing source dependency list to be cleared\n", name)
	case !r.State.in(Building, Built, BuildAttempted):
		if !s.Override {
			return true, s.refuse(name, "not taken for building (state is %s). Skipping.", r.State)
		}
		s.printf("%s: not taken for building (state is %s).\n%s: Forcing give-back\n", name, r.State, name)
	}
	r.Builder, r.Depends = "", ""
	return false, nil
}

// depWait is the classic add_one_depwait.
func (s *Session) depWait(tx Tx, r *Record) error {
	name := r.Package
	if r.State == DepWait {
		s.printf("%s: merging with previously registered dependencies\n", name)
	}
	if r.State.in(Installed, NotForUs) {
		msg := fmt.Sprintf("add_one_depwait: %s: skiping in state %s", name, r.State)
		s.printf("%s\n", msg)
		return &Refused{Pkg: name, Msg: msg}
	}
	if err := CheckDepWait(s.Message); err != nil {
		return s.refuse(name, "Bad dependency list")
	}
	s.change(r, DepWait)
	r.Builder = s.User
	r.Depends = MergeDeps(r.Depends, s.Message)
	if err := s.save(tx, r, "--dep-wait"); err != nil {
		return err
	}
	if s.Verbose {
		s.printf("%s: registered as waiting for dependencies\n", name)
	}
	return nil
}

// CheckDepWait checks a --dep-wait dependency list: comma-separated
// packages, each with at most a ">", ">>" or ">=" version, and no
// alternatives.
func CheckDepWait(deps string) error {
	if strings.TrimSpace(deps) == "" {
		return fmt.Errorf("empty dependency list")
	}
	rels, err := control.ParseRelations(deps)
	if err != nil {
		return err
	}
	for _, group := range rels {
		if len(group) != 1 {
			return fmt.Errorf("alternatives are not allowed: %q", deps)
		}
		switch group[0].Op {
		case "", ">", ">>", ">=":
		default:
			return fmt.Errorf("%s: only >, >> and >= are allowed", group[0].Name)
		}
	}
	return nil
}

// MergeDeps adds the dependencies of add to old; a package in both takes
// its relation from add. ">" is written ">>" as the classic tool does.
func MergeDeps(old, add string) string {
	type dep struct{ name, rel, ver string }
	var list []dep
	index := map[string]int{}
	for _, s := range []string{old, add} {
		rels, err := control.ParseRelations(s)
		if err != nil {
			continue
		}
		for _, g := range rels {
			if len(g) != 1 {
				continue
			}
			d := dep{g[0].Name, g[0].Op, g[0].Version}
			if d.rel == ">" {
				d.rel = ">>"
			}
			if i, ok := index[d.name]; ok {
				list[i] = d
				continue
			}
			index[d.name] = len(list)
			list = append(list, d)
		}
	}
	parts := make([]string, len(list))
	for i, d := range list {
		parts[i] = d.name
		if d.rel != "" && d.ver != "" {
			parts[i] += " (" + d.rel + " " + d.ver + ")"
		}
	}
	return strings.Join(parts, ", ")
}

func (s *Session) setPriority(tx Tx, r *Record, n int) error {
	if err := tx.Put(r); err != nil {
		return err
	}
	if s.Verbose {
		s.printf("%s: set to build priority %d\n", r.Package, n)
	}
	return nil
}

// binNMU is the classic set_one_binnmu; n 0 cancels a scheduled binNMU.
func (s *Session) binNMU(tx Tx, name, version string, r *Record, n int) error {
	if r.BinNMU > 0 {
		switch {
		case n == 0:
			s.change(r, Installed)
			r.Builder, r.Depends, r.BinNMU, r.BinNMUChangelog, r.BuildPri = "", "", 0, "", 0
		case n <= r.BinNMU:
			return s.refuse(name, "already building binNMU %d", r.BinNMU)
		default:
			r.BinNMU, r.BinNMUChangelog, r.Notes, r.BuildPri = n, s.Message, "out-of-date", 0
			s.change(r, BDUninstallable)
		}
		return s.save(tx, r, "--binNMU")
	}
	if n == 0 {
		return s.refuse(name+"_"+version, "no scheduled binNMU to cancel.")
	}
	if r.State != Installed {
		return s.refuse(name+"_"+version, "not installed; can't register for binNMU.")
	}
	full := debversion.PkgVersion{Name: name, Version: version}.WithBinNMU(n).Version
	if vcmp(full, r.InstalledVersion) <= 0 {
		return s.refuse(name, "binNMU %s is not newer than current version %s", full, r.InstalledVersion)
	}
	s.change(r, BDUninstallable)
	r.Builder, r.Depends = "", ""
	r.BinNMU, r.BinNMUChangelog, r.Notes, r.BuildPri = n, s.Message, "out-of-date", 0
	if err := s.save(tx, r, "--binNMU"); err != nil {
		return err
	}
	if s.Verbose {
		s.printf("%s: registered for binNMU %s\n", name, full)
	}
	return nil
}

// Forget removes the package named by arg ("name" or "name_version").
func (s *Session) Forget(tx Tx, arg string) error {
	name, r, err := s.registered(tx, arg)
	if err != nil {
		return err
	}
	prev := r.State
	r.PreviousState, r.State = prev, "deleted"
	if err := s.log(tx, r, "--forget"); err != nil {
		return err
	}
	if err := tx.Delete(name); err != nil {
		return err
	}
	if s.Verbose {
		s.printf("%s: deleted from database\n", name)
	}
	return nil
}

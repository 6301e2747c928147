// Package reply owns what a mail to buildd-mail says: the subjects it
// recognises (a reply to a log or a "Should I build" question, the
// archive's and the queue's notices) and the grammar of an admin's signed
// answer (the keywords, their arguments, the "PKG_VERSION (dist=DIST)"
// line). Reading the mail itself is message's.
package reply

import (
	"regexp"

	"buildd/internal/debversion"
)

// Kind is what a mail is, by its subject.
type Kind int

const (
	Unknown     Kind = iota
	LogReply         // Re: Log for ... build of PKG_VERSION [on ARCH] (dist=D)
	ShouldBuild      // Re: Should I build PKG_VERSION [on ARCH] (dist=D)?
	Processing       // Processing of X (upload queue daemon)
	Installed        // X.changes INSTALLED / ACCEPTED
	IsNew            // X.changes is NEW
	NewVersion       // new version of PKG_VERSION (dist=D)
)

func (k Kind) String() string {
	return [...]string{"unknown", "log reply", "should-build reply", "upload queue report", "installed", "is NEW", "new version"}[k]
}

// Subject is a recognised subject.
type Subject struct {
	Kind       Kind
	PkgVersion string // LogReply, ShouldBuild, NewVersion: name_version
	Package    string // NewVersion: the source name
	Dist       string
	Arch       string // LogReply, ShouldBuild: "on ARCH", "" when the subject has none
	Changes    string // Installed, IsNew: the .changes file name
	Job        string // Processing
}

// The classic buildd-mail's subjects, tried in its order. The "on ARCH"
// of a log mail's subject, which the classic buildd-mail passed over, is
// the architecture of the build (classic sbuild's subject has it too);
// the "Should I build" question names it the same way.
var (
	logRE        = regexp.MustCompile(`(?i)^Re: Log for \S+ build of (\S+)(?: on ([\w-]+))? \(dist=(\S+)\)`)
	shouldRE     = regexp.MustCompile(`(?i)^Re: Should I build (\S+?)(?: on ([\w-]+))? \(dist=(\S+)\)`)
	processingRE = regexp.MustCompile(`^Processing of (\S+)`)
	installedRE  = regexp.MustCompile(`^([-+~.\w]+\.changes) (INSTALL|ACCEPT)ED`)
	isNewRE      = regexp.MustCompile(`^(\S+\.changes) is NEW$`)
	newVersionRE = regexp.MustCompile(`^new version of (\S+) \(dist=(\S+)\)$`)
)

// ClassifySubject recognises a (decoded) subject.
func ClassifySubject(s string) Subject {
	if m := logRE.FindStringSubmatch(s); m != nil {
		return Subject{Kind: LogReply, PkgVersion: m[1], Arch: m[2], Dist: m[3]}
	}
	if m := shouldRE.FindStringSubmatch(s); m != nil {
		return Subject{Kind: ShouldBuild, PkgVersion: m[1], Arch: m[2], Dist: m[3]}
	}
	if m := processingRE.FindStringSubmatch(s); m != nil {
		return Subject{Kind: Processing, Job: m[1]}
	}
	if m := installedRE.FindStringSubmatch(s); m != nil {
		return Subject{Kind: Installed, Changes: m[1]}
	}
	if m := isNewRE.FindStringSubmatch(s); m != nil {
		return Subject{Kind: IsNew, Changes: m[1]}
	}
	if m := newVersionRE.FindStringSubmatch(s); m != nil {
		// wanna-build names the version it superseded (PKG_VERSION); the
		// classic form names only the package.
		name := debversion.SplitPkgVersion(m[1]).Name
		sub := Subject{Kind: NewVersion, Package: name, Dist: m[2]}
		if name != m[1] {
			sub.PkgVersion = m[1]
		}
		return sub
	}
	return Subject{}
}

package queue

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	"buildd/internal/debversion"
)

// Session is what every command of one wanna-build run shares: who acts,
// where, when, with which options, and where the classic messages go.
type Session struct {
	Dist, Arch string
	// User is the builder recorded (-U, else the real user); RealUser the
	// login of the caller. Both go into the history.
	User, RealUser string
	Override       bool // -o
	Verbose        bool // -v
	API            int  // --api
	// Message is -m: the failure text, the dependency list or the binNMU
	// changelog.
	Message string
	// CheckInstall makes given-back and binNMU'd packages wait in
	// BD-Uninstallable for the installability check; without it they go
	// straight to Needs-Build (the classic "no auto dep-wait" mode).
	CheckInstall bool
	// Lease is --lease: the seconds a take or a renewal holds the
	// package for its builder (0: a take without a lease).
	Lease int64
	Now   time.Time
	// Out receives the classic per-package messages.
	Out io.Writer
}

// ErrNotRegistered is matched (errors.Is) by the refusal for a package the
// queue does not know.
var ErrNotRegistered = errors.New("not registered yet.")

// Refused is a per-package refusal: the package was left as it was and Msg
// says why in the classic wording (without the leading "PKG: "). The command
// still succeeds (exit 0) for the other packages.
type Refused struct {
	Pkg, Msg string
}

func (e *Refused) Error() string { return e.Pkg + ": " + e.Msg }

// Is makes errors.Is(err, ErrNotRegistered) true for "not registered".
func (e *Refused) Is(target error) bool {
	return target == ErrNotRegistered && strings.HasPrefix(e.Msg, "not registered")
}

// BadArgument is a package argument that is not of the form name_version.
type BadArgument struct{ Arg string }

func (e *BadArgument) Error() string {
	return e.Arg + ": can't extract package name and version (bad format)"
}

// IsPackageError reports whether err concerns one package only (a refusal
// or a bad argument), so the command goes on with the others.
func IsPackageError(err error) bool {
	var r *Refused
	var b *BadArgument
	return errors.As(err, &r) || errors.As(err, &b)
}

// argRE and changesSuffixRE are compiled on first use, not in every
// process's start-up (--info and --list never split an argument).
var argRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([A-Za-z0-9.+-]+)_([A-Za-z0-9:.+~-]+)`) })

// SplitArg splits a package argument "name_version" as the classic tool
// does: a leading path and a .dsc/.diff.gz/.tar.gz/.deb/_ARCH.changes ending
// are dropped, and anything after the version is ignored.
func SplitArg(arg string) (name, version string, err error) {
	p := arg
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	for _, ext := range []string{".dsc", ".diff.gz", ".tar.gz", ".deb"} {
		p = strings.TrimSuffix(p, ext)
	}
	p = changesSuffixRE().ReplaceAllString(p, "")
	m := argRE().FindStringSubmatch(p)
	if m == nil {
		return "", "", &BadArgument{arg}
	}
	return m[1], m[2], nil
}

var changesSuffixRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`_[A-Za-z0-9-]+\.changes$`) })

func (s *Session) printf(format string, args ...any) {
	if s.Out != nil {
		fmt.Fprintf(s.Out, format, args...)
	}
}

func (s *Session) refuse(pkg, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	s.printf("%s: %s\n", pkg, msg)
	return &Refused{Pkg: pkg, Msg: msg}
}

// change moves r to state to as the classic change_state does: the
// previous state and the time are recorded, a Failed text moves into
// OldFailed, the BD-Problem follows BD-Uninstallable.
func (s *Session) change(r *Record, to State) {
	if to == BDUninstallable && !s.CheckInstall {
		to = NeedsBuild
	}
	if r.State == to {
		return
	}
	if r.State != "" {
		r.PreviousState = r.State
	}
	r.StateChange = s.Now.Unix()
	r.LeaseUntil, r.LeaseRenewed = 0, 0
	if r.State == Failed {
		dashes := strings.Repeat("-", 20)
		r.OldFailed = dashes + " " + r.Version + " " + dashes + "\n" + r.Failed + "\n" + r.OldFailed
		r.Failed = ""
	}
	if r.State == BDUninstallable {
		r.BDProblem = ""
	}
	if to == BDUninstallable {
		r.BDProblem = "Installability of build dependencies not tested yet"
	}
	r.State = to
}

// log records the change of r in the history.
func (s *Session) log(tx Tx, r *Record, action string) error {
	return tx.Log(&Transaction{
		Package: r.Package, Version: r.Version, Action: action,
		From: r.PreviousState, To: r.State,
		RealUser: s.RealUser, User: s.User, Time: s.Now.Unix(),
	})
}

// save logs and stores r.
func (s *Session) save(tx Tx, r *Record, action string) error {
	if action != "" {
		if err := s.log(tx, r, action); err != nil {
			return err
		}
	}
	return tx.Put(r)
}

func vcmp(a, b string) int { return debversion.Compare(a, b) }

// versionMatches is the classic pkg_version_eq: v is the record's version
// or its binNMU version.
func versionMatches(r *Record, v string) bool {
	if r.BinNMU > 0 && vcmp(r.FullVersion(), v) == 0 {
		return true
	}
	return vcmp(r.Version, v) == 0
}

package debversion

import (
	"fmt"
	"strconv"
	"strings"
)

// PkgVersion is a source package and one of its versions as the suite
// writes them, NAME_VERSION (hello_1.0-1, hello_1:2.0-1+b1).
type PkgVersion struct {
	Name    string
	Version string
}

// String is NAME_VERSION.
func (p PkgVersion) String() string { return p.Name + "_" + p.Version }

// SplitPkgVersion cuts s at its first "_" into name and version, checking
// neither: it is for values the suite wrote itself (the queue, REDO,
// BUILDING, a .changes already parsed) and for taking the name of a value
// that may or may not carry a version. Without a "_", all of s is the Name
// and the Version is empty. A value from outside goes through
// ParsePkgVersion instead.
func SplitPkgVersion(s string) PkgVersion {
	name, vers, _ := strings.Cut(s, "_")
	return PkgVersion{name, vers}
}

// WithBinNMU is binNMU n of p, the version as its binaries carry it:
// hello_2.0-1 with n 3 is hello_2.0-1+b3. An n below 1 is no binNMU, p
// itself.
func (p PkgVersion) WithBinNMU(n int) PkgVersion {
	if n > 0 {
		p.Version += "+b" + strconv.Itoa(n)
	}
	return p
}

// NoEpoch is p without the epoch of its version, the form file names
// carry (they have no colon): hello_1:2.0-1 is hello_2.0-1.
func (p PkgVersion) NoEpoch() PkgVersion {
	if _, v, ok := strings.Cut(p.Version, ":"); ok {
		p.Version = v
	}
	return p
}

// Upstream is the upstream part of p's version, without epoch and without
// the Debian revision (from the last "-" on): 1:2.0-1-2 is 2.0-1. It names
// the directory dpkg-source unpacks the source into, NAME-UPSTREAM.
func (p PkgVersion) Upstream() string {
	v := p.NoEpoch().Version
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v = v[:i]
	}
	return v
}

// ParsePkgVersion parses NAME_VERSION strictly: the name as Debian policy
// (5.6.1) allows a source package's, the version as Parse accepts it, with
// nothing around them. A name or version taken from a mail goes through
// here before it comes near a path or the queue.
func ParsePkgVersion(s string) (PkgVersion, error) {
	if !strings.Contains(s, "_") {
		return PkgVersion{}, fmt.Errorf("%q is not NAME_VERSION", s)
	}
	p := SplitPkgVersion(s)
	if err := CheckName(p.Name); err != nil {
		return PkgVersion{}, err
	}
	if err := CheckVersion(p.Version); err != nil {
		return PkgVersion{}, err
	}
	return p, nil
}

// CheckName reports whether name is a valid package name (policy 5.6.1:
// lower-case letters, digits, "+", "-" and ".", at least two characters,
// starting with a letter or digit).
func CheckName(name string) error {
	if len(name) < 2 || len(name) > 256 {
		return fmt.Errorf("package name %q: want 2 to 256 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '+' || c == '-' || c == '.'):
		default:
			return fmt.Errorf("package name %q: %q is not allowed there (policy 5.6.1)", name, c)
		}
	}
	return nil
}

// CheckVersion reports whether v is a valid version, written as is (no
// blanks around it, unlike Parse).
func CheckVersion(v string) error {
	if len(v) > 256 {
		return fmt.Errorf("version %.40q...: longer than 256 characters", v)
	}
	if v != trimBlanks(v) {
		return fmt.Errorf("version %q has bad syntax: blanks around it", v)
	}
	_, err := Parse(v)
	return err
}

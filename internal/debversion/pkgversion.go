package debversion

import (
	"fmt"
	"strings"
)

// PkgVersion is a source package and one of its versions as the suite
// writes them, NAME_VERSION (hello_1.0-1, hello_1:2.0-1+b1).
type PkgVersion struct {
	Name    string
	Version string
}

func (p PkgVersion) String() string { return p.Name + "_" + p.Version }

// ParsePkgVersion parses NAME_VERSION strictly: the name as Debian policy
// (5.6.1) allows a source package's, the version as Parse accepts it, with
// nothing around them. A name or version taken from a mail goes through
// here before it comes near a path or the queue.
func ParsePkgVersion(s string) (PkgVersion, error) {
	name, vers, ok := strings.Cut(s, "_")
	if !ok {
		return PkgVersion{}, fmt.Errorf("%q is not NAME_VERSION", s)
	}
	if err := CheckName(name); err != nil {
		return PkgVersion{}, err
	}
	if err := CheckVersion(vers); err != nil {
		return PkgVersion{}, err
	}
	return PkgVersion{name, vers}, nil
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

// Package debversion owns Debian version numbers: parsing them into epoch,
// upstream version and revision, and ordering them exactly as dpkg does;
// and the NAME_VERSION pairs the suite passes around (PkgVersion): splitting
// and checking them, their binNMU and file-name forms.
//
// Compare follows dpkg's C implementation (lib/dpkg/version.c): it orders
// any string, including ones dpkg only warns about ("version number does not
// start with digit", "invalid character"), just as `dpkg --compare-versions`
// does. Parse is strict: it rejects what dpkg rejects outright and also what
// dpkg merely warns about, as Debian's source tools (Dpkg::Version) do, so a
// version accepted by Parse is one the archive tools accept.
package debversion

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Version is a parsed Debian version: [epoch:]upstream[-revision].
type Version struct {
	Epoch    int
	Upstream string
	Revision string
}

// String returns the version in its canonical form: the epoch is written
// only when it is not 0 (or the upstream part holds a ":"), the revision
// only when it is not empty.
func (v Version) String() string {
	s := v.Upstream
	if v.Epoch != 0 || strings.IndexByte(v.Upstream, ':') >= 0 {
		s = strconv.Itoa(v.Epoch) + ":" + s
	}
	if v.Revision != "" {
		s += "-" + v.Revision
	}
	return s
}

// Parse parses s as a Debian version. Leading and trailing blanks are
// ignored, as dpkg ignores them. The error says what is wrong, in dpkg's words.
func Parse(s string) (Version, error) {
	v, warn, err := parse(s)
	if err == "" {
		err = warn
	}
	if err != "" {
		return Version{}, fmt.Errorf("version %q has bad syntax: %s", s, err)
	}
	return v, nil
}

// parse mirrors dpkg's parseversion: err is what dpkg treats as an error,
// warn what it only warns about.
func parse(s string) (v Version, warn, err string) {
	s = trimBlanks(s)
	if s == "" {
		return v, "", "version string is empty"
	}
	for i := 0; i < len(s); i++ {
		if isBlank(s[i]) {
			return v, "", "version string has embedded spaces"
		}
	}
	if c := strings.IndexByte(s, ':'); c >= 0 {
		ep := s[:c]
		if ep == "" {
			return v, "", "epoch in version is empty"
		}
		n := 0
		for i := 0; i < len(ep); i++ {
			if !isDigit(ep[i]) {
				return v, "", "epoch in version is not number"
			}
			if n > (math.MaxInt32-int(ep[i]-'0'))/10 {
				return v, "", "epoch in version is too big"
			}
			n = n*10 + int(ep[i]-'0')
		}
		if c+1 == len(s) {
			return v, "", "nothing after colon in version number"
		}
		v.Epoch = n
		s = s[c+1:]
	}
	if h := strings.LastIndexByte(s, '-'); h >= 0 {
		if h+1 == len(s) {
			return v, "", "revision number is empty"
		}
		v.Revision = s[h+1:]
		s = s[:h]
	}
	if s == "" {
		return v, "", "version number is empty"
	}
	v.Upstream = s
	if !isDigit(s[0]) {
		return v, "version number does not start with digit", ""
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !isAlpha(c) && c != '.' && c != '-' && c != '+' && c != '~' && c != ':' {
			return v, "invalid character in version number", ""
		}
	}
	for i := 0; i < len(v.Revision); i++ {
		c := v.Revision[i]
		if !isDigit(c) && !isAlpha(c) && c != '.' && c != '+' && c != '~' {
			return v, "invalid character in revision number", ""
		}
	}
	return v, "", ""
}

// Compare returns -1, 0 or 1 as a is older than, equal to or newer than b,
// in dpkg's order. It does not allocate. For strings dpkg refuses outright
// (an epoch that is not a number, an empty revision after '-', ...) the
// result is still a deterministic order, though dpkg has none to compare with:
// such a string counts as epoch 0 with everything in the upstream part.
func Compare(a, b string) int {
	ea, ua, ra := split(a)
	eb, ub, rb := split(b)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

// split cuts a version into epoch, upstream and revision without allocating.
func split(s string) (epoch int, upstream, revision string) {
	s = trimBlanks(s)
	if c := strings.IndexByte(s, ':'); c > 0 {
		n, ok, i := 0, true, 0
		if s[0] == '+' && c > 1 {
			i = 1 // strtol's sign, which dpkg accepts
		}
		for ; i < c; i++ {
			d := s[i]
			if !isDigit(d) || n > (math.MaxInt32-int(d-'0'))/10 {
				ok = false
				break
			}
			n = n*10 + int(d-'0')
		}
		if ok {
			epoch, s = n, s[c+1:]
		}
	}
	if h := strings.LastIndexByte(s, '-'); h >= 0 {
		return epoch, s[:h], s[h+1:]
	}
	return epoch, s, ""
}

// order is dpkg's character weight: '~' first, then the end of a part and
// digits, then letters, then everything else. Bytes are signed as C's char
// is on dpkg's common platforms.
func order(c byte) int {
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	default:
		return int(int8(c)) + 256
	}
}

// verrevcmp is dpkg's comparison of one version part.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := 0, 0
			if i < len(a) {
				ac = order(a[i])
			}
			if j < len(b) {
				bc = order(b[j])
			}
			if ac != bc {
				if ac < bc {
					return -1
				}
				return 1
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		firstDiff := 0
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			if firstDiff < 0 {
				return -1
			}
			return 1
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func trimBlanks(s string) string {
	for len(s) > 0 && isBlank(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

package web

import (
	"strconv"

	"buildd/internal/debversion"
)

// The names a request may carry: a source package (policy 5.6.1), a
// distribution or architecture (lower-case letters, digits, "+", "-",
// "."), a builder (a login or host name: also upper case, "_" and "@").
// A bad one is a 400 quoting the start of it.

func checkPackage(s string) error {
	if debversion.CheckName(s) != nil {
		return badRequest("invalid package name %s", quote(s))
	}
	return nil
}

func checkLabel(kind, s string) error {
	if !validName(s, 64, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
	}) {
		return badRequest("invalid %s name %s", kind, quote(s))
	}
	return nil
}

func checkBuilder(s string) error {
	if !validName(s, 256, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c == '_' || c == '@'
	}) {
		return badRequest("invalid builder name %s", quote(s))
	}
	return nil
}

// validName: 1 to max bytes, all ok, the first one a letter or digit.
func validName(s string, max int, ok func(byte) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	c := s[0]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// quote is s quoted for a message, cut at maxLine.
func quote(s string) string { return strconv.Quote(clip(s, maxLine)) }

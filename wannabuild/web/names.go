package web

import (
	"strconv"

	"buildd/internal/debversion"
	"buildd/internal/queue"
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
	if !queue.ValidLabel(s) {
		return badRequest("invalid %s name %s", kind, quote(s))
	}
	return nil
}

func checkBuilder(s string) error {
	if !queue.ValidBuilder(s) {
		return badRequest("invalid builder name %s", quote(s))
	}
	return nil
}

// quote is s quoted for a message, cut at maxLine.
func quote(s string) string { return strconv.Quote(clip(s, maxLine)) }

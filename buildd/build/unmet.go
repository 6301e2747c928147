package build

import (
	"regexp"
	"strings"
)

// Markers in apt's output of a failed `apt-get build-dep`. Trouble reaching
// or reading the archive is not the package's fault (given back); a
// resolver that cannot satisfy the build-dependencies is (attempted, and the
// admin answers dep-wait).
var (
	aptFetchTrouble = []string{
		"Temporary failure resolving", "Failed to fetch", "Could not resolve",
		"Could not connect to", "Connection failed", "Connection timed out",
		"Unable to fetch some archives", "Hash Sum mismatch", "Failed to stat",
		"Some index files failed to download", "Unable to connect to",
	}
	aptUnsatisfiable = []string{
		"The following packages have unmet dependencies:", "has no installation candidate",
		"Unable to locate package", "but it is not going to be installed",
		"but it is not installable", "Unable to correct problems, you have held broken packages",
		"Unable to satisfy dependencies", "cannot be satisfied because",
	}
	reNoCandidate = regexp.MustCompile(`(?m)^E: Package '?([^ ']+)'? has no installation candidate`)
	reNotFound    = regexp.MustCompile(`(?m)^E: Unable to locate package (\S+)`)
	reOldApt      = regexp.MustCompile(`(?m)^E: Build-Depends dependency for \S+ cannot be satisfied because the package (\S+) cannot be found`)
	reBadRelation = regexp.MustCompile(`^(?:Pre-?)?Depends: (.*?)(?: but (?:it is not (?:going to be )?installable|it is not going to be installed|[^ ]+ is to be installed|it is a virtual package|.* is installed)| which is a virtual package.*)?( or)?$`)
)

// depsFailure classifies the output of a failed `apt-get build-dep`:
// unsatisfiable says the build-dependencies cannot be satisfied (and not
// because of fetch trouble); unmet is what apt names as unsatisfied, as a
// relation list ("libfoo-dev (>= 2), a | b"), "" when it names nothing.
func depsFailure(out string) (unsatisfiable bool, unmet string) {
	for _, m := range aptFetchTrouble {
		if strings.Contains(out, m) {
			return false, ""
		}
	}
	for _, m := range aptUnsatisfiable {
		if strings.Contains(out, m) {
			unsatisfiable = true
			break
		}
	}
	if !unsatisfiable {
		return false, ""
	}
	return true, strings.Join(unmetRelations(out), ", ")
}

// unmetRelations reads apt's "The following packages have unmet
// dependencies:" block (the entries of the builddeps: pseudo-package, the
// build-dependencies themselves; those of other packages only when there is
// none), "has no installation candidate" and "Unable to locate package".
func unmetRelations(out string) []string {
	var direct, other []string
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "The following packages have unmet dependencies:") {
			continue
		}
		builddeps := false
		var group []string
		for i++; i < len(lines) && strings.HasPrefix(lines[i], " "); i++ {
			l := strings.TrimSpace(lines[i])
			if pkg, rel, ok := strings.Cut(l, " : "); ok && !strings.Contains(pkg, " ") {
				builddeps = strings.HasPrefix(pkg, "builddeps:")
				l = rel
			}
			if len(group) > 0 {
				l = "Depends: " + l
			}
			m := reBadRelation.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			group = append(group, m[1])
			if m[2] != "" {
				continue
			}
			rel := strings.Join(group, " | ")
			group = nil
			if builddeps {
				direct = appendNew(direct, rel)
			} else {
				other = appendNew(other, rel)
			}
		}
		i--
	}
	if len(direct) == 0 {
		direct = other
	}
	for _, re := range []*regexp.Regexp{reNoCandidate, reNotFound, reOldApt} {
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			direct = appendNew(direct, m[1])
		}
	}
	return direct
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

package control

import (
	"embed"
	"strings"
	"sync"
)

// The tables are copies of dpkg's /usr/share/dpkg/{cputable,tupletable}
// (dpkg 1.21), embedded so that matching does not depend on the host.
//
//go:embed dpkgtables/cputable dpkgtables/tupletable
var dpkgTables embed.FS

var (
	archOnce   sync.Once
	archTuples map[string][4]string // Debian architecture -> abi, libc, os, cpu
)

// loadArchTuples builds dpkg's debarch -> debtuple map as Dpkg::Arch does:
// "<cpu>" lines are expanded for every CPU in cputable order, and the first
// line that names an architecture or tuple wins.
func loadArchTuples() {
	archTuples = make(map[string][4]string)
	tuples := make(map[string]bool)
	var cpus []string
	for _, f := range tableLines("dpkgtables/cputable") {
		cpus = append(cpus, f[0])
	}
	add := func(arch, tuple string) {
		t := strings.SplitN(tuple, "-", 4)
		if len(t) == 4 {
			archTuples[arch] = [4]string{t[0], t[1], t[2], t[3]}
		}
		tuples[tuple] = true
	}
	for _, f := range tableLines("dpkgtables/tupletable") {
		if len(f) < 2 {
			continue
		}
		tuple, arch := f[0], f[1]
		if !strings.Contains(tuple, "<cpu>") {
			add(arch, tuple)
			continue
		}
		for _, cpu := range cpus {
			dt := strings.Replace(tuple, "<cpu>", cpu, 1)
			da := strings.Replace(arch, "<cpu>", cpu, 1)
			if _, ok := archTuples[da]; ok || tuples[dt] {
				continue
			}
			add(da, dt)
		}
	}
}

// tableLines returns the whitespace-separated fields of the non-comment
// lines of an embedded dpkg table.
func tableLines(name string) [][]string {
	data, err := dpkgTables.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	var out [][]string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			out = append(out, f)
		}
	}
	return out
}

// archTuple is Dpkg::Arch's debarch_to_debtuple.
func archTuple(arch string) ([4]string, bool) {
	archOnce.Do(loadArchTuples)
	if rest, ok := strings.CutPrefix(arch, "linux-"); ok {
		arch, _, _ = strings.Cut(rest, "-")
	}
	t, ok := archTuples[arch]
	return t, ok
}

// wildcardTuple is Dpkg::Arch's debwildcard_to_debtuple.
func wildcardTuple(pattern string) ([4]string, bool) {
	var t [4]string
	n, hasAny := 0, false
	for rest := pattern; ; n++ {
		part, more, found := strings.Cut(rest, "-")
		if n == 3 { // split /-/, $arch, 4: the last part keeps its "-"
			part, found = rest, false
		}
		t[n] = part
		hasAny = hasAny || part == "any"
		if !found {
			n++
			break
		}
		rest = more
	}
	if !hasAny {
		return archTuple(pattern)
	}
	switch n {
	case 4:
		return t, true
	case 3:
		return [4]string{"any", t[0], t[1], t[2]}, true
	case 2:
		return [4]string{"any", "any", t[0], t[1]}, true
	default:
		return [4]string{"any", "any", "any", "any"}, true
	}
}

// ArchMatches reports whether the Debian architecture arch matches pattern,
// with the rules of dpkg (`dpkg-architecture -a ARCH -i PATTERN`): "any"
// matches everything, an exact name matches itself ("all" only matches
// "all"), and wildcards such as "linux-any", "any-amd64", "kfreebsd-any" or
// "any-gnu-linux-any" match on dpkg's (abi, libc, os, cpu) tuples. pattern
// may also be a whitespace-separated list, such as an Architecture field:
// then arch matches if it matches any of the list's entries.
func ArchMatches(pattern, arch string) bool {
	for pattern != "" {
		i := strings.IndexAny(pattern, " \t\n")
		if i < 0 {
			return archIs(arch, pattern)
		}
		if i > 0 && archIs(arch, pattern[:i]) {
			return true
		}
		pattern = pattern[i+1:]
	}
	return false
}

// archIs is Dpkg::Arch's debarch_is.
func archIs(real, alias string) bool {
	if alias == real || alias == "any" {
		return true
	}
	r, ok := archTuple(real)
	if !ok {
		return false
	}
	a, ok := wildcardTuple(alias)
	if !ok {
		return false
	}
	for i := range a {
		if a[i] != r[i] && a[i] != "any" {
			return false
		}
	}
	return true
}

package queue

import (
	"cmp"
	"hash/fnv"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Weights of the classic calprio.
var (
	priorityWeight  = map[string]int{"required": 50, "important": 40, "standard": 30, "optional": 5}
	sectionWeight   = map[string]int{"libs": 4, "devel": 2}
	componentWeight = map[string]int{"contrib": -10, "non-free": -20, "non-free-firmware": -20}
	notesWeight     = map[string]int{"uncompiled": 20, "out-of-date": 40}
)

// Component is the archive component of a section ("contrib/libs" is
// contrib, "libs" is main).
func Component(section string) string {
	if i := strings.IndexByte(section, '/'); i >= 0 {
		return section[:i]
	}
	return "main"
}

// StateDays is the number of whole days r has been in its state at now.
func StateDays(r *Record, now time.Time) int { return stateDays(r.StateChange, now) }

func stateDays(stateChange int64, now time.Time) int {
	d := (now.Unix() - stateChange) / 86400
	if d < 0 {
		return 0
	}
	return int(d)
}

// CalPrio is the classic calculated priority: priority weight + section +
// component + notes + 2 × min(days waiting, 6) − min(build hours, 15) +
// build-priority + perm-build-priority.
func CalPrio(r *Record, now time.Time) int {
	return calPrio(prioFields[string]{r.Priority, r.Section, r.Notes, r.StateChange, r.BuildTime, r.SuccessTime, r.BuildPri, r.PermBuildPri}, now)
}

// prioFields are the fields of a record that calprio depends on, as
// strings or as bytes of an encoded record (looked up without a copy).
type prioFields[S ~string | ~[]byte] struct {
	priority, section, notes            S
	stateChange, buildTime, successTime int64
	buildPri, permBuildPri              int
}

func calPrio[S ~string | ~[]byte](f prioFields[S], now time.Time) int {
	p := priorityWeight[string(f.priority)] + notesWeight[string(f.notes)]
	comp, sect := S("main"), f.section
	for i := 0; i < len(f.section); i++ {
		if f.section[i] == '/' {
			comp, sect = f.section[:i], f.section[i+1:]
			break
		}
	}
	p += componentWeight[string(comp)] + sectionWeight[string(sect)]
	p += 2 * min(stateDays(f.stateChange, now), 6)
	p -= min(int(max(f.buildTime, f.successTime)/3600), 15)
	return p + f.buildPri + f.permBuildPri
}

// Prioritized is a record with its calprio at the time of listing.
type Prioritized struct {
	*Record
	CalPrio int
	Days    int
}

// SortForBuild orders records as --list=needs-build does: calprio
// descending, then longest waiting first, then by name.
func SortForBuild(recs []*Record, now time.Time) []Prioritized {
	out := make([]Prioritized, len(recs))
	for i, r := range recs {
		out[i] = Prioritized{r, CalPrio(r, now), StateDays(r, now)}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.CalPrio != b.CalPrio {
			return a.CalPrio > b.CalPrio
		}
		if a.StateChange != b.StateChange {
			return a.StateChange < b.StateChange
		}
		return a.Package < b.Package
	})
	return out
}

// BuilderOrder lists packages of equal rank (the same calprio, waiting
// since the same second: a merge registers thousands at once) in an order
// of builder's own, by a hash of its name and theirs, instead of by name:
// the builders of a shared queue take down their lists at the same time,
// and in one order each take would be refused to all of them but one
// (with 52 hosts on four queues, ten refused takes for each take made,
// and the server's CPU spent on them: see README, "Connections at
// scale"). It sorts sorted (SortForBuild's) in place and returns it.
func BuilderOrder(sorted []Prioritized, builder string) []Prioritized {
	rank := func(p Prioritized) uint64 {
		h := fnv.New64a()
		io.WriteString(h, builder)
		h.Write([]byte{0})
		io.WriteString(h, p.Package)
		return h.Sum64()
	}
	keys := make(map[string]uint64, len(sorted))
	for _, p := range sorted {
		keys[p.Package] = rank(p)
	}
	slices.SortStableFunc(sorted, func(a, b Prioritized) int {
		return cmp.Or(cmp.Compare(b.CalPrio, a.CalPrio), cmp.Compare(a.StateChange, b.StateChange), cmp.Compare(keys[a.Package], keys[b.Package]))
	})
	return sorted
}

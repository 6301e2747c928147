package queue

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Build machine revisions: each builder reports, per (distribution,
// architecture), the revisions its build machine for that queue holds
// (internal/machine: NAME-1, NAME-2, ..., one of them current, each named
// across the hosts by its UUID), and the admin may require one revision
// of a queue: a builder whose machine is on another one takes nothing
// from that queue until it has it (buildd). The store keeps both: the
// reports of each builder replaced whole by its next one, and at most
// one required revision per queue. A builder host may be taken over, so
// everything reported is checked here, and a PostgreSQL store checks it
// again in the database (internal/queue/pg, schema version 6).

// MaxHeldRevisions is the most revisions one report may hold; a machine
// keeps its current revision, the one before it and those builds still
// use.
const MaxHeldRevisions = 16

// maxMachineName is the longest machine or revision name a report may
// hold.
const maxMachineName = 100

// HeldRevision is one revision of a build machine that a builder holds.
type HeldRevision struct {
	Machine  string `json:"machine"`
	Revision string `json:"revision"`
	UUID     string `json:"uuid"`
	Current  bool   `json:"current,omitempty"`
}

// ReportedRevision is a HeldRevision as the store keeps it: whose, of
// which queue and when it was reported (unix seconds, by the store's
// clock: PostgreSQL's own).
type ReportedRevision struct {
	Builder string `json:"builder"`
	Pair
	HeldRevision
	Reported int64 `json:"reported"`
}

// RequiredRevision is the revision a queue requires of its builders'
// machines, who set it and when (unix seconds, the store's clock).
type RequiredRevision struct {
	Pair
	UUID  string `json:"uuid"`
	SetBy string `json:"set_by"`
	Set   int64  `json:"set"`
}

// RevisionStore is where the reports and the requirements are kept: the
// queue's store itself.
type RevisionStore interface {
	// ReportRevisions replaces what builder reported of queue p with held
	// (CheckReport), and returns the UUID of the revision p requires, ""
	// when none.
	ReportRevisions(builder string, p Pair, held []HeldRevision) (required string, err error)
	// Revisions lists the reported revisions of builder in the queue p,
	// "" matching every builder, distribution or architecture, in
	// SortReported's order.
	Revisions(builder string, p Pair) ([]ReportedRevision, error)
	// RequireRevision makes p require the revision uuid, by the user by;
	// uuid "" lifts the requirement. On PostgreSQL only the admin may.
	RequireRevision(p Pair, uuid, by string) error
	// RequiredRevisions lists every queue's required revision, sorted by
	// distribution, then architecture.
	RequiredRevisions() ([]RequiredRevision, error)
}

// uuidRE is a UUID as btrfs-progs writes it: lower-case hex digits,
// 8-4-4-4-12.
var uuidRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
})

// ValidUUID reports whether s is a UUID as the stores keep them: 8-4-4-4-12
// lower-case hex digits.
func ValidUUID(s string) bool { return uuidRE().MatchString(s) }

// ValidMachineName reports whether s may name a build machine or one of
// its revisions in a report: 1 to 100 of letters, digits, ".", "+", "_"
// and "-", the first a letter or digit.
func ValidMachineName(s string) bool {
	return validName(s, maxMachineName, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '+' || c == '_' || c == '-'
	})
}

// CheckReport reports a report a store must not take: builder a
// ValidBuilder, the queue's names ValidLabel, at most MaxHeldRevisions
// revisions, each with valid names and a ValidUUID, no UUID twice, at
// most one current. The error names the bad input.
func CheckReport(builder string, p Pair, held []HeldRevision) error {
	switch {
	case !ValidBuilder(builder):
		return fmt.Errorf("revisions: invalid builder %q", builder)
	case !ValidLabel(p.Dist):
		return fmt.Errorf("revisions of %s: invalid distribution %q", builder, p.Dist)
	case !ValidLabel(p.Arch):
		return fmt.Errorf("revisions of %s: invalid architecture %q", builder, p.Arch)
	case len(held) > MaxHeldRevisions:
		return fmt.Errorf("revisions of %s in %s/%s: %d reported, at most %d", builder, p.Dist, p.Arch, len(held), MaxHeldRevisions)
	}
	seen := map[string]bool{}
	current := ""
	for i, h := range held {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("revisions of %s in %s/%s: revision %d: %s", builder, p.Dist, p.Arch, i+1, fmt.Sprintf(format, args...))
		}
		switch {
		case !ValidMachineName(h.Machine):
			return fail("invalid machine name %q", h.Machine)
		case !ValidMachineName(h.Revision):
			return fail("invalid revision name %q", h.Revision)
		case !ValidUUID(h.UUID):
			return fail("invalid UUID %q (want 8-4-4-4-12 lower-case hex digits)", h.UUID)
		case seen[h.UUID]:
			return fail("UUID %s reported twice", h.UUID)
		case h.Current && current != "":
			return fail("%s is current, and so is %s", h.Revision, current)
		}
		seen[h.UUID] = true
		if h.Current {
			current = h.Revision
		}
	}
	return nil
}

// CheckRequirement reports a requirement a store must not take: the
// queue's names ValidLabel, uuid a ValidUUID or "" (none), by a
// ValidBuilder. The error names the bad input.
func CheckRequirement(p Pair, uuid, by string) error {
	switch {
	case !ValidLabel(p.Dist):
		return fmt.Errorf("required revision: invalid distribution %q", p.Dist)
	case !ValidLabel(p.Arch):
		return fmt.Errorf("required revision of %s: invalid architecture %q", p.Dist, p.Arch)
	case uuid != "" && !ValidUUID(uuid):
		return fmt.Errorf("required revision of %s/%s: invalid UUID %q (want 8-4-4-4-12 lower-case hex digits)", p.Dist, p.Arch, uuid)
	case !ValidBuilder(by):
		return fmt.Errorf("required revision of %s/%s: invalid user %q", p.Dist, p.Arch, by)
	}
	return nil
}

// CurrentOf is the current revision among held; ok is false when none is.
func CurrentOf(held []HeldRevision) (h HeldRevision, ok bool) {
	i := slices.IndexFunc(held, func(h HeldRevision) bool { return h.Current })
	if i < 0 {
		return HeldRevision{}, false
	}
	return held[i], true
}

// SortReported sorts reports by distribution, architecture, builder and
// machine, the current revision first, then the newest (a longer name,
// NAME-10 after NAME-9, then the greater) first.
func SortReported(rs []ReportedRevision) {
	slices.SortFunc(rs, func(a, b ReportedRevision) int {
		if c := cmp.Or(cmp.Compare(a.Dist, b.Dist), cmp.Compare(a.Arch, b.Arch), cmp.Compare(a.Builder, b.Builder),
			cmp.Compare(a.Machine, b.Machine)); c != 0 {
			return c
		}
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(len(b.Revision), len(a.Revision)), cmp.Compare(b.Revision, a.Revision), cmp.Compare(a.UUID, b.UUID))
	})
}

// Behind are the builders of reports (one queue's) whose current
// revision is not required: none when required is "". They take nothing
// from the queue until they have it.
func Behind(reports []ReportedRevision, required string) []string {
	if required == "" {
		return nil
	}
	on := map[string]bool{}
	var builders []string
	for _, r := range reports {
		if _, ok := on[r.Builder]; !ok {
			builders = append(builders, r.Builder)
			on[r.Builder] = false
		}
		if r.Current && r.UUID == required {
			on[r.Builder] = true
		}
	}
	var behind []string
	for _, b := range builders {
		if !on[b] {
			behind = append(behind, b)
		}
	}
	slices.Sort(behind)
	return behind
}

// maxHeldText is the most bytes ReadHeld reads: MaxHeldRevisions lines of
// the longest names, with room to spare.
const maxHeldText = 16 << 10

// ErrHeldTooLarge is matched when a revision report is over maxHeldText.
var ErrHeldTooLarge = errors.New("revision report too large")

// WriteHeld writes held as ReadHeld reads it: one revision a line,
// "MACHINE REVISION UUID", then " current" for the current one.
func WriteHeld(w io.Writer, held []HeldRevision) error {
	var b strings.Builder
	for _, h := range held {
		b.WriteString(h.Machine + " " + h.Revision + " " + h.UUID)
		if h.Current {
			b.WriteString(" current")
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ReadHeld reads a revision report as WriteHeld writes it from r, which
// name names in errors ("stdin"): at most maxHeldText bytes, blank lines
// ignored, each revision checked (CheckReport's checks of one revision;
// the report as a whole is the store's to check).
func ReadHeld(r io.Reader, name string) ([]HeldRevision, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxHeldText+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxHeldText {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", name, ErrHeldTooLarge, maxHeldText)
	}
	var held []HeldRevision
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, maxHeldText+1)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || len(f) > 4 || len(f) == 4 && f[3] != "current" {
			return nil, fmt.Errorf("%s:%d: %q: want MACHINE REVISION UUID [current]", name, n, clipText(sc.Text()))
		}
		h := HeldRevision{Machine: f[0], Revision: f[1], UUID: f[2], Current: len(f) == 4}
		switch {
		case !ValidMachineName(h.Machine):
			return nil, fmt.Errorf("%s:%d: invalid machine name %q", name, n, clipText(h.Machine))
		case !ValidMachineName(h.Revision):
			return nil, fmt.Errorf("%s:%d: invalid revision name %q", name, n, clipText(h.Revision))
		case !ValidUUID(h.UUID):
			return nil, fmt.Errorf("%s:%d: invalid UUID %q (want 8-4-4-4-12 lower-case hex digits)", name, n, clipText(h.UUID))
		}
		held = append(held, h)
	}
	return held, sc.Err()
}

// clipText is s cut for an error message.
func clipText(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

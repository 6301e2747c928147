package queue

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// The health of a network of builders: every ended build is kept with
// its class and the resources it measured (the last MaxBuildsKept of
// each package, per queue), a package given back waits before it may be
// taken again (RetryAfter, growing with each give-back in a row, Held
// for the admin once its retries are used up or two builders failed it
// for infrastructure), and each builder reports in, idle or not, with
// its slots and whether it put itself in quarantine (BuilderStatus). A
// builder host may be taken over: everything reported is checked here,
// and a PostgreSQL store checks it again in the database
// (internal/queue/pg, schema version 7).

// Class is what a finished build's outcome was caused by, from what the
// build saw (its stage, exit status, cgroup events, the volume's free
// space), never from the log's text.
type Class string

// The classes of a finished build.
const (
	ClassOK      Class = "ok"             // built
	ClassPackage Class = "package"        // its build or tests failed
	ClassDeps    Class = "deps"           // its build-dependencies cannot be satisfied
	ClassTimeout Class = "timeout"        // killed by build_timeout or no_output_timeout
	ClassOOM     Class = "oom"            // killed by its slot's memory limit
	ClassInfra   Class = "infrastructure" // fetch, mirror, snapshot, full disk, apt, the daemon: not the package's fault
	// ClassRetry is not a build's: the admin's wanna-build --retry,
	// which ends a package's backoff or hold.
	ClassRetry Class = "retry"
)

// Classes are the classes of finished builds, for the status web and
// /metrics.
var Classes = []Class{ClassOK, ClassPackage, ClassDeps, ClassTimeout, ClassOOM, ClassInfra}

// MaxBuildsKept is how many ended builds of one package (per queue) a
// store keeps.
const MaxBuildsKept = 8

// MaxRetryDelay is the longest a give-back may make a package wait.
const MaxRetryDelay = 7 * 24 * time.Hour

// Resources are what one build used, measured by its builder.
type Resources struct {
	PeakMemory int64 `json:"peak_memory_kib"` // KiB: the most its cgroup held at once, over every step
	CPUTime    int64 `json:"cpu_ms"`          // milliseconds of CPU, user and system, over every step
	Disk       int64 `json:"disk_kib"`        // KiB: the built tree and the installed build-dependencies
	Wall       int64 `json:"wall_s"`          // seconds from the start of the job to its end
	SlotMemory int64 `json:"slot_memory_kib"` // KiB: the memory limit of the slot it ran in
}

// BuildEnd is how a builder tells its queue that a build ended (Port.End).
type BuildEnd struct {
	Outcome Outcome `json:"outcome"`
	Class   Class   `json:"class"`
	Stage   string  `json:"stage,omitempty"` // Fail-Stage, "" when built
	Resources
	// Retry is the builder's retry policy (its config), used when the
	// outcome is a give-back: the first give-back in a row waits Delay,
	// each next one twice as long, and after Max in a row the package is
	// held for the admin.
	Retry RetryPolicy `json:"retry"`
}

// RetryPolicy is how long a package given back waits before it may be
// taken again.
type RetryPolicy struct {
	Delay int64 `json:"delay_s"` // seconds before the first retry
	Max   int   `json:"max"`     // give-backs in a row before the package is held for the admin
}

// BuildRecord is one ended build as the store keeps it.
type BuildRecord struct {
	Package string  `json:"package"`
	Version string  `json:"version"`
	Builder string  `json:"builder"`
	Time    int64   `json:"time"` // when it ended, unix seconds, the store's clock
	Outcome Outcome `json:"outcome,omitempty"`
	Class   Class   `json:"class"`
	Stage   string  `json:"stage,omitempty"`
	Resources
	// RetryAfter (unix seconds): before it, the package may not be taken
	// again; 0 is at once.
	RetryAfter int64 `json:"retry_after,omitempty"`
	// Held: the package is not taken again until the admin says
	// (wanna-build --retry), and why.
	Held string `json:"held,omitempty"`
}

// BuildStore is the ended builds of the packages of one queue, kept in
// the transaction of their state change.
type BuildStore interface {
	// AddBuild keeps b (b.Package of the transaction's queue), dropping
	// the oldest of that package beyond MaxBuildsKept.
	AddBuild(b *BuildRecord) error
	// Builds calls fn with the kept builds of name ("" for every
	// package), each package's oldest first.
	Builds(name string, fn func(*BuildRecord) error) error
}

// CheckBuildEnd reports a BuildEnd a store must not take; the error names
// the package and the bad field.
func CheckBuildEnd(pkgv string, e *BuildEnd) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("build end of %s: %s", pkgv, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(Outcomes, e.Outcome) {
		return fail("invalid outcome %q", e.Outcome)
	}
	if !slices.Contains(Classes, e.Class) {
		return fail("invalid class %q", e.Class)
	}
	if (e.Class == ClassOK) != (e.Outcome == Successful) {
		return fail("class %s with outcome %s", e.Class, e.Outcome)
	}
	if len(e.Stage) > 32 || !validStage(e.Stage) {
		return fail("invalid stage %q", clipText(e.Stage))
	}
	for _, n := range []struct {
		name string
		v    int64
		max  int64
	}{
		{"peak memory", e.PeakMemory, 1 << 40}, {"CPU time", e.CPUTime, 1 << 40}, {"disk", e.Disk, 1 << 40},
		{"wall time", e.Wall, 1 << 32}, {"slot memory", e.SlotMemory, 1 << 40},
		{"retry delay", e.Retry.Delay, int64(MaxRetryDelay / time.Second)}, {"retries", int64(e.Retry.Max), 1000},
	} {
		if n.v < 0 || n.v > n.max {
			return fail("%s %d out of range (0 to %d)", n.name, n.v, n.max)
		}
	}
	return nil
}

// validStage: "" or lower-case letters and "-".
func validStage(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// GaveBackInARow are the give-backs of builds (one package's, oldest
// first) since its last build that was not given back, or the admin's
// last --retry, whichever is later.
func GaveBackInARow(builds []*BuildRecord) []*BuildRecord {
	i := len(builds)
	for i > 0 && builds[i-1].Outcome == GivenBack {
		i--
	}
	return builds[i:]
}

// NextBuild is the record of the build e of pkg ended at now by builder,
// after the package's kept builds before (oldest first): a give-back
// waits e.Retry.Delay, doubled for each earlier give-back in a row, at
// most MaxRetryDelay; it is held for the admin when it is the Max-th in a
// row, or when it is an infrastructure failure and the give-back before
// it was one of another builder (the package's problem, not the
// builders').
func NextBuild(pkg, version, builder string, now time.Time, e *BuildEnd, before []*BuildRecord) *BuildRecord {
	b := &BuildRecord{Package: pkg, Version: version, Builder: builder, Time: now.Unix(),
		Outcome: e.Outcome, Class: e.Class, Stage: e.Stage, Resources: e.Resources}
	if e.Outcome != GivenBack {
		return b
	}
	row := GaveBackInARow(before)
	delay := time.Duration(e.Retry.Delay) * time.Second
	for range row {
		if delay >= MaxRetryDelay {
			break
		}
		delay *= 2
	}
	b.RetryAfter = now.Add(min(delay, MaxRetryDelay)).Unix()
	if e.Class == ClassInfra {
		for _, p := range slices.Backward(row) {
			if p.Class == ClassInfra && p.Builder != builder {
				b.Held = fmt.Sprintf("infrastructure failures on two builders (%s, then %s): the package's problem, not theirs", p.Builder, builder)
				return b
			}
		}
	}
	if e.Retry.Max > 0 && len(row)+1 >= e.Retry.Max {
		b.Held = fmt.Sprintf("given back %d times in a row", len(row)+1)
	}
	return b
}

// Waiting is why the package whose kept builds are builds (oldest first)
// may not be taken at now: held for the admin, or in backoff until a
// time; "" when it may.
func Waiting(builds []*BuildRecord, now time.Time) string {
	if len(builds) == 0 {
		return ""
	}
	last := builds[len(builds)-1]
	switch {
	case last.Outcome != GivenBack:
		return ""
	case last.Held != "":
		return "held for the admin (wanna-build --retry): " + last.Held
	case last.RetryAfter > now.Unix():
		return "in backoff until " + time.Unix(last.RetryAfter, 0).UTC().Format(TimeFormat) + " UTC (given back " + string(last.Class) + " by " + last.Builder + ")"
	}
	return ""
}

// BuilderStatus is what a builder reports of itself for one queue, idle
// or not, each round: its heartbeat.
type BuilderStatus struct {
	Builder string `json:"builder"`
	Pair
	Slots      int   `json:"slots"`           // builds it runs at once
	SlotMemory int64 `json:"slot_memory_kib"` // KiB each slot may use
	Running    int   `json:"running"`         // builds running now
	// Quarantined is why the builder stopped taking packages, "" when it
	// takes them.
	Quarantined string `json:"quarantined,omitempty"`
	// QuarantinedSince (unix seconds), 0 when not quarantined.
	QuarantinedSince int64 `json:"quarantined_since,omitempty"`
	// Heard is when the store received it (unix seconds, the store's
	// clock).
	Heard int64 `json:"heard"`
}

// BuilderStore keeps the last BuilderStatus of each builder and queue.
type BuilderStore interface {
	// Heartbeat keeps st (CheckStatus), replacing the builder's last one
	// of the queue, stamped by the store's clock.
	Heartbeat(st BuilderStatus) error
	// Builders lists the statuses of the queue p ("" matching every
	// distribution or architecture), sorted by distribution,
	// architecture, builder.
	Builders(p Pair) ([]BuilderStatus, error)
}

// maxQuarantineText is the most bytes of a quarantine's reason.
const maxQuarantineText = 1024

// CheckStatus reports a BuilderStatus a store must not take.
func CheckStatus(st *BuilderStatus) error {
	switch {
	case !ValidBuilder(st.Builder):
		return fmt.Errorf("heartbeat: invalid builder %q", clipText(st.Builder))
	case !ValidLabel(st.Dist):
		return fmt.Errorf("heartbeat of %s: invalid distribution %q", st.Builder, clipText(st.Dist))
	case !ValidLabel(st.Arch):
		return fmt.Errorf("heartbeat of %s: invalid architecture %q", st.Builder, clipText(st.Arch))
	case st.Slots < 0 || st.Slots > 1024:
		return fmt.Errorf("heartbeat of %s: %d slots, at most 1024", st.Builder, st.Slots)
	case st.Running < 0 || st.Running > 1024:
		return fmt.Errorf("heartbeat of %s: %d running, at most 1024", st.Builder, st.Running)
	case st.SlotMemory < 0 || st.SlotMemory > 1<<40:
		return fmt.Errorf("heartbeat of %s: slot memory %d KiB out of range", st.Builder, st.SlotMemory)
	case len(st.Quarantined) > maxQuarantineText:
		return fmt.Errorf("heartbeat of %s: quarantine reason of %d bytes, at most %d", st.Builder, len(st.Quarantined), maxQuarantineText)
	case st.Quarantined == "" && st.QuarantinedSince != 0:
		return fmt.Errorf("heartbeat of %s: quarantined since %d without a reason", st.Builder, st.QuarantinedSince)
	}
	for _, c := range st.Quarantined {
		if c < ' ' && c != '\n' || c == 0x7f {
			return fmt.Errorf("heartbeat of %s: control character in the quarantine reason", st.Builder)
		}
	}
	return nil
}

// SortStatuses sorts statuses by distribution, architecture, builder.
func SortStatuses(sts []BuilderStatus) {
	slices.SortFunc(sts, func(a, b BuilderStatus) int {
		return cmp.Or(cmp.Compare(a.Dist, b.Dist), cmp.Compare(a.Arch, b.Arch), cmp.Compare(a.Builder, b.Builder))
	})
}

// SilentAfter is how long a builder may go unheard before the status web
// marks it silent: three of its rounds at the longest idle sleep, and
// never less than ten minutes.
const SilentAfter = 10 * time.Minute

// Fits reports whether a package whose kept builds are builds fits a slot
// of slotKiB: its last measured peak memory, with headroom (a quarter
// more), is at most the slot's share; a package never measured fits.
func Fits(builds []*BuildRecord, slotKiB int64) bool {
	need := NeedsMemory(builds)
	return need == 0 || slotKiB == 0 || need <= slotKiB
}

// NeedsMemory is the memory (KiB) a package whose kept builds are builds
// is expected to need: the last measured peak with a quarter more; more
// than the slot it was killed in (a quarter more) when its last measured
// build ran out of memory; 0 when never measured.
func NeedsMemory(builds []*BuildRecord) int64 {
	for _, b := range slices.Backward(builds) {
		switch {
		case b.Class == ClassOOM && b.SlotMemory > 0:
			return b.SlotMemory + b.SlotMemory/4 + 1
		case b.PeakMemory > 0 && b.Class != ClassInfra:
			return b.PeakMemory + b.PeakMemory/4
		}
	}
	return 0
}

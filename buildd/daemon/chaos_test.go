package daemon

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/flock"
)

// The chaos run (issue 29): one PostgreSQL queue of its own, eight real
// buildd processes with their own homes (two of them reaching the queue
// over ssh, one with a home on a small loop volume), buildd-mail taking
// the admin's signed replies, buildd-uploader uploading to a local
// target, real builds of small packages (quick, slow, failing), and
// faults injected on a schedule drawn from a seed:
//
//   - PostgreSQL stopped with -m immediate and started again at once, and
//     stopped for longer than the daemons' retry interval (ListenRetry);
//   - kill -9 of a buildd (started again after a few seconds), and of
//     buildd-mail and buildd-uploader runs at random points;
//   - a builder frozen (SIGSTOP) past its lease while it builds, then
//     resumed;
//   - a builder's home volume full for a while;
//   - a builder whose queue host stamps its changes with a clock off by
//     less than the tolerances (see chaosSkew);
//   - a builder reaching the queue over ssh whose connection is cut in the
//     middle of a call, before or after the call's change is committed;
//   - signed replies delivered while the queue is down;
//   - a sick builder, whose mirror refuses every connection, among the
//     healthy ones (sickNode).
//
// When the schedule is over the run settles (every package reaches its
// end: Uploaded, or Failed by the admin's answer), the builders stop, and
// the invariants are checked in code from the queue, the homes, the
// machines volume and the upload target (chaos_check_test.go). The run
// prints the faults, the builds, the recoveries and their times; a
// failing run prints its seed.
//
// BUILDD_CHAOS_SEED sets the seed (else one is drawn and printed);
// BUILDD_CHAOS_KEEP=DIR keeps each builder's daemon.log and build logs,
// the queue's history and the admin's mail in DIR, for a post-mortem;
// BUILDD_CHAOS_LONG=1 runs the long variant (make test-chaos), else the
// short one runs (in make test, under three minutes). The run holds
// /var/lock/buildd-realbuilds.lock (flock) unless BUILDD_CHAOS_LOCKED is
// set by make, which holds it already.

const (
	chaosSeedEnv   = "BUILDD_CHAOS_SEED"
	chaosLongEnv   = "BUILDD_CHAOS_LONG"
	chaosLockedEnv = "BUILDD_CHAOS_LOCKED"
	chaosBrokenEnv = "BUILDD_CHAOS_BROKEN"
	chaosKeepEnv   = "BUILDD_CHAOS_KEEP"
	chaosLock      = "/var/lock/buildd-realbuilds.lock"
)

// chaosPlan is the size of a run: its packages and how many faults of each
// kind the schedule draws, within window after the merge.
type chaosPlan struct {
	name                     string
	quick, slow, failing     int
	slowest                  int           // seconds a slow package's build sleeps at most (at least 20)
	window                   time.Duration // faults start within it
	settle                   time.Duration // bound on reaching every package's end after the schedule
	pgRestarts, pgStops      int
	builddKills, freezes     int
	mailKills, uploaderKills int
	sshDrops, homeFulls      int
}

var (
	shortPlan = chaosPlan{name: "short", quick: 10, slow: 4, failing: 4, slowest: 45, window: 50 * time.Second, settle: 2 * time.Minute,
		pgRestarts: 1, pgStops: 1, builddKills: 2, freezes: 1, mailKills: 2, uploaderKills: 2, sshDrops: 2, homeFulls: 1}
	longPlan = chaosPlan{name: "long", quick: 30, slow: 16, failing: 10, slowest: 90, window: 4 * time.Minute, settle: 6 * time.Minute,
		pgRestarts: 3, pgStops: 2, builddKills: 6, freezes: 2, mailKills: 8, uploaderKills: 8, sshDrops: 8, homeFulls: 2}
)

// chaosLease is every builder's lease_timeout: longer than a PostgreSQL
// stop plus a renewal period (LeaseEvery), so that an outage alone does
// not end live builders' leases, and short enough that a freeze past it
// fits in a short run.
const chaosLease = 30 * time.Second

// TestChaos runs the chaos run against the real buildd.
func TestChaos(t *testing.T) {
	if os.Getenv(chaosBrokenEnv) != "" {
		t.Skip("BUILDD_CHAOS_BROKEN is set: TestChaosBroken runs instead")
	}
	chaosLocked(t)
	seed := chaosSeed(t)
	r := runChaos(t, seed, chaosVariant(), bin)
	t.Logf("chaos run %s, seed %d:\n%s", r.plan.name, seed, r.report())
	if len(r.violations) > 0 {
		t.Fatalf("chaos run %s, seed %d (rerun: %s=%d %s=%s): %d invariants broken:\n  %s",
			r.plan.name, seed, chaosSeedEnv, seed, chaosLongEnv, os.Getenv(chaosLongEnv), len(r.violations), strings.Join(r.violations, "\n  "))
	}
}

// TestChaosBroken is the test of the test (make test-chaos-broken): the
// same run against a buildd whose lease renewal is disabled (the program
// in chaosbroken/, built with -tags chaosbroken; the product has no such
// switch) must break an invariant. It runs only when BUILDD_CHAOS_BROKEN
// is set.
func TestChaosBroken(t *testing.T) {
	if os.Getenv(chaosBrokenEnv) == "" {
		t.Skip("the test of the chaos test runs with BUILDD_CHAOS_BROKEN=1 (make test-chaos-broken)")
	}
	chaosLocked(t)
	broken := filepath.Join(t.TempDir(), "buildd-chaosbroken")
	if out, err := exec.Command("go", "build", "-tags", "chaosbroken", "-o", broken, "buildd/buildd/daemon/chaosbroken").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags chaosbroken buildd/buildd/daemon/chaosbroken: %v\n%s", err, out)
	}
	seed := chaosSeed(t)
	r := runChaos(t, seed, chaosVariant(), broken)
	t.Logf("chaos run %s against the broken buildd, seed %d:\n%s", r.plan.name, seed, r.report())
	if len(r.violations) == 0 {
		t.Fatalf("seed %d: the chaos run found nothing wrong with a buildd that does not renew its leases", seed)
	}
	t.Logf("as it should, the run against the broken buildd broke %d invariants:\n  %s", len(r.violations), strings.Join(r.violations, "\n  "))
}

// chaosLocked holds the heavy runs' lock for the test, unless make holds
// it already.
func chaosLocked(t *testing.T) {
	if os.Getenv(chaosLockedEnv) != "" {
		return
	}
	t.Logf("taking %s (waiting up to 30 min for other heavy runs)", chaosLock)
	lk, err := flock.Acquire(chaosLock, flock.Exclusive, 0o644, 30*time.Minute)
	if err != nil {
		t.Fatalf("lock %s: %v", chaosLock, err)
	}
	t.Cleanup(func() { lk.Unlock() })
}

// chaosSeed is BUILDD_CHAOS_SEED, or a fresh random seed; either is
// printed first, so that even a run that dies says it.
func chaosSeed(t *testing.T) uint64 {
	if s := os.Getenv(chaosSeedEnv); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", chaosSeedEnv, s, err)
		}
		t.Logf("chaos seed %d (from %s)", seed, chaosSeedEnv)
		return seed
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	seed := binary.LittleEndian.Uint64(b[:]) >> 1
	t.Logf("chaos seed %d (drawn; rerun with %s=%d)", seed, chaosSeedEnv, seed)
	return seed
}

func chaosVariant() chaosPlan {
	if os.Getenv(chaosLongEnv) != "" {
		return longPlan
	}
	return shortPlan
}

// report is the run's figures, as printed.
func (c *chaos) report() string {
	var b strings.Builder
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(&b, "  run: %d builders, %d packages (%d quick, %d slow, %d failing), lease %v; setup %v, schedule %v, settle %v, stop and checks %v\n",
		len(c.nodes), len(c.pkgs), c.plan.quick, c.plan.slow, c.plan.failing, chaosLease,
		c.times.setup.Round(time.Second), c.times.schedule.Round(time.Second), c.times.settle.Round(time.Second), c.times.checks.Round(time.Second))
	fmt.Fprintf(&b, "  buildd_7's queue host stamps its changes with a clock %+ds off; buildd_8 reaches the queue through the cutting proxy; buildd_%d's home is a %s loop volume; buildd_%d is sick (its mirror refuses)\n",
		c.skew, smallHomeNode+1, smallHome, sickNode+1)
	fmt.Fprintf(&b, "  faults injected (%d):\n", len(c.faults))
	for _, f := range c.faults {
		fmt.Fprintf(&b, "    %6.1fs %s\n", f.at.Sub(c.began).Seconds(), f.what)
		for _, r := range f.recoveries {
			fmt.Fprintf(&b, "            %s\n", r)
		}
	}
	b.WriteString("  figures:\n")
	for _, l := range c.figures {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	return b.String()
}

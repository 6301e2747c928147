package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// fakeMachines is a machines volume for the in-process rounds: its
// machines' revisions are what the test sets (the real volume's are in
// TestNetworkRevision).
type fakeMachines struct {
	mu   sync.Mutex
	revs map[string][]machine.Revision
	err  error
}

func (f *fakeMachines) Clean(context.Context) (deleted, notUnderstood, inUse []string, err error) {
	return nil, nil, nil, nil
}

func (f *fakeMachines) Revisions(name string) ([]machine.Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revs[name], f.err
}

// set makes machine name hold revisions 1..len(uuids) with those UUIDs,
// current the one numbered current (0: none).
func (f *fakeMachines) set(name string, current int, uuids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revs == nil {
		f.revs = map[string][]machine.Revision{}
	}
	var revs []machine.Revision
	for i, u := range uuids {
		revs = append(revs, machine.Revision{Name: fmt.Sprintf("%s-%d", name, i+1), Number: i + 1, ReadOnly: true, Current: i+1 == current, UUID: u})
	}
	f.revs[name] = revs
}

// uuid is the test's UUID number n.
func uuid(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// TestHeldRevisions: a machine's revisions as a report holds them: the
// current first, then the newest; without those whose UUID or name a
// report does not take, each UUID once, at most MaxHeldRevisions.
func TestHeldRevisions(t *testing.T) {
	rev := func(n int, current bool, u string) machine.Revision {
		return machine.Revision{Name: fmt.Sprintf("m-%d", n), Number: n, Current: current, UUID: u}
	}
	var many []machine.Revision
	for n := 1; n <= 20; n++ {
		many = append(many, rev(n, n == 3, uuid(n)))
	}
	for _, tc := range []struct {
		name string
		revs []machine.Revision
		want []string // "REVISION UUID-NUMBER [current]"
	}{
		{"none", nil, nil},
		{"current first, then the newest", []machine.Revision{rev(1, false, uuid(1)), rev(3, false, uuid(3)), rev(2, true, uuid(2))},
			[]string{"m-2 2 current", "m-3 3", "m-1 1"}},
		{"no UUID, a bad one, one twice", []machine.Revision{rev(1, false, ""), rev(2, false, "NOT-A-UUID"), rev(3, true, uuid(7)), rev(4, false, uuid(7))},
			[]string{"m-3 7 current"}},
		{"a bad name", []machine.Revision{{Name: "m 1", Number: 1, Current: true, UUID: uuid(1)}}, nil},
		{"at most 16", many, []string{"m-3 3 current", "m-20 20", "m-19 19", "m-18 18", "m-17 17", "m-16 16", "m-15 15", "m-14 14",
			"m-13 13", "m-12 12", "m-11 11", "m-10 10", "m-9 9", "m-8 8", "m-7 7", "m-6 6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, h := range heldRevisions("m", tc.revs) {
				var n int
				fmt.Sscanf(h.UUID, "%08x", &n)
				s := fmt.Sprintf("%s %d", h.Revision, n)
				if h.Current {
					s += " current"
				}
				if h.Machine != "m" {
					t.Errorf("%s: machine %q, want m", h.Revision, h.Machine)
				}
				got = append(got, s)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("held %q, want %q", got, tc.want)
			}
			if err := queue.CheckReport("b", queue.Pair{Dist: "bookworm", Arch: "amd64"}, heldRevisions("m", tc.revs)); err != nil {
				t.Errorf("the report is refused: %v", err)
			}
		})
	}
}

// countingPort counts a port's reports and fails them with err.
type countingPort struct {
	queue.Port
	mu      sync.Mutex
	reports int
	err     error
}

func (p *countingPort) Revisions(ctx context.Context, held []queue.HeldRevision) (string, error) {
	p.mu.Lock()
	p.reports++
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return "", err
	}
	return p.Port.Revisions(ctx, held)
}

func (p *countingPort) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reports
}

// revisionEnv is a queueEnv whose machine and port the test controls, and
// the queue's store to require revisions in.
type revisionEnv struct {
	*queueEnv
	m    *fakeMachines
	port *countingPort
}

func newRevisionEnv(t *testing.T, pkgs ...srcPkg) *revisionEnv {
	q := newQueueEnv(t, "max_build = 1", pkgs...)
	e := &revisionEnv{queueEnv: q, m: &fakeMachines{}}
	q.d.machines = e.m
	open := q.d.parts.Queue
	q.d.parts.Queue = func(c *config.Config, d *config.Dist) queue.Port {
		e.port = &countingPort{Port: open(c, d)}
		return e.port
	}
	return e
}

// require makes the queue require uuid ("" none), as the admin does.
func (e *revisionEnv) require(uuid string) {
	e.t.Helper()
	db, err := store.Open(e.cfg.WannaBuildDB, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if err := db.RequireRevision(queue.Pair{Dist: "bookworm", Arch: "amd64"}, uuid, "admin"); err != nil {
		e.t.Fatal(err)
	}
}

// reported is what the queue holds of the builder's report, as
// "REVISION UUID [current]" lines.
func (e *revisionEnv) reported() []string {
	e.t.Helper()
	db, err := store.Open(e.cfg.WannaBuildDB, store.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Revisions(e.cfg.Dists[0].WannaBuildDBUser, queue.Pair{Dist: "bookworm", Arch: "amd64"})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		s := r.Revision + " " + r.UUID
		if r.Current {
			s += " current"
		}
		out = append(out, s)
	}
	return out
}

// TestRevisionHold: round by round, a builder reports its machine's
// revisions to the queue, throttled; while the queue requires another
// revision than its machine's current one it takes nothing of the dist,
// neither from the queue nor from REDO, and says so once; once its
// machine is on it (which the loop's MachineMoved notices), or the
// requirement is lifted, it takes again, and says so.
func TestRevisionHold(t *testing.T) {
	e := newRevisionEnv(t, pkg("alpha", "1.0"), pkg("beta", "1.0"), pkg("gamma", "1.0"))
	const machine = "bookworm-amd64"
	hold := "bookworm/amd64: machine bookworm-amd64 is on revision bookworm-amd64-1 (UUID " + uuid(1) + "), the queue requires UUID " + uuid(2) + ": taking nothing until it has it"
	e.m.set(machine, 1, uuid(1))

	// No requirement: it builds, and its report is in the queue.
	e.round()
	if got := e.b.built(); got != "alpha_1.0" {
		t.Fatalf("built %q, want alpha_1.0", got)
	}
	if got, want := e.reported(), []string{"bookworm-amd64-1 " + uuid(1) + " current"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("the queue holds the report %q, want %q", got, want)
	}
	// Within ReportEvery, with the same machine: not reported again.
	e.require(uuid(2))
	if err := home.New(e.cfg.Home).REDO().Add(home.RedoEntry{PkgVersion: "gamma_1.0", Dist: "bookworm"}); err != nil {
		t.Fatal(err)
	}
	e.round()
	if n := e.port.count(); n != 1 {
		t.Fatalf("%d reports after two rounds within ReportEvery, want 1", n)
	}
	if got := e.b.built(); got != "alpha_1.0 gamma_1.0" {
		t.Fatalf("built %q: the requirement is not known before the next report", got)
	}

	// The machine gets a revision that is not current: reported at once,
	// and the requirement learned; nothing is taken, from the queue or
	// from REDO, round after round, and it is said once.
	e.m.set(machine, 1, uuid(1), uuid(3))
	if err := home.New(e.cfg.Home).REDO().Add(home.RedoEntry{PkgVersion: "gamma_1.0", Dist: "bookworm"}); err != nil {
		t.Fatal(err)
	}
	// A revision report is due when the current revision changed: the
	// UUID of the one current stays, so make it due by time instead.
	e.d.gates["bookworm/amd64"].reported = e.d.gates["bookworm/amd64"].reported.Add(-ReportEvery)
	for i := 0; i < 3; i++ {
		e.round()
	}
	if got := e.b.built(); got != "alpha_1.0 gamma_1.0" {
		t.Fatalf("built %q while the queue requires another revision", got)
	}
	if n := strings.Count(e.daemonLog(), hold); n != 1 {
		t.Fatalf("the hold is said %d times, want once:\n%s", n, e.daemonLog())
	}
	if st := e.state("beta"); st != queue.NeedsBuild {
		t.Fatalf("beta is %s while held back", st)
	}
	if es, _, _ := home.New(e.cfg.Home).REDO().Read(); len(es) != 1 || es[0].PkgVersion != "gamma_1.0" {
		t.Fatalf("REDO holds %v, want gamma_1.0 kept", es)
	}
	if got := e.reported(); len(got) != 2 {
		t.Fatalf("the queue holds %q, want both revisions", got)
	}
	if e.d.MachineMoved() {
		t.Fatal("MachineMoved with the machine as it was")
	}

	// The machine gets the required revision: the loop notices, and the
	// next round takes again, REDO first.
	e.m.set(machine, 2, uuid(1), uuid(2))
	if !e.d.MachineMoved() {
		t.Fatal("MachineMoved does not see the machine on another revision")
	}
	e.round()
	if got := e.b.built(); got != "alpha_1.0 gamma_1.0 gamma_1.0" {
		t.Fatalf("built %q once on the required revision, want gamma from REDO", got)
	}
	again := "bookworm/amd64: machine bookworm-amd64 is on the required revision bookworm-amd64-2 (UUID " + uuid(2) + "): taking packages again"
	if !strings.Contains(e.daemonLog(), again) {
		t.Fatalf("daemon.log does not say %q:\n%s", again, e.daemonLog())
	}

	// Held back without a current revision; then the requirement lifted:
	// a held-back dist reports every round, and takes again.
	e.m.set(machine, 0, uuid(1))
	e.require(uuid(4))
	e.d.gates["bookworm/amd64"].reported = e.d.gates["bookworm/amd64"].reported.Add(-ReportEvery)
	e.round()
	none := "bookworm/amd64: machine bookworm-amd64 has no current revision here, the queue requires UUID " + uuid(4) + ": taking nothing until it has it"
	if !strings.Contains(e.daemonLog(), none) {
		t.Fatalf("daemon.log does not say %q:\n%s", none, e.daemonLog())
	}
	e.require("")
	e.round()
	if got := e.b.built(); got != "alpha_1.0 gamma_1.0 gamma_1.0 beta_1.0" {
		t.Fatalf("built %q once the requirement is lifted, want beta", got)
	}
	lifted := "bookworm/amd64: the queue requires no revision of machine bookworm-amd64 now: taking packages again"
	if !strings.Contains(e.daemonLog(), lifted) {
		t.Fatalf("daemon.log does not say %q:\n%s", lifted, e.daemonLog())
	}
}

// TestRevisionReportFails: a queue that cannot take the report (an old
// wanna-build on the queue host) is logged once, and the builder goes on
// as if nothing were required; a machines volume it cannot read is
// logged once too, nothing is reported, and it goes on as well.
func TestRevisionReportFails(t *testing.T) {
	for _, tc := range []struct {
		name       string
		port, mach error
		logged     string
		reports    int
	}{
		{"the queue", errors.New("Unknown option: report-revisions"), nil,
			"bookworm/amd64: reporting the revisions of machine bookworm-amd64 to the queue failed: Unknown option: report-revisions -- going on without its required revision", 3},
		{"the machines volume", nil, errors.New("machines volume gone"),
			"bookworm/amd64: cannot read the revisions of machine bookworm-amd64: machines volume gone -- not reporting them", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newRevisionEnv(t, pkg("alpha", "1.0"), pkg("beta", "1.0"))
			e.m.set("bookworm-amd64", 1, uuid(1))
			e.m.err = tc.mach
			e.require(uuid(2))
			e.round() // the queue: held back
			e.port.err = tc.port
			for i := 0; i < 2; i++ {
				e.d.gates["bookworm/amd64"].reported = e.d.gates["bookworm/amd64"].reported.Add(-ReportEvery)
				e.round()
			}
			if got := e.b.built(); got != "alpha_1.0 beta_1.0" {
				t.Errorf("built %q, want both packages", got)
			}
			if n := strings.Count(e.daemonLog(), tc.logged); n != 1 {
				t.Errorf("daemon.log says %d times %q, want once:\n%s", n, tc.logged, e.daemonLog())
			}
			if n := e.port.count(); n != tc.reports {
				t.Errorf("%d reports, want %d", n, tc.reports)
			}
		})
	}
}

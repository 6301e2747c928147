package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
)

// These tests run rounds of an in-process daemon against the real queue
// (a bbolt database merged by the real wanna-build from a local archive)
// and the real mailer (to smtptest). The build step is stood in for by
// stubBuilder: what is under test is which packages are taken, in which
// order, and what the queue, REDO and the mails say
// afterwards. The real builds are in build_test.go.

// stubBuilder "builds" by writing a log and returning the status the
// test chose for the package, in its dist and arch ("PKG_VERSION
// DIST/ARCH") or anywhere ("PKG_VERSION"); successful when not given.
type stubBuilder struct {
	mu     sync.Mutex
	order  []string // the package versions built, in order
	jobs   []string // the same, each "PKG_VERSION DIST/ARCH"
	status map[string]build.Status
	during func(pkgv string) // if not nil, called in each build
}

func (s *stubBuilder) Build(ctx context.Context, j build.Job) (build.Result, error) {
	s.mu.Lock()
	s.order = append(s.order, j.PkgVersion)
	job := j.PkgVersion + " " + j.Dist.Where()
	s.jobs = append(s.jobs, job)
	st, ok := s.status[job]
	if !ok {
		st = s.status[j.PkgVersion]
	}
	during := s.during
	s.mu.Unlock()
	if during != nil {
		during(j.PkgVersion)
	}
	if st == "" {
		st = build.Successful
	}
	os.WriteFile(j.LogPath, []byte(fmt.Sprintf("build of %s\nStatus: %s\n", j.PkgVersion, st)), 0o644)
	return build.Result{Status: st, FailStage: "build"}, nil
}

func (s *stubBuilder) built() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.order, " ")
}

// queueEnv is an in-process daemon on a merged queue.
type queueEnv struct {
	*env
	d   *Daemon
	b   *stubBuilder
	cfg *config.Config
}

// homeAndLog makes c's home directories and opens its daemon.log, closed
// when the test ends.
func homeAndLog(t *testing.T, c *config.Config) *daemonlog.Log {
	t.Helper()
	if err := home.New(c.Home).Init(); err != nil {
		t.Fatal(err)
	}
	lg, err := daemonlog.Open(c.DaemonLogFile, "buildd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return lg
}

func newQueueEnv(t *testing.T, extra string, pkgs ...srcPkg) *queueEnv {
	t.Helper()
	e := newEnv(t, t.TempDir(), extra, "")
	a := newArchive(t, pkgs...)
	c, err := config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	a.merge(t, c.WannaBuildDB)
	lg := homeAndLog(t, c)
	q := &queueEnv{env: e, d: New(c, RealParts(), lg), b: &stubBuilder{status: map[string]build.Status{}}, cfg: c}
	q.d.builder = q.b
	q.d.parts.Builder = func(*config.Config, Machines) Builder { return q.b }
	q.d.machines = &fakeMachines{}
	return q
}

func (q *queueEnv) round() {
	q.t.Helper()
	q.d.Round(context.Background())
	q.d.Wait()
}

func (q *queueEnv) state(name string) queue.State {
	q.t.Helper()
	p := port.Open(q.cfg, &q.cfg.Dists[0])
	defer p.Close()
	info, err := p.Info(context.Background(), name)
	if err != nil {
		q.t.Fatalf("info %s: %v", name, err)
	}
	return info.State
}

// means is what a record of the home means for d on q's host.
func (q *queueEnv) means(d *config.Dist) home.Means {
	return func(dist, arch string) (bool, error) { return q.cfg.Means(d, dist, arch) }
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func pkg(name, version string) srcPkg {
	return srcPkg{name: name, version: version, section: "misc", build: "true"}
}

// TestREDOFirstInDistributionOrder: REDO lines are built before the
// queue's packages, in the config's order of dists. Without leases a REDO
// line is built as it is, as the classic buildd does (sid's other_2.0 is
// not in its queue); with leases it is claimed in the queue first
// (TestNetworkREDO).
func TestREDOFirstInDistributionOrder(t *testing.T) {
	dists := "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\nlease_timeout = 0\n" +
		"[[dist]]\ndist_name = \"sid\"\nbuilt_architecture = \"amd64\"\nlease_timeout = 0\n"
	q := newQueueEnv(t, "max_build = 1", pkg("alpha", "1.0"), pkg("redo", "1.0"))
	q.writeConf("max_build = 1", dists)
	c, err := config.Load(q.conf)
	if err != nil {
		t.Fatal(err)
	}
	q.d.SetConfig(c)
	q.d.builder = q.b
	q.cfg = c
	if err := port.Open(c, &c.Dists[0]).Take(context.Background(), "redo_1.0"); err != nil {
		t.Fatal(err)
	}
	h := home.New(c.Home)
	os.WriteFile(h.REDO().Path(), []byte("other_2.0 sid\nbad line\nredo_1.0 bookworm\n"), 0o644)

	q.round()
	if got := q.b.built(); got != "redo_1.0" {
		t.Fatalf("first round built %q, want the bookworm REDO line first", got)
	}
	if st := q.state("redo"); st != "Built" {
		t.Fatalf("redo is %s, want Built", st)
	}
	if st := q.state("alpha"); st != "Needs-Build" {
		t.Fatalf("alpha is %s while REDO had work", st)
	}
	q.round()
	if got := q.b.built(); got != "redo_1.0 other_2.0" {
		t.Fatalf("second round: built %q, want sid's REDO line before the queue", got)
	}
	q.round()
	if got := q.b.built(); got != "redo_1.0 other_2.0 alpha_1.0" {
		t.Fatalf("third round: built %q, want the queue once REDO is empty", got)
	}
	if n := strings.Count(q.daemonLog(), `Ignoring bad line in REDO (kept in the file; fix or remove it): REDO:2: bad line "bad line"`); n != 1 {
		t.Fatalf("bad REDO line logged %d times, want once:\n%s", n, q.daemonLog())
	}
	if es, bad, _ := h.REDO().Read(); len(es) != 0 || len(bad) != 1 {
		t.Fatalf("REDO left with %v and bad lines %v, want only the bad line kept", es, bad)
	}
}

func TestNoAutoBuildAndWeak(t *testing.T) {
	q := newQueueEnv(t, "max_build = 1", pkg("aaa", "1.0"), pkg("bbb", "1.0"), pkg("www", "1.0"))
	q.cfg.Dists[0].NoAutoBuild = []string{"aaa"}
	q.cfg.Dists[0].WeakNoAutoBuild = []string{"www"}
	q.round()
	q.round()
	q.round()
	if got := q.b.built(); got != "bbb_1.0 www_1.0" {
		t.Fatalf("built %q, want bbb then the weak www, never aaa", got)
	}
	if st := q.state("aaa"); st != "Needs-Build" {
		t.Fatalf("no_auto_build aaa is %s", st)
	}
}

func TestParallelRoundFillsSlots(t *testing.T) {
	q := newQueueEnv(t, "max_build = 2", pkg("one", "1.0"), pkg("two", "1.0"), pkg("three", "1.0"))
	if n := q.d.Round(context.Background()); n != 2 {
		t.Fatalf("round started %d builds with max_build = 2", n)
	}
	q.d.Wait()
	q.round()
	if got := strings.Fields(q.b.built()); len(got) != 3 {
		t.Fatalf("built %v", got)
	}
}

// TestGiveBackBackoffAndQuarantine: a package given back waits in the
// queue (delay_after_give_back) instead of being taken again at once;
// infrastructure failures in a row, more than max_sbuild_fails, put the
// builder in quarantine (build/QUARANTINE, the admin mailed what failed
// and why, a heartbeat saying so), also when buildd was started again
// between them (build/INFRA-FAILURES), and it takes nothing until the
// quarantine ends; no package is failed for it.
func TestGiveBackBackoffAndQuarantine(t *testing.T) {
	q := newQueueEnv(t, "max_build = 1\nmax_sbuild_fails = 1\ndelay_after_give_back = 60", pkg("flaky", "1.0"), pkg("other", "1.0"))
	q.b.status["flaky_1.0"] = build.GivenBack
	q.b.status["other_1.0"] = build.GivenBack
	q.round()
	if got := q.b.built(); got != "flaky_1.0" {
		t.Fatalf("built %q", got)
	}
	if st := q.state("flaky"); st != "Needs-Build" && st != "BD-Uninstallable" {
		t.Fatalf("given-back flaky is %s", st)
	}
	p := port.Open(q.cfg, &q.cfg.Dists[0])
	defer p.Close()
	if info, err := p.Info(context.Background(), "flaky"); err != nil || !strings.Contains(info.Waiting, "in backoff until") {
		t.Fatalf("flaky after its give-back: %+v, %v; want it in backoff", info, err)
	}
	if fails, err := home.New(q.cfg.Home).InfraFailures().Read(); err != nil || len(fails) != 1 || !strings.HasPrefix(fails[0].Build, "flaky_1.0") {
		t.Fatalf("build/INFRA-FAILURES: %+v, %v; want flaky's failure", fails, err)
	}
	// buildd started again goes on counting.
	restarted := New(q.cfg, RealParts(), q.d.log)
	restarted.builder, restarted.machines = q.b, &fakeMachines{}
	q.d = restarted
	q.round()
	if got := q.b.built(); got != "flaky_1.0 other_1.0" {
		t.Fatalf("built %q: flaky taken again within its backoff", got)
	}
	quar, err := home.New(q.cfg.Home).Quarantine().Read()
	if err != nil || quar == nil || !strings.Contains(quar.Reason, "2 infrastructure failures in a row") {
		t.Fatalf("after 2 infrastructure failures with max_sbuild_fails = 1: quarantine %+v, %v", quar, err)
	}
	mails := q.smtp.Wait(3, 10*time.Second)
	var mess string
	for _, m := range mails {
		if strings.Contains(string(m.Data), "Subject: Repeated mess with sbuild: quarantined") {
			mess = string(m.Data)
		}
	}
	if mess == "" || !strings.Contains(mess, "flaky_1.0") || !strings.Contains(mess, "other_1.0") || !strings.Contains(mess, "buildd quarantine --end") {
		t.Fatalf("no quarantine mail naming both failures and how to end it; %d mails", len(mails))
	}
	sts, err := p.Builders(context.Background())
	if err != nil || len(sts) != 1 || sts[0].Quarantined == "" || sts[0].Slots != 1 || sts[0].SlotMemory <= 0 {
		t.Fatalf("heartbeats %+v, %v; want one saying quarantined", sts, err)
	}
	q.cfg.DelayAfterGiveBack = 0
	if out, err := exec.Command(wannaBuild(t), "--db", q.cfg.WannaBuildDB, "-d", "bookworm", "-A", "amd64", "--retry", "flaky", "other").CombinedOutput(); err != nil {
		t.Fatalf("--retry: %v\n%s", err, out)
	}
	q.round()
	if got := q.b.built(); got != "flaky_1.0 other_1.0" {
		t.Fatalf("built %q while quarantined", got)
	}
	q.d.EndQuarantine("test")
	q.b.status["flaky_1.0"] = build.Successful
	q.round()
	if got := q.b.built(); !strings.HasPrefix(got, "flaky_1.0 other_1.0 flaky_1.0") {
		t.Fatalf("built %q after the quarantine", got)
	}
	for _, name := range []string{"flaky", "other"} {
		if st := q.state(name); st == queue.Failed || st == queue.BuildAttempted {
			t.Errorf("%s is %s: failed for the builder's faults", name, st)
		}
	}
}

func TestShouldBuildQuestion(t *testing.T) {
	q := newQueueEnv(t, "max_build = 1", pkg("frail", "1.0"))
	ctx := context.Background()
	cl := port.Open(q.cfg, &q.cfg.Dists[0])
	defer cl.Close()
	if err := cl.Take(ctx, "frail_1.0"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Failed(ctx, "frail_1.0", "configure: error: no C compiler"); err != nil {
		t.Fatal(err)
	}
	newArchive(t, pkg("frail", "2.0")).merge(t, q.cfg.WannaBuildDB)
	q.round()
	if got := q.b.built(); got != "" {
		t.Fatalf("built %q; a package whose previous version failed waits for the admin", got)
	}
	mails := q.smtp.Wait(1, 10*time.Second)
	if len(mails) != 1 || !strings.Contains(string(mails[0].Data), "Subject: Should I build frail_2.0 on amd64 (dist=bookworm)?") {
		t.Fatalf("mails: %d", len(mails))
	}
	if !strings.Contains(string(mails[0].Data), "no C compiler") {
		t.Fatalf("question without the old failure:\n%s", mails[0].Data)
	}
	if s, ok, _ := home.New(q.home).Sent().Latest("frail_2.0", "should-build", q.means(&q.cfg.Dists[0])); !ok || s.Arch != "amd64" {
		t.Fatal("question not recorded in sent-mails")
	}
	if st := q.state("frail"); st != "Building" {
		t.Fatalf("frail is %s, want Building (taken, waiting for the answer)", st)
	}
}

// TestSkip: a package version in build/SKIP for its dist and arch
// ("PKG_VERSION DIST/ARCH"), for its dist built here for one arch
// ("PKG_VERSION DIST") or for every dist (the classic "PKG_VERSION") is
// not taken from the queue nor built from REDO, and its line is consumed,
// as the classic buildd does; a line for another dist or arch is kept and
// skips nothing here.
func TestSkip(t *testing.T) {
	q := newQueueEnv(t, "max_build = 2", pkg("alpha", "1.0"), pkg("beta", "1.0"))
	h := home.New(q.cfg.Home)
	os.WriteFile(h.REDO().Path(), []byte("gamma_1.0 bookworm\ndelta_1.0 bookworm/amd64\n"), 0o644)
	h.Skip().Add("alpha_1.0", "", "")
	h.Skip().Add("gamma_1.0", "bookworm", "amd64")
	h.Skip().Add("beta_1.0", "trixie", "amd64")
	h.Skip().Add("beta_1.0", "bookworm", "arm64")
	os.WriteFile(h.Path("build", "SKIP"), append(must(os.ReadFile(h.Path("build", "SKIP"))), "delta_1.0 bookworm\n"...), 0o644)

	q.round()
	if got := q.b.built(); got != "beta_1.0" {
		t.Fatalf("built %q, want only beta_1.0", got)
	}
	if st := q.state("alpha"); st != "Needs-Build" {
		t.Errorf("alpha is %s: a skipped package must not be taken", st)
	}
	for _, pv := range []string{"alpha_1.0", "gamma_1.0", "delta_1.0"} {
		if !strings.Contains(q.daemonLog(), pv+" on amd64 (dist=bookworm) found in SKIP file -- skipping building it") {
			t.Errorf("skip of %s not logged:\n%s", pv, q.daemonLog())
		}
	}
	if b, _ := os.ReadFile(h.Path("build", "SKIP")); string(b) != "beta_1.0 trixie/amd64\nbeta_1.0 bookworm/arm64\n" {
		t.Errorf("SKIP %q, want only the lines of trixie and of arm64 left", b)
	}
	q.round()
	if got := q.b.built(); got != "beta_1.0 alpha_1.0" {
		t.Errorf("after its SKIP line is gone, alpha is built again: got %q", got)
	}
}

// TestREDOClaim: with leases (the default), a REDO line is built only once
// the queue has its package as this builder's: still Building by it (the
// lease renewed), given back meanwhile (taken again), or Built or
// Build-Attempted by it (a retry, built without a lease). Another
// builder's package, or one the queue does not have, is not built, and
// its line goes; a queue that fails keeps the line in REDO.
func TestREDOClaim(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		setup  func(q *queueEnv, ours, other queue.Port) error
		redo   string // the REDO line's package
		built  bool
		logged string
		kept   bool // the line is still in REDO
	}{
		{"still its own", func(q *queueEnv, ours, _ queue.Port) error { return ours.Take(ctx, "redo_1.0") },
			"redo_1.0", true, "redo_1.0 on amd64 (dist=bookworm) in REDO is still this builder's in the queue (lease renewed)", false},
		{"given back", func(q *queueEnv, ours, _ queue.Port) error {
			if err := ours.Take(ctx, "redo_1.0"); err != nil {
				return err
			}
			return ours.GiveBack(ctx, "redo_1.0")
		}, "redo_1.0", true, "redo_1.0 on amd64 (dist=bookworm) in REDO was Needs-Build in the queue again (last change: --give-back by ", false},
		{"retried", func(q *queueEnv, ours, _ queue.Port) error {
			if err := ours.Take(ctx, "redo_1.0"); err != nil {
				return err
			}
			return ours.Attempted(ctx, "redo_1.0")
		}, "redo_1.0", true, "redo_1.0 on amd64 (dist=bookworm) in REDO is Build-Attempted by this builder in the queue: building it again, without a lease", false},
		{"another builder's", func(q *queueEnv, _, other queue.Port) error { return other.Take(ctx, "redo_1.0") },
			"redo_1.0", false, "redo_1.0 on amd64 (dist=bookworm) in REDO is not this builder's in the queue: it is redo_1.0 Building by buildd_other -- not building it", false},
		{"not in the queue", func(*queueEnv, queue.Port, queue.Port) error { return nil },
			"gone_1.0", false, "gone_1.0 on amd64 (dist=bookworm) in REDO is not this builder's in the queue: gone: not registered -- not building it", false},
		{"the queue fails", func(q *queueEnv, _, _ queue.Port) error {
			return os.WriteFile(q.cfg.WannaBuildDB, []byte("not a database"), 0o644)
		}, "redo_1.0", false, "redo_1.0 on amd64 (dist=bookworm): wanna-build --info --dist=bookworm --arch=amd64 failed: ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := newQueueEnv(t, "max_build = 1", pkg("redo", "1.0"))
			ours := port.Open(q.cfg, &q.cfg.Dists[0])
			defer ours.Close()
			od := q.cfg.Dists[0]
			od.WannaBuildDBUser = "buildd_other"
			other := port.Open(q.cfg, &od)
			defer other.Close()
			if err := c.setup(q, ours, other); err != nil {
				t.Fatal(err)
			}
			redo := home.New(q.cfg.Home).REDO()
			if err := redo.Add(home.RedoEntry{PkgVersion: c.redo, Dist: "bookworm"}); err != nil {
				t.Fatal(err)
			}
			q.round()
			if built := slices.Contains(strings.Fields(q.b.built()), c.redo); built != c.built {
				t.Errorf("built %q: %s built is %v, want %v", q.b.built(), c.redo, built, c.built)
			}
			if !strings.Contains(q.daemonLog(), c.logged) {
				t.Errorf("daemon.log does not say %q:\n%s", c.logged, q.daemonLog())
			}
			es, _, err := redo.Read()
			if err != nil || len(es) != map[bool]int{true: 1}[c.kept] {
				t.Errorf("REDO holds %v (%v), want the line kept: %v", es, err, c.kept)
			}
			if c.built {
				if st := q.state("redo"); st != queue.Built {
					t.Errorf("redo is %s after its build, want Built", st)
				}
			}
		})
	}
}

// TestRoundSeveralArches: a host builds bookworm for amd64 and arm64,
// each [[dist]] with its own machine and queue, the slots of one pool
// shared by both. Rounds take from REDO (a line naming its arch; one
// naming bookworm alone stays, reported once) and from each queue in the
// config's order; a give-back on amd64 holds the package back there only;
// the arm64 queue requiring another revision of its machine holds back
// arm64 only. Each build's log, log mail, sent-mails record and
// backoff is its arch's.
func TestRoundSeveralArches(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, t.TempDir(), "max_build = 3", "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n"+
		"[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"arm64\"\n")
	a := newArchive(t, pkg("alpha", "1.0"), pkg("beta", "1.0"))
	c, err := config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		a.mergeArch(t, c.WannaBuildDB, arch)
	}
	h := home.New(c.Home)
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	lg, err := daemonlog.Open(c.DaemonLogFile, "buildd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	q := &queueEnv{env: e, d: New(c, RealParts(), lg), b: &stubBuilder{status: map[string]build.Status{}}, cfg: c}
	q.d.builder = q.b
	m := &fakeMachines{}
	m.set("bookworm-amd64", 1, uuid(1))
	m.set("bookworm-arm64", 1, uuid(2))
	q.d.machines = m
	amd64, arm64 := &c.Dists[0], &c.Dists[1]
	ports := map[string]queue.Port{"amd64": port.Open(c, amd64), "arm64": port.Open(c, arm64)}
	for _, p := range ports {
		defer p.Close()
	}
	state := func(arch, name string) queue.State {
		t.Helper()
		info, err := ports[arch].Info(ctx, name)
		if err != nil {
			t.Fatalf("info %s on %s: %v", name, arch, err)
		}
		return info.State
	}
	// round runs a round and returns the jobs it built, sorted (they run
	// at once).
	done := 0
	round := func() string {
		q.round()
		q.b.mu.Lock()
		defer q.b.mu.Unlock()
		got := slices.Clone(q.b.jobs[done:])
		done = len(q.b.jobs)
		slices.Sort(got)
		return strings.Join(got, ", ")
	}

	// gamma was building on arm64 when a buildd died: back in REDO,
	// still Building by this builder in the arm64 queue.
	if err := ports["arm64"].Take(ctx, "gamma_1.0"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(h.REDO().Path(), []byte("delta_1.0 bookworm\ngamma_1.0 bookworm/arm64\n"), 0o644)
	q.b.status["alpha_1.0 bookworm/amd64"] = build.GivenBack

	if got := round(); got != "alpha_1.0 bookworm/amd64, beta_1.0 bookworm/amd64, gamma_1.0 bookworm/arm64" {
		t.Fatalf("first round built %q: want REDO's arm64 line, then the amd64 queue, 3 slots", got)
	}
	if got := round(); got != "alpha_1.0 bookworm/arm64, beta_1.0 bookworm/arm64" {
		t.Fatalf("second round: built %q, want the arm64 queue's, and not amd64's alpha, given back there", got)
	}
	for _, s := range []struct {
		arch, name string
		want       queue.State
	}{{"amd64", "alpha", queue.NeedsBuild}, {"amd64", "beta", queue.Built}, {"arm64", "alpha", queue.Built}, {"arm64", "beta", queue.Built}, {"arm64", "gamma", queue.Built}} {
		if got := state(s.arch, s.name); got != s.want {
			t.Errorf("%s on %s is %s, want %s", s.name, s.arch, got, s.want)
		}
	}
	if info, err := ports["amd64"].Info(ctx, "alpha"); err != nil || !strings.Contains(info.Waiting, "in backoff") {
		t.Errorf("alpha on amd64: %+v, %v; want it in backoff there", info, err)
	}
	if b, _ := os.ReadFile(h.REDO().Path()); string(b) != "delta_1.0 bookworm\n" {
		t.Errorf("REDO %q, want the line without its arch kept", b)
	}
	const ambiguous = `Ignoring bad line in REDO (kept in the file; fix or remove it): REDO: "delta_1.0 bookworm": dist bookworm without an architecture: this host builds it for amd64 and arm64`
	if n := strings.Count(q.daemonLog(), ambiguous); n != 1 {
		t.Errorf("the line without its arch logged %d times, want once:\n%s", n, q.daemonLog())
	}
	for _, f := range []string{"BUILDING", "FINISHED"} {
		if b, _ := os.ReadFile(h.Path("build", f)); len(b) != 0 {
			t.Errorf("%s holds %q", f, b)
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if logs, _ := filepath.Glob(h.Path("logs", "alpha_1.0_"+arch+"-*.build")); len(logs) != 1 {
			t.Errorf("logs of alpha on %s: %v", arch, logs)
		}
	}
	subjects := map[string]bool{}
	for _, m := range q.smtp.Wait(5, 10*time.Second) {
		for _, l := range strings.Split(string(m.Data), "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				subjects[s] = true
			}
		}
	}
	for _, s := range []string{"Log for failed build of alpha_1.0 on amd64 (dist=bookworm)", "Log for successful build of beta_1.0 on amd64 (dist=bookworm)",
		"Log for successful build of alpha_1.0 on arm64 (dist=bookworm)", "Log for successful build of beta_1.0 on arm64 (dist=bookworm)",
		"Log for successful build of gamma_1.0 on arm64 (dist=bookworm)"} {
		if !subjects[s] {
			t.Errorf("no log mail %q; subjects %v", s, subjects)
		}
	}
	for _, d := range []*config.Dist{amd64, arm64} {
		if s, ok, _ := h.Sent().Latest("alpha_1.0", "log", q.means(d)); !ok || s.Arch != d.BuiltArchitecture {
			t.Errorf("sent-mails: alpha's log mail on %s: %+v %v", d.BuiltArchitecture, s, ok)
		}
	}

	// arm64's queue requires a revision its machine is not on: amd64's
	// alpha (its give-back delay over) is built, arm64's beta (given back
	// by the admin) is not, until the requirement is lifted.
	require := func(uuid string) {
		t.Helper()
		db, err := store.Open(c.WannaBuildDB, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.RequireRevision(queue.Pair{Dist: "bookworm", Arch: "arm64"}, uuid, "admin"); err != nil {
			t.Fatal(err)
		}
	}
	require(uuid(9))
	g := q.d.gates["bookworm/arm64"] // the report is due (not only within ReportEvery)
	g.reported = g.reported.Add(-ReportEvery)
	if err := ports["arm64"].GiveBack(ctx, "beta_1.0"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(wannaBuild(t), "--db", c.WannaBuildDB, "-d", "bookworm", "-A", "amd64", "--retry", "alpha").CombinedOutput(); err != nil {
		t.Fatalf("--retry alpha: %v\n%s", err, out)
	}
	q.b.status["alpha_1.0 bookworm/amd64"] = build.Successful
	if got := round(); got != "alpha_1.0 bookworm/amd64" {
		t.Errorf("round with arm64 held: built %q, want amd64's alpha only", got)
	}
	if !strings.Contains(q.daemonLog(), "bookworm/arm64: machine bookworm-arm64 is on revision bookworm-arm64-1 (UUID "+uuid(2)+"), the queue requires UUID "+uuid(9)) ||
		strings.Contains(q.daemonLog(), "bookworm/amd64: machine bookworm-amd64 is on revision") {
		t.Errorf("the hold is not arm64's alone:\n%s", q.daemonLog())
	}
	require("")
	if got := round(); got != "beta_1.0 bookworm/arm64" {
		t.Errorf("round once arm64 requires nothing: built %q, want arm64's beta", got)
	}
}

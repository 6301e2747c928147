package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"buildd/internal/machine/machinetest"
	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
)

// The build network: one PostgreSQL queue, several real buildd processes
// (each its own home, config and PostgreSQL role) building in one shared
// machines volume, a local archive merged by the admin with the real
// wanna-build. idle_sleep_time is an hour: only the queue's notifications
// (LISTEN/NOTIFY) and freed slots start rounds.

// node is one builder of the network.
type node struct {
	name   string // builder_name and PostgreSQL role
	env    *env
	proc   *proc
	killed bool // by the test, with SIGKILL
}

// exited reports whether the process has exited, leaving its status for
// wait.
func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// network is a queue, its archive and its builders.
type network struct {
	t       *testing.T
	db      *pgtest.DB
	archive *archive
	q       *pg.DB // the admin's connection, for looking
	nodes   []*node
}

// newNetwork makes n builders buildd_1..buildd_n on a fresh queue (empty
// until merge) fetching pkgs from a local archive; distExtra is added to
// their [[dist]] table. Nothing runs yet (start).
func newNetwork(t *testing.T, n int, distExtra string, pkgs ...srcPkg) *network {
	t.Helper()
	pgtest.Require(t)
	machinetest.Require(t)
	nw := &network{t: t, db: pgtest.New(t)}
	nw.archive = newArchive(t, pkgs...)
	machines, dist := buildMachine(t, nw.archive)
	dist += distExtra
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("buildd_%d", i)
		nw.db.Cluster.Role(t, name)
		extra := fmt.Sprintf("builder_name = %q\nwanna_build_db = %q\nmax_build = 1\nidle_sleep_time = 3600\n", name, nw.db.URL(name))
		nw.nodes = append(nw.nodes, &node{name: name, env: newEnv(t, machines, extra, dist)})
	}
	return nw
}

// start starts every builder (`buildd --no-detach`) and waits until each
// listens to the queue. The admin's first connection creates the schema,
// which builders cannot do.
func (nw *network) start() {
	nw.t.Helper()
	nw.look()
	for _, n := range nw.nodes {
		nw.db.Grant(nw.t, n.name, queue.Pair{Dist: "bookworm", Arch: "amd64"})
		n.proc = n.env.start("--no-detach")
	}
	for _, n := range nw.nodes {
		waitFor(nw.t, 2*time.Minute, n.name+" to listen to the queue", func() bool {
			if n.proc.exited() {
				nw.t.Fatalf("%s exited: %s\n%s", n.name, n.proc.stderr, n.env.daemonLog())
			}
			return strings.Contains(n.env.daemonLog(), "bookworm: waiting for the queue's notifications")
		})
	}
}

// merge merges the archive into the queue as the admin.
func (nw *network) merge() {
	nw.t.Helper()
	nw.archive.merge(nw.t, nw.db.URL(pgtest.Admin))
}

// queueView is the queue as the admin sees it at one moment.
type queueView struct {
	recs    map[string]*queue.Record
	history []*queue.Transaction
}

func (nw *network) look() queueView {
	nw.t.Helper()
	if nw.q == nil {
		q, err := pg.Open(context.Background(), nw.db.URL(pgtest.Admin), pg.Options{ReadOnly: true})
		if err != nil {
			nw.t.Fatal(err)
		}
		nw.q = q
		nw.t.Cleanup(func() { q.Close() })
	}
	v := queueView{recs: map[string]*queue.Record{}}
	err := nw.q.View("bookworm", "amd64", func(tx queue.Tx) error {
		if err := tx.ForEach(func(r *queue.Record) error { v.recs[r.Package] = r; return nil }); err != nil {
			return err
		}
		return tx.History("", func(tr *queue.Transaction) error { v.history = append(v.history, tr); return nil })
	})
	if err != nil {
		nw.t.Fatal(err)
	}
	return v
}

// actions are name's transactions whose action starts with prefix.
func (v queueView) actions(name, prefix string) []*queue.Transaction {
	var out []*queue.Transaction
	for _, tr := range v.history {
		if tr.Package == name && strings.HasPrefix(tr.Action, prefix) {
			out = append(out, tr)
		}
	}
	return out
}

func (v queueView) String() string {
	var b strings.Builder
	names := make([]string, 0, len(v.recs))
	for n := range v.recs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := v.recs[n]
		fmt.Fprintf(&b, "  %s_%s %s %s lease_until=%d\n", n, r.Version, r.State, r.Builder, r.LeaseUntil)
	}
	for _, tr := range v.history {
		fmt.Fprintf(&b, "  %s: %s\n", time.Unix(tr.Time, 0).Format(time.TimeOnly), tr.Line("bookworm"))
	}
	return b.String()
}

// waitQueue polls the queue every half second until cond holds or timeout
// passes, and returns the view that satisfied it.
func (nw *network) waitQueue(timeout time.Duration, what string, cond func(queueView) bool) queueView {
	nw.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := nw.look()
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			nw.t.Fatalf("timed out after %v waiting for %s; the queue:\n%s\n%s", timeout, what, v, nw.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// logs is every builder's daemon.log, for failure messages.
func (nw *network) logs() string {
	var b strings.Builder
	for _, n := range nw.nodes {
		fmt.Fprintf(&b, "==> %s daemon.log\n%s", n.name, n.env.daemonLog())
	}
	return b.String()
}

func (nw *network) node(name string) *node {
	for _, n := range nw.nodes {
		if n.name == name {
			return n
		}
	}
	nw.t.Fatalf("no builder %q", name)
	return nil
}

// stop stops the builders still running with SIGTERM; each must exit 0.
func (nw *network) stop() {
	nw.t.Helper()
	for _, n := range nw.nodes {
		if !n.killed {
			n.proc.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range nw.nodes {
		if n.killed {
			continue
		}
		if code := n.proc.wait(nw.t, StopWait+time.Minute); code != 0 {
			nw.t.Errorf("%s exit %d after SIGTERM:\n%s", n.name, code, n.proc.stderr)
		}
	}
}

// TestNetworkBuildsEachOnce: eight builders share one PostgreSQL queue
// and one machines volume; the admin merges sixteen packages while they
// all sleep (idle_sleep_time = 3600): the notification wakes them, they
// race for the packages, and every package is built exactly once (one
// --take in its history, then Built), by more than one builder, none left
// Building; then every builder stops cleanly on SIGTERM.
func TestNetworkBuildsEachOnce(t *testing.T) {
	const builders, npkgs = 8, 16
	var pkgs []srcPkg
	for i := 0; i < npkgs; i++ {
		pkgs = append(pkgs, srcPkg{fmt.Sprintf("netpkg%02d", i), "1.0", "misc", fmt.Sprintf("sleep %d", 1+i%3)})
	}
	nw := newNetwork(t, builders, "", pkgs...)
	nw.start()
	began := time.Now()
	nw.merge()
	v := nw.waitQueue(30*time.Minute, "every package to be built", func(v queueView) bool {
		if len(v.recs) != npkgs {
			return false
		}
		for _, r := range v.recs {
			if r.State == queue.NeedsBuild || r.State == queue.Building {
				return false
			}
		}
		return true
	})
	t.Logf("%d packages built by %d builders in %v", npkgs, builders, time.Since(began).Round(time.Second))

	by := map[string][]string{} // builder: packages it took
	for _, p := range pkgs {
		r := v.recs[p.name]
		if r.State != queue.Built {
			var logs strings.Builder
			for _, n := range nw.nodes {
				logs.WriteString(jobLogs(n.env))
			}
			t.Fatalf("%s is %s (builder %q), want Built\n%s\n%s", p.name, r.State, r.Builder, v, logs.String())
		}
		takes := v.actions(p.name, "--take")
		if len(takes) != 1 {
			t.Fatalf("%s taken %d times, want once:\n%s", p.name, len(takes), v)
		}
		if takes[0].User != r.Builder || takes[0].From != queue.NeedsBuild || takes[0].To != queue.Building {
			t.Fatalf("%s: take %s, but Built by %s", p.name, takes[0].Line("bookworm"), r.Builder)
		}
		by[r.Builder] = append(by[r.Builder], p.name)
	}
	if len(by) < 2 {
		t.Fatalf("only %v built anything", by)
	}
	var lost int
	for _, n := range nw.nodes {
		log := n.env.daemonLog()
		if c := strings.Count(log, "Starting build (dist=bookworm) of "); c != len(by[n.name]) {
			t.Errorf("%s started %d builds, but took %v", n.name, c, by[n.name])
		}
		lost += strings.Count(log, "Can't take ")
		t.Logf("%s built %v", n.name, by[n.name])
	}
	t.Logf("takes lost to another builder: %d", lost)
	// Each builder delivers its logs to the log store as its own role.
	waitFor(t, 2*time.Minute, "every build's log in the log store", func() bool {
		for _, p := range pkgs {
			logs, err := nw.q.Logs(p.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) == 0 {
				return false
			}
			if l := logs[0]; len(logs) != 1 || l.Builder != v.recs[p.name].Builder || l.Status != "successful" || l.Size == 0 {
				t.Fatalf("log store: %s: %+v; want one successful log by %s", p.name, logs, v.recs[p.name].Builder)
			}
		}
		return true
	})
	nw.stop()
	if w := workingSnapshots(t, nw.nodes[0].env.machines); len(w) != 0 {
		t.Fatalf("snapshots left: %v", w)
	}
}

// networkLease is the lease_timeout of TestNetworkLeases: shorter than
// CheckEvery (5 s in the buildd binary), so it also checks that a daemon
// renews every quarter of a short lease (LeaseEvery), not every CheckEvery.
const networkLease = 5 * time.Second

// TestNetworkLeases: three builders with a short lease_timeout. One takes
// a package whose build lasts five minutes and is killed with SIGKILL
// (its build dies with it); within the lease and a few CheckEvery periods
// another builder gives the package back ("--expire-leases: lease of ...
// ended"), mails the admin "Lease ended", and a live builder takes it
// again. Meanwhile a package whose build outlasts the lease on a live
// builder is never expired: Built by its first and only taker; and the
// re-taken long build is not expired either while its builder lives.
func TestNetworkLeases(t *testing.T) {
	long := srcPkg{"longpkg", "1.0", "misc", "sleep 300"}
	renewed := srcPkg{"leasepkg", "1.0", "misc", fmt.Sprintf("sleep %d", int(2*networkLease/time.Second))}
	nw := newNetwork(t, 3, fmt.Sprintf("lease_timeout = %d\n", int(networkLease/time.Second)), long, renewed)
	nw.start()
	nw.merge()

	// Both taken; the long one's builder renewed its lease at least once.
	var first *queue.Record
	nw.waitQueue(5*time.Minute, "both packages taken and longpkg's lease renewed", func(v queueView) bool {
		l, r := v.recs["longpkg"], v.recs["leasepkg"]
		if l == nil || r == nil || l.State != queue.Building || r.State != queue.Building {
			return false
		}
		if first == nil {
			first = l
		}
		return l.LeaseUntil > first.LeaseUntil && l.Builder == first.Builder
	})
	victim := nw.node(first.Builder)
	victim.env.waitLog(time.Minute, "Starting build (dist=bookworm) of longpkg_1.0")
	v := nw.look()
	leaseUntil := v.recs["longpkg"].LeaseUntil
	leaseTaker := v.recs["leasepkg"].Builder
	var sleeping []hostProc
	waitFor(t, 5*time.Minute, "longpkg's build to run its sleep 300", func() bool {
		sleeping = processes(victim.proc.cmd.Process.Pid, "sleep\x00300\x00")
		return len(sleeping) > 0
	})
	victim.proc.cmd.Process.Signal(syscall.SIGKILL)
	victim.killed = true
	victim.proc.wait(t, time.Minute)
	killed := time.Now()
	// The build died with it (the sandbox's PDEATHSIG and PID namespace).
	waitFor(t, 30*time.Second, "the killed build's processes to end", func() bool {
		for _, p := range sleeping {
			if alive(p) {
				return false
			}
		}
		return true
	})
	t.Logf("killed %s (building longpkg, lease until %s); leasepkg is %s's",
		victim.name, time.Unix(leaseUntil, 0).Format(time.TimeOnly), leaseTaker)

	// Given back by a live builder once the lease has ended, not before.
	expiredBy := ""
	bound := time.Until(time.Unix(leaseUntil, 0)) + 3*CheckEvery + 5*time.Second
	v = nw.waitQueue(bound, "longpkg's lease to be ended by a live builder", func(v queueView) bool {
		for _, tr := range v.actions("longpkg", "--expire-leases") {
			expiredBy = tr.User
			return true
		}
		return false
	})
	expire := v.actions("longpkg", "--expire-leases")
	if len(expire) != 1 || expire[0].Action != "--expire-leases: lease of "+victim.name+" ended" ||
		expire[0].From != queue.Building || expire[0].To != queue.NeedsBuild {
		t.Fatalf("longpkg's expiry:\n%s", v)
	}
	if expiredBy == victim.name || expire[0].Time <= leaseUntil {
		t.Fatalf("longpkg given back by %s at %d, lease until %d:\n%s", expiredBy, expire[0].Time, leaseUntil, v)
	}
	t.Logf("longpkg given back by %s %v after the kill (lease %v)", expiredBy, time.Since(killed).Round(100*time.Millisecond), networkLease)

	// The admin is told, by the builder that ended the lease.
	subject := "Lease ended: longpkg_1.0: lease of " + victim.name + " ended "
	mailed := func() bool {
		for _, m := range nw.node(expiredBy).env.smtp.Mails() {
			msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
			if err == nil && strings.HasPrefix(msg.Header.Get("Subject"), subject) &&
				strings.HasSuffix(msg.Header.Get("Subject"), " (dist=bookworm)") {
				return true
			}
		}
		return false
	}
	waitFor(t, time.Minute, "the Lease ended mail from "+expiredBy, mailed)

	// A live builder takes it again (the give-back notifies).
	v = nw.waitQueue(time.Minute, "longpkg taken again", func(v queueView) bool {
		return len(v.actions("longpkg", "--take")) == 2 && v.recs["longpkg"].State == queue.Building
	})
	retaker := v.recs["longpkg"].Builder
	if retaker == victim.name {
		t.Fatalf("longpkg taken again by the dead %s:\n%s", retaker, v)
	}

	// The build that outlasts the lease on a live builder is not expired.
	v = nw.waitQueue(5*time.Minute, "leasepkg to be built", func(v queueView) bool {
		st := v.recs["leasepkg"].State
		return st != queue.Building && st != queue.NeedsBuild
	})
	if r := v.recs["leasepkg"]; r.State != queue.Built || r.Builder != leaseTaker ||
		len(v.actions("leasepkg", "--take")) != 1 || len(v.actions("leasepkg", "--expire")) != 0 {
		t.Fatalf("leasepkg (a build longer than the lease, taken by %s) is %s by %s:\n%s\n%s",
			leaseTaker, r.State, r.Builder, v, jobLogs(nw.node(leaseTaker).env))
	}

	// Nor the re-taken long build, over several leases.
	time.Sleep(2*networkLease + CheckEvery)
	v = nw.look()
	if r := v.recs["longpkg"]; r.State != queue.Building || r.Builder != retaker || len(v.actions("longpkg", "--expire")) != 1 {
		t.Fatalf("longpkg, building on the live %s, changed:\n%s", retaker, v)
	}
	nw.stop()
	// The live builders deleted their snapshots; the killed one's is left
	// for its next start to delete (TestSignalsMidBuild).
	if w := workingSnapshots(t, victim.env.machines); len(w) != 1 {
		t.Fatalf("working snapshots after the stop: %v, want the killed build's only", w)
	}
}

// hostProc is a process of the host: its pid and its start time, so that a reused pid is
// not taken for it.
type hostProc struct{ pid, start string }

// processes are the descendants of root whose command line is cmdline
// (its words each ended by a NUL): other tests may run the same command
// at the same time.
func processes(root int, cmdline string) []hostProc {
	var found []hostProc
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid := filepath.Base(d)
		if b, err := os.ReadFile(filepath.Join(d, "cmdline")); err == nil && string(b) == cmdline && descends(pid, root) {
			if st := statFields(pid); len(st) > 19 {
				found = append(found, hostProc{pid, st[19]})
			}
		}
	}
	return found
}

// alive reports whether p still runs (a zombie does not count).
func alive(p hostProc) bool {
	st := statFields(p.pid)
	return len(st) > 19 && st[19] == p.start && st[0] != "Z"
}

// statFields are the fields of /proc/PID/stat after "PID (COMM)": the
// state, the parent pid, ..., the start time at index 19.
func statFields(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	// COMM may hold spaces and parentheses: the fields start after the last ')'.
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// descends reports whether process pid has root among its ancestors.
func descends(pid string, root int) bool {
	for pid != "0" && pid != "1" {
		st := statFields(pid)
		if len(st) < 2 {
			return false
		}
		pid = st[1]
		if pid == strconv.Itoa(root) {
			return true
		}
	}
	return false
}

// TestNetworkListenerReconnects: a package merged while a builder's
// listener is down (its connection ended; it tries again after
// ListenRetry) is built once the listener is back, not after
// idle_sleep_time.
func TestNetworkListenerReconnects(t *testing.T) {
	nw := newNetwork(t, 1, "", srcPkg{"latepkg", "1.0", "misc", "true"})
	nw.start()
	n := nw.nodes[0]
	ctx := context.Background()
	su, err := pgx.Connect(ctx, nw.db.Cluster.URL(nw.db.Name, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	var ended int
	if err := su.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 AND query LIKE 'LISTEN %'", n.name).Scan(&ended); err != nil || ended != 1 {
		t.Fatalf("ending the listener's connection: %d ended, %v", ended, err)
	}
	n.env.waitLog(time.Minute, "-- again in ")
	nw.merge()
	waitFor(t, time.Minute, "the listener to listen again", func() bool {
		return strings.Count(n.env.daemonLog(), "bookworm: waiting for the queue's notifications") == 2
	})
	n.env.waitLog(time.Minute, "Starting build (dist=bookworm) of latepkg_1.0")
	nw.waitQueue(5*time.Minute, "latepkg to be built", func(v queueView) bool { return v.recs["latepkg"].State == queue.Built })
	nw.stop()
}

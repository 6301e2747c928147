package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"buildd/internal/home"
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
	t       testing.TB
	db      *pgtest.DB
	archive *archive
	q       *pg.DB // the admin's connection, for looking
	nodes   []*node
}

// newNetwork makes n builders buildd_1..buildd_n on a fresh queue (empty
// until merge) fetching pkgs from a local archive; distExtra is added to
// their [[dist]] table. Nothing runs yet (start).
func newNetwork(t testing.TB, n int, distExtra string, pkgs ...srcPkg) *network {
	return newNetworkOf(t, n, distExtra, func(int) string { return "" }, pkgs...)
}

// newNetworkOf is newNetwork with extra(i) added to the config of
// buildd_i.
func newNetworkOf(t testing.TB, n int, distExtra string, extra func(i int) string, pkgs ...srcPkg) *network {
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
		conf := fmt.Sprintf("builder_name = %q\nwanna_build_db = %q\nmax_build = 1\nidle_sleep_time = 3600\n", name, nw.db.URL(name)) + extra(i)
		nw.nodes = append(nw.nodes, &node{name: name, env: newEnv(t, machines, conf, dist)})
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
			return strings.Contains(n.env.daemonLog(), "bookworm/amd64: waiting for the queue's notifications")
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
	var sleeping []hostProc
	waitFor(t, 5*time.Minute, "longpkg's build to run its sleep 300", func() bool {
		sleeping = processes(victim.proc.cmd.Process.Pid, "sleep\x00300\x00")
		return len(sleeping) > 0
	})
	victim.proc.cmd.Process.Signal(syscall.SIGKILL)
	victim.killed = true
	victim.proc.wait(t, time.Minute)
	killed := time.Now()
	// The lease as the victim last renewed it: read after the kill, as it
	// renewed all the while its build got to the sleep, however long that
	// took on this machine.
	v := nw.look()
	leaseUntil := v.recs["longpkg"].LeaseUntil
	leaseTaker := v.recs["leasepkg"].Builder
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
// listener is down (its connection ended; it tries again after a
// second) is built once the listener is back, not after idle_sleep_time.
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
		return strings.Count(n.env.daemonLog(), "bookworm/amd64: waiting for the queue's notifications") == 2
	})
	n.env.waitLog(time.Minute, "Starting build (dist=bookworm) of latepkg_1.0")
	nw.waitQueue(5*time.Minute, "latepkg to be built", func(v queueView) bool { return v.recs["latepkg"].State == queue.Built })
	nw.stop()
}

// kill kills n with SIGKILL while it builds pkgv, once the build runs its
// "sleep 300" (the killed build's processes die with it), and returns
// when they are gone.
func (nw *network) kill(n *node, pkgv string) {
	nw.t.Helper()
	n.env.waitLog(time.Minute, "Starting build (dist=bookworm) of "+pkgv)
	var sleeping []hostProc
	waitFor(nw.t, 5*time.Minute, pkgv+"'s build to run its sleep 300", func() bool {
		sleeping = processes(n.proc.cmd.Process.Pid, "sleep\x00300\x00")
		return len(sleeping) > 0
	})
	n.proc.cmd.Process.Signal(syscall.SIGKILL)
	n.killed = true
	n.proc.wait(nw.t, time.Minute)
	waitFor(nw.t, 30*time.Second, "the killed build's processes to end", func() bool {
		for _, p := range sleeping {
			if alive(p) {
				return false
			}
		}
		return true
	})
}

// restart starts the killed n again and waits until it listens to the
// queue; what it logs from then on is n.env.daemonLog()[mark:].
func (nw *network) restart(n *node) (mark int) {
	nw.t.Helper()
	mark = len(n.env.daemonLog())
	n.proc = n.env.start("--no-detach")
	n.killed = false
	waitFor(nw.t, 2*time.Minute, n.name+" to listen to the queue again", func() bool {
		if n.proc.exited() {
			nw.t.Fatalf("%s exited: %s\n%s", n.name, n.proc.stderr, n.env.daemonLog())
		}
		return strings.Contains(n.env.daemonLog()[mark:], "bookworm/amd64: waiting for the queue's notifications")
	})
	return mark
}

// other is the builder of the network that is not n (a network of two).
func (nw *network) other(n *node) *node {
	for _, o := range nw.nodes {
		if o != n {
			return o
		}
	}
	nw.t.Fatalf("no builder but %s", n.name)
	return nil
}

// TestNetworkREDO: a builder killed with SIGKILL while it builds finds
// that build in REDO when it starts again, and builds it only once the
// queue has the package as its own: still its own (the lease has not
// ended), it renews the lease and builds; given back by the other builder
// (the lease ended; the other builder is busy and leaves it in
// Needs-Build), it takes it again before it builds, and builds it once;
// given back and taken by the other builder, it does not build it. The
// other builder's live build on the shared machines volume is left alone
// at the start and said to be in use, not "Not understood".
func TestNetworkREDO(t *testing.T) {
	cases := []struct {
		name  string
		lease time.Duration
		busy  bool // the other builder builds a package of its own meanwhile
		// then is what the restarted builder must do with its REDO line:
		// the line it logs, and whether it builds the package (takes
		// counts its --take lines in the history).
		then  string
		build bool
		takes int
	}{
		{"still its own", time.Hour, false, "redopkg_1.0 on amd64 (dist=bookworm) in REDO is still this builder's in the queue (lease renewed)", true, 0},
		{"given back, the other builder busy", networkLease, true, "redopkg_1.0 on amd64 (dist=bookworm) in REDO was Needs-Build in the queue again (last change: --expire-leases: lease of VICTIM ended by OTHER at ", true, 1},
		{"given back and taken by the other builder", networkLease, false, "redopkg_1.0 on amd64 (dist=bookworm) in REDO is not this builder's in the queue: it is redopkg_1.0 Building by OTHER -- not building it", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs := []srcPkg{{"redopkg", "1.0", "misc", "sleep 300"}}
			if c.busy {
				pkgs = append(pkgs, srcPkg{"busypkg", "1.0", "misc", "sleep 300"})
			}
			nw := newNetwork(t, 2, fmt.Sprintf("lease_timeout = %d\n", int(c.lease/time.Second)), pkgs...)
			nw.start()
			nw.merge()
			v := nw.waitQueue(5*time.Minute, "every package taken", func(v queueView) bool {
				for _, p := range pkgs {
					if r := v.recs[p.name]; r == nil || r.State != queue.Building {
						return false
					}
				}
				return true
			})
			victim := nw.node(v.recs["redopkg"].Builder)
			other := nw.other(victim)
			nw.kill(victim, "redopkg_1.0")
			if c.lease < time.Hour {
				nw.waitQueue(c.lease+3*CheckEvery+time.Minute, "redopkg's lease to be ended by "+other.name, func(v queueView) bool {
					return len(v.actions("redopkg", "--expire-leases")) == 1
				})
			}
			if !c.busy && c.lease < time.Hour {
				nw.waitQueue(time.Minute, "redopkg taken by "+other.name, func(v queueView) bool {
					r := v.recs["redopkg"]
					return r.State == queue.Building && r.Builder == other.name
				})
			}

			mark := nw.restart(victim)
			log := func() string { return victim.env.daemonLog()[mark:] }
			then := strings.NewReplacer("VICTIM", victim.name, "OTHER", other.name).Replace(c.then)
			if c.build {
				// Building it, and its lease renewed since its last take:
				// whatever it did with the REDO line is in the log.
				v = nw.waitQueue(5*time.Minute, "redopkg building on "+victim.name+" with a renewed lease", func(v queueView) bool {
					r := v.recs["redopkg"]
					takes := v.actions("redopkg", "--take")
					return r.State == queue.Building && r.Builder == victim.name && r.LeaseRenewed > 0 &&
						r.LeaseRenewed >= takes[len(takes)-1].Time && strings.Contains(log(), "Starting build (dist=bookworm) of redopkg_1.0")
				})
			} else {
				v = nw.waitQueue(2*time.Minute, "the REDO line to be dropped or built", func(queueView) bool {
					return strings.Contains(log(), then) || strings.Contains(log(), "Starting build (dist=bookworm) of redopkg_1.0")
				})
			}
			if !strings.Contains(log(), then) {
				t.Errorf("%s did not log %q after its restart:\n%s", victim.name, then, log())
			}
			if n, want := strings.Count(log(), "Starting build (dist=bookworm) of redopkg_1.0"), map[bool]int{true: 1}[c.build]; n != want {
				t.Errorf("%s started redopkg's build %d times after its restart, want %d:\n%s", victim.name, n, want, log())
			}
			if strings.Contains(log(), "no longer this builder's") {
				t.Errorf("%s built redopkg without holding it:\n%s", victim.name, log())
			}
			var takes int
			for _, tr := range v.actions("redopkg", "--take") {
				if tr.User == victim.name {
					takes++
				}
			}
			if takes != 1+c.takes {
				t.Errorf("%s took redopkg %d times, want %d:\n%s", victim.name, takes, 1+c.takes, v)
			}
			if es, _, _ := home.New(victim.env.home).REDO().Read(); len(es) != 0 {
				t.Errorf("REDO of %s still holds %v", victim.name, es)
			}
			// The other builder's build was running at the restart: left
			// alone, and said so plainly.
			if c.busy || !c.build {
				want := "Left alone on the machines volume, in use by another buildd or buildd machine command: "
				if !strings.Contains(log(), want) || strings.Contains(log(), "Not understood") {
					t.Errorf("%s's start did not say %q of %s's live build:\n%s", victim.name, want, other.name, log())
				}
			}
			nw.stop()
		})
	}
}

// takenLease is the lease_timeout of TestNetworkTakenAway: a day, so that
// the next renewal is hours after the first (every eighth of the lease),
// and a build stopped in between was stopped by the queue's notification.
const takenLease = 24 * time.Hour

// TestNetworkTakenAway: the admin takes a package that a builder is
// building from it (gives it back, fails it, forgets it); the queue
// notifies the builder, which renews its leases at once and stops the
// build, long before its next renewal, giving the true reason from the
// queue's history (not "its lease ended"); the build's log stays in
// logs/ only: not spooled, not delivered to the log store. The time from
// the admin's command to the stop is logged, not asserted.
func TestNetworkTakenAway(t *testing.T) {
	cases := []struct {
		name   string
		args   []string // the admin's wanna-build command on takenpkg
		reason string   // in the stopped build's line
	}{
		{"given back", []string{"-o", "--give-back", "takenpkg_1.0"}, "--give-back by " + pgtest.Admin + " at "},
		{"failed", []string{"-o", "--failed", "-m", "broken by the admin", "takenpkg_1.0"}, "--failed by " + pgtest.Admin + " at "},
		{"forgotten", []string{"--forget", "takenpkg"}, "not registered (last change: --forget by " + pgtest.Admin + " at "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nw := newNetwork(t, 1, fmt.Sprintf("lease_timeout = %d\n", int(takenLease/time.Second)), srcPkg{"takenpkg", "1.0", "misc", "sleep 300"})
			n := nw.nodes[0]
			// Merged before the builder starts: its first round takes
			// takenpkg before its first renewal can come (the loop renews
			// between rounds), so the first renewal renews takenpkg's
			// lease, and the next one is an eighth of the lease later.
			nw.merge()
			nw.start()
			nw.waitQueue(5*time.Minute, "takenpkg's lease renewed", func(v queueView) bool { return v.recs["takenpkg"].LeaseRenewed > 0 })
			renewed := time.Now()
			n.env.waitLog(5*time.Minute, "Starting build (dist=bookworm) of takenpkg_1.0")
			var sleeping []hostProc
			waitFor(t, 5*time.Minute, "takenpkg's build to run its sleep 300", func() bool {
				sleeping = processes(n.proc.cmd.Process.Pid, "sleep\x00300\x00")
				return len(sleeping) > 0
			})
			mark := len(n.env.daemonLog())
			log := func() string { return n.env.daemonLog()[mark:] }

			// Measured by reading daemon.log every few milliseconds from
			// the moment the admin's command returns (it has committed).
			run(t, nw.archive.dir, append([]string{wannaBuild(t), "--db", nw.db.URL(pgtest.Admin), "--dist=bookworm", "-A", "amd64", "--user=" + pgtest.Admin}, c.args...)...)
			taken := time.Now()
			var told, stopping, stopped time.Duration
			for stopped == 0 {
				l := log()
				if told == 0 && strings.Contains(l, "bookworm: the queue tells that a package of this builder was taken from it") {
					told = time.Since(taken)
				}
				if stopping == 0 && strings.Contains(l, "takenpkg_1.0 on amd64 (dist=bookworm) is no longer this builder's in the queue: ") {
					stopping = time.Since(taken)
				}
				if strings.Contains(l, "Build of takenpkg_1.0 on amd64 (dist=bookworm) stopped, no longer this builder's: ") {
					stopped = time.Since(taken)
				}
				if time.Since(taken) > 2*time.Minute {
					t.Fatalf("the build did not stop within 2 minutes of the admin's command:\n%s", log())
				}
				time.Sleep(2 * time.Millisecond)
			}
			within := func(d time.Duration) string {
				if d < time.Millisecond {
					return "before the command returned"
				}
				return "within " + d.Round(time.Millisecond).String()
			}
			t.Logf("%s: after the admin's command, the builder was told %s, decided to stop %s, had stopped the build %s",
				c.name, within(told), within(stopping), within(stopped))
			if time.Now().After(renewed.Add(takenLease / 16)) {
				t.Fatalf("the test ran too close to the builder's next renewal (%v after its first): it cannot tell what stopped the build", takenLease/8)
			}
			var line string
			for _, l := range strings.Split(log(), "\n") {
				if strings.Contains(l, "Build of takenpkg_1.0 on amd64 (dist=bookworm) stopped, no longer this builder's: ") {
					line = l
				}
			}
			if !strings.Contains(line, c.reason) || strings.Contains(log(), "lease ended") {
				t.Errorf("the stop says %q, want the reason %q:\n%s", line, c.reason, log())
			}
			waitFor(t, 30*time.Second, "the stopped build's processes to end", func() bool {
				for _, p := range sleeping {
					if alive(p) {
						return false
					}
				}
				return true
			})
			// The log is kept in logs/ only.
			_, kept, _ := strings.Cut(line, "its log stays in ")
			kept, _, _ = strings.Cut(kept, " only")
			if st, err := os.Stat(kept); err != nil || st.Size() == 0 || !strings.HasPrefix(kept, n.env.path("logs")) {
				t.Errorf("the stopped build's log %q is not in logs/: %v", kept, err)
			}
			if spooled, _ := os.ReadDir(n.env.path(LogSpoolDir)); len(spooled) != 0 {
				t.Errorf("the stopped build's log was spooled for the log store: %v", spooled)
			}
			nw.stop()
			if logs, err := nw.q.Logs("takenpkg"); err != nil || len(logs) != 0 {
				t.Errorf("the log store holds %+v (%v), want no log of the stopped build", logs, err)
			}
		})
	}
}

// readmeBlock is the text of the first fenced block of README.md's
// section 10 that holds want.
func readmeBlock(t *testing.T, want string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n### 10. ")
	sec, _, _ = strings.Cut(sec, "\n## ")
	if !ok {
		t.Fatal("README.md has no section 10")
	}
	var block []string
	in := false
	for _, l := range strings.Split(sec, "\n") {
		switch {
		case strings.HasPrefix(l, "```") && !in:
			in, block = true, nil
		case strings.HasPrefix(l, "```"):
			in = false
			if text := strings.Join(block, "\n") + "\n"; strings.Contains(text, want) {
				return text
			}
		case in:
			block = append(block, l)
		}
	}
	t.Fatalf("README.md's section 10 has no block holding %q", want)
	return ""
}

// readmeLine is the first line holding want of README.md's section 10
// blocks.
func readmeLine(t *testing.T, want string) string {
	t.Helper()
	block := readmeBlock(t, want)
	i := strings.Index(block, want)
	start := strings.LastIndexByte(block[:i], '\n') + 1
	line, _, _ := strings.Cut(block[start:], "\n")
	return line
}

// TestNetworkTLS: README.md's section 10, as written, on a PostgreSQL
// cluster of the test's own: its SQL, pg_hba.conf and pg_ident.conf, the
// private CA and server certificate made by its openssl commands, its
// postgresql.conf lines, its password file and its admin's and builder's
// URLs (with localhost for wb.example.org, 127.0.0.1 for the build host's
// address, and the test's directory for /etc/buildd, the certificates' and
// the socket's directories). The builder's URL connects over TLS, verified
// against the private CA; without sslrootcert, to a name the certificate
// does not hold, or without TLS, it is refused. A real buildd with that
// URL builds a package that the admin merged through the local socket as
// root (peer, mapped to the admin role), and delivers its log.
func TestNetworkTLS(t *testing.T) {
	pgtest.Require(t)
	machinetest.Require(t)
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Strings(bins)
	pgBin := filepath.Dir(bins[len(bins)-1])
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	dir, err := os.MkdirTemp("", "buildd-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	here := strings.NewReplacer("/etc/postgresql/15/main", dir, "/etc/buildd/", etc+"/", "/var/run/postgresql", dir,
		"wb.example.org:5432", "localhost:"+port, "@wb.example.org/", "@localhost:"+port+"/", "wb.example.org", "localhost",
		"198.51.100.10/32", "127.0.0.1/32")
	sh := func(script string) {
		t.Helper()
		if out, err := exec.Command("sh", "-ec", script).CombinedOutput(); err != nil {
			t.Fatalf("%v:\n%s\n%s", err, script, out)
		}
	}
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(pgBin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return cmd
	}

	// The queue host.
	sh(here.Replace(readmeBlock(t, "openssl req -x509")))
	data := filepath.Join(dir, "data")
	if out, err := asPostgres("initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	files := map[string]string{
		// The test's own way in as the superuser (Debian's is peer).
		"pg_hba.conf":   "local all postgres trust\n" + here.Replace(readmeBlock(t, "hostssl  wanna_build")),
		"pg_ident.conf": readmeBlock(t, "wanna_build  root  wanna_build"),
		"postgresql.conf": here.Replace(readmeBlock(t, "ssl = on")) +
			fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n", port, dir),
	}
	for name, text := range files {
		f, err := os.OpenFile(filepath.Join(data, name), os.O_WRONLY|os.O_APPEND, 0)
		if name == "pg_hba.conf" {
			f, err = os.Create(filepath.Join(data, name))
		}
		if err == nil {
			_, err = f.WriteString(text)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	server := asPostgres("postgres", "-D", data)
	server.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	var serverLog bytes.Buffer
	server.Stdout, server.Stderr = &serverLog, &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Signal(syscall.SIGINT)
		server.Wait()
	})
	psql := func(role, db, sql string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(pgBin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", port, "-U", role, "-d", db)
		cmd.Stdin = strings.NewReader(sql)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("psql as %s: %v\n%s\n%s\n%s", role, err, sql, out, serverLog.String())
		}
	}
	waitFor(t, time.Minute, "PostgreSQL to start", func() bool {
		return exec.Command(filepath.Join(pgBin, "pg_isready"), "-h", dir, "-p", port).Run() == nil
	})
	psql("postgres", "postgres", readmeBlock(t, "CREATE ROLE wanna_build LOGIN"))
	adminURL := here.Replace(strings.Trim(strings.TrimPrefix(readmeLine(t, `wanna_build_db = "postgresql:///wanna_build`), "wanna_build_db = "), `"`)) + "&port=" + port
	a := newArchive(t, srcPkg{"tlspkg", "1.0", "misc", "true"})
	a.merge(t, adminURL) // the admin's first command makes the schema
	var grant string
	for _, l := range strings.Split(readmeBlock(t, "INSERT INTO wb_builder_queues"), "\n") {
		if strings.HasPrefix(l, "INSERT INTO wb_builder_queues") {
			grant += l + "\n"
		}
	}
	psql("wanna_build", "wanna_build", grant) // as root: peer, mapped to the admin

	// The build host.
	ca, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if err == nil {
		err = os.WriteFile(filepath.Join(etc, "wb-ca.crt"), ca, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	sh(here.Replace(readmeBlock(t, "/etc/buildd/wb.pgpass")))
	dbLine := here.Replace(readmeLine(t, `wanna_build_db = "postgresql://buildd_amd64@`))
	url := strings.Trim(strings.TrimPrefix(dbLine, "wanna_build_db = "), `"`)
	for _, c := range []struct {
		name, url, err string // err: what the refusal says; "" connects
	}{
		{"as written", url, ""},
		{"without sslrootcert", strings.Replace(url, "&sslrootcert="+etc+"/wb-ca.crt", "", 1), "certificate signed by unknown authority"},
		{"by a name not in the certificate", strings.Replace(url, "@localhost:", "@127.0.0.1:", 1), "cannot validate certificate for 127.0.0.1"},
		{"without TLS", strings.Replace(url, "sslmode=verify-full", "sslmode=disable", 1), `no pg_hba.conf entry for host "127.0.0.1", user "buildd_amd64", database "wanna_build", no encryption`},
	} {
		d, err := pg.Open(context.Background(), c.url, pg.Options{Timeout: 30 * time.Second})
		if err == nil {
			d.Close()
		}
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("the builder's URL %s: %v, want %q", c.name, err, c.err)
		}
	}

	machines, dist := buildMachine(t, a)
	e := newEnv(t, machines, "builder_name = \"buildd_amd64\"\n"+dbLine+"\nidle_sleep_time = 3600\n", dist)
	p := e.start("--no-detach")
	e.waitLog(2*time.Minute, "bookworm/amd64: waiting for the queue's notifications")
	admin, err := pg.Open(context.Background(), adminURL, pg.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	su, err := pgx.Connect(context.Background(), fmt.Sprintf("postgres:///postgres?host=%s&port=%s&user=postgres", dir, port))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(context.Background())
	var conns int
	var tls bool
	if err := su.QueryRow(context.Background(), `SELECT count(*), coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s
		JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'buildd_amd64'`).Scan(&conns, &tls); err != nil || conns == 0 || !tls {
		t.Errorf("buildd_amd64's %d connections, TLS %v (%v), want TLS", conns, tls, err)
	}
	waitFor(t, 5*time.Minute, "tlspkg built and its log delivered", func() bool {
		logs, err := admin.Logs("tlspkg")
		return err == nil && len(logs) == 1 && logs[0].Builder == "buildd_amd64"
	})
	admin.View("bookworm", "amd64", func(tx queue.Tx) error {
		r, err := tx.Get("tlspkg")
		if err != nil || r == nil || r.State != queue.Built || r.Builder != "buildd_amd64" {
			t.Errorf("tlspkg is %+v (%v), want Built by buildd_amd64\n%s", r, err, e.daemonLog())
		}
		return nil
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, StopWait+time.Minute); code != 0 {
		t.Errorf("buildd exit %d after SIGTERM:\n%s", code, p.stderr)
	}
}

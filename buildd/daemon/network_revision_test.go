package daemon

import (
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/flock"
	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
)

// realBuildsLock is the lock the heavy runs share (make test-real, the
// chaos runs); realBuildsLockedEnv says the caller holds it already.
const (
	realBuildsLock      = "/var/lock/buildd-realbuilds.lock"
	realBuildsLockedEnv = "BUILDD_REALBUILDS_LOCKED"
)

// realBuildsLocked holds realBuildsLock for the test, unless the caller
// does.
func realBuildsLocked(t *testing.T) {
	if os.Getenv(realBuildsLockedEnv) != "" {
		return
	}
	t.Logf("taking %s (waiting up to 30 min for other heavy runs)", realBuildsLock)
	lk, err := flock.Acquire(realBuildsLock, flock.Exclusive, 0o644, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Unlock() })
}

// TestNetworkRevision: the admin requires, of bookworm/amd64, a revision
// of the build machine that another host made; a real buildd on
// PostgreSQL, whose machine (a real btrfs one) is on its own revision,
// reports its revisions, takes nothing of the queue even once a package
// is merged (the round after the merge holds it back), and says so once;
// the admin's --revisions lists it as behind. The required revision is
// sent from the other host's machines volume and received into the
// builder's (btrfs send and receive): the builder sees its machine on
// it, says it takes packages again, and builds the package, which the
// admin's --revisions then shows.
func TestNetworkRevision(t *testing.T) {
	realBuildsLocked(t)
	pgtest.Require(t)
	machinetest.Require(t)
	nw := newNetwork(t, 1, "", srcPkg{"revpkg", "1.0", "misc", "true"})
	n := nw.nodes[0]
	ctx := context.Background()
	here, err := machine.Open(n.env.machines)
	if err != nil {
		t.Fatal(err)
	}
	other := machinetest.New(t) // the host where the required revision is made
	name := other.Machine
	own, err := here.Current(name)
	if err != nil {
		t.Fatal(err)
	}
	made, err := other.Store.Current(name)
	if err != nil {
		t.Fatal(err)
	}
	if !queue.ValidUUID(own.UUID) || !queue.ValidUUID(made.UUID) || own.UUID == made.UUID {
		t.Fatalf("the builder's revision %s has UUID %q, the other host's %s %q: want two UUIDs", own.Name, own.UUID, made.Name, made.UUID)
	}
	admin := func(args ...string) string {
		t.Helper()
		return run(t, nw.archive.dir, append([]string{wannaBuild(t), "--db", nw.db.URL(pgtest.Admin), "--dist=bookworm", "-A", "amd64", "-U", pgtest.Admin}, args...)...)
	}
	admin("--require-revision=" + made.UUID)

	nw.start()
	hold := "bookworm/amd64: machine " + name + " is on revision " + own.Name + " (UUID " + own.UUID + "), the queue requires UUID " + made.UUID + ": taking nothing until it has it"
	n.env.waitLog(2*time.Minute, hold)
	// The round that reports after the merge has committed (a round held
	// back reports every round) decides with the package in the queue;
	// it has ended once the next round, started by SIGUSR2 between
	// rounds, reports too.
	reported := func() int64 {
		return nw.xid("SELECT coalesce(min(xmin::text::bigint), 0) FROM wb_revisions WHERE builder = '" + n.name + "'")
	}
	nw.merge()
	after := nw.xid("SELECT max(xid)::text::bigint FROM wb_history")
	for i, what := range []string{"a report after the merge", "the next round's report"} {
		waitFor(t, 2*time.Minute, what, func() bool {
			if r := reported(); r > after {
				after = r
				return true
			}
			return false
		})
		if i == 0 {
			n.proc.cmd.Process.Signal(syscall.SIGUSR2)
		}
	}
	v := nw.look()
	if r := v.recs["revpkg"]; r == nil || r.State != queue.NeedsBuild || len(v.actions("revpkg", "--take")) != 0 {
		t.Fatalf("revpkg taken by a builder whose machine is not on the required revision:\n%s\n%s", v, n.env.daemonLog())
	}
	log := n.env.daemonLog()
	if c := strings.Count(log, hold); c != 1 || strings.Contains(log, "taking packages again") || strings.Contains(log, "total 1 packages to build") {
		t.Fatalf("the hold said %d times, or the dist's queue looked at:\n%s", c, log)
	}
	list := admin("--revisions")
	for _, want := range []string{
		"bookworm/amd64 requires revision " + made.UUID + " (set by " + pgtest.Admin + " at ",
		n.name + "  " + name + "  " + own.Name + "  " + own.UUID + "  yes",
		"Behind, taking nothing from bookworm/amd64 until their machine is on " + made.UUID + ": " + n.name + "\n",
	} {
		if !strings.Contains(list, want) {
			t.Fatalf("--revisions does not say %q:\n%s", want, list)
		}
	}

	// The required revision reaches the builder's machines volume.
	r, w := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		err := other.Store.Send(ctx, name, "", "", w)
		w.CloseWithError(err)
		sent <- err
	}()
	got, err := here.Receive(ctx, name, r, machine.CreateOptions{})
	r.CloseWithError(err)
	if serr := <-sent; err != nil || serr != nil {
		t.Fatalf("send %s: %v; receive: %v", made.Name, serr, err)
	}
	if got.UUID != made.UUID || !got.Current || !got.Received {
		t.Fatalf("received %+v, want the current revision with UUID %s", got, made.UUID)
	}
	received := time.Now()
	again := "bookworm/amd64: machine " + name + " is on the required revision " + got.Name + " (UUID " + made.UUID + "): taking packages again"
	n.env.waitLog(time.Minute, again)
	t.Logf("the builder took packages again %v after its machine received the required revision (CheckEvery %v)", time.Since(received).Round(10*time.Millisecond), CheckEvery)
	n.env.waitLog(time.Minute, "Starting build (dist=bookworm) of revpkg_1.0")
	nw.waitQueue(5*time.Minute, "revpkg to be built", func(v queueView) bool { return v.recs["revpkg"].State == queue.Built })
	list = admin("--revisions")
	if want := n.name + "  " + name + "  " + got.Name + "  " + made.UUID + "  yes"; !strings.Contains(list, want) || strings.Contains(list, "Behind") {
		t.Fatalf("--revisions after the receive, want %q and nobody behind:\n%s", want, list)
	}
	nw.stop()
}

// xid is the transaction id that sql, run as the queue's admin, selects.
func (nw *network) xid(sql string) int64 {
	nw.t.Helper()
	if nw.q == nil {
		nw.look()
	}
	var id int64
	if err := nw.q.Conn().QueryRow(context.Background(), sql).Scan(&id); err != nil {
		nw.t.Fatal(err)
	}
	return id
}

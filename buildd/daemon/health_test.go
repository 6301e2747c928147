package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/store"
)

// keptBuilds are the builds the queue at db keeps of name, oldest first.
func keptBuilds(t *testing.T, db, name string) []*queue.BuildRecord {
	t.Helper()
	s, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []*queue.BuildRecord
	err = s.View("bookworm", "amd64", func(tx queue.Tx) error {
		return tx.Builds(name, func(b *queue.BuildRecord) error { out = append(out, b); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// realQueueEnv is a queueEnv whose daemon builds for real, in a fresh
// machines volume of its own (machinetest), from a local archive.
func realQueueEnv(t *testing.T, extra string, pkgs ...srcPkg) *queueEnv {
	t.Helper()
	e, c := realEnv(t, extra, pkgs...)
	lg := homeAndLog(t, c)
	parts := RealParts()
	m, err := parts.Machines(c)
	if err != nil {
		t.Fatal(err)
	}
	q := &queueEnv{env: e, d: New(c, parts, lg), cfg: c}
	q.d.machines, q.d.builder = m, parts.Builder(c, m)
	return q
}

// lastEnded is the package of names whose build ended last, and that
// build as the queue keeps it.
func (q *queueEnv) lastEnded(t *testing.T, names []string) (string, *queue.BuildRecord) {
	t.Helper()
	var name string
	var last *queue.BuildRecord
	for _, n := range names {
		bs := keptBuilds(t, q.cfg.WannaBuildDB, n)
		if len(bs) > 0 && (last == nil || bs[len(bs)-1].Time >= last.Time) {
			name, last = n, bs[len(bs)-1]
		}
	}
	if last == nil {
		t.Fatalf("no build kept of %v\n%s", names, q.daemonLog())
	}
	return name, last
}

// fillVolume fills the volume of path with the file path: allocated
// (fallocate, as much as btrfs gives), then written to the last block.
func fillVolume(t *testing.T, path string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	for size := int64(st.Bavail) * int64(st.Bsize); size > 64<<20; size -= 64 << 20 {
		if exec.Command("fallocate", "-l", fmt.Sprint(size), path).Run() == nil {
			break
		}
	}
	f, err := os.OpenFile(path+".rest", os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Cleanup(func() { os.Remove(path + ".rest") })
	block := make([]byte, 1<<20)
	for {
		if _, err := f.Write(block); err != nil {
			break
		}
	}
	f.Sync()
}

// TestInfrastructureFaults: faults of the builder's own infrastructure,
// injected for real one round each (the machines volume full, a
// snapshot that cannot be made, a mirror that refuses), each give its
// package back with a class of infrastructure, the stage it failed at
// and a backoff in the queue; none is failed or attempted. One more than
// max_sbuild_fails puts the builder in quarantine: it takes nothing, and
// the admin is mailed what failed. A probe build that fails keeps it; one
// that builds ends it. Then the packages build (the admin's --retry ends
// their backoff), and a package that fails for its own fault is
// attempted, never retried.
func TestInfrastructureFaults(t *testing.T) {
	names := []string{"faulta", "faultb", "faultc", "faultd"}
	var pkgs []srcPkg
	for _, n := range names {
		pkgs = append(pkgs, pkg(n, "1.0"))
	}
	pkgs = append(pkgs, srcPkg{"ownfault", "1.0", "misc", "echo 'error: ownfault does not build' >&2; exit 1"})
	// min_free_space = 0: the volume fills while a build runs, past the
	// check before it starts.
	q := realQueueEnv(t, "max_build = 1\nmax_sbuild_fails = 2\ndelay_after_give_back = 60\nmin_free_space = 0", pkgs...)
	machineDir := filepath.Join(q.cfg.MachinesDir, q.cfg.Dists[0].Machine)

	faults := []struct {
		name   string
		inject func() (undo func())
		stage  string // "" when any stage may see it first
	}{
		{"the machines volume full", func() func() {
			fill := filepath.Join(q.cfg.MachinesDir, "fill")
			fillVolume(t, fill)
			return func() {
				os.Remove(fill)
				os.Remove(fill + ".rest")
				exec.Command("btrfs", "filesystem", "sync", q.cfg.MachinesDir).Run()
			}
		}, ""},
		{"a snapshot that cannot be made", func() func() {
			if out, err := exec.Command("chattr", "+i", machineDir).CombinedOutput(); err != nil {
				t.Fatalf("chattr +i %s: %v\n%s", machineDir, err, out)
			}
			return func() { exec.Command("chattr", "-i", machineDir).Run() }
		}, "create-snapshot"},
		{"a mirror that refuses", func() func() {
			c := *q.cfg
			c.Dists = slices.Clone(c.Dists)
			c.Dists[0].AptSources = []string{"deb [trusted=yes] " + sickMirror + " bookworm main", "deb-src [trusted=yes] " + sickMirror + " bookworm main"}
			q.d.SetConfig(&c)
			return func() { q.d.SetConfig(q.cfg) }
		}, "fetch-src"},
	}
	for i, f := range faults {
		undo := f.inject()
		q.round()
		undo()
		name, b := q.lastEnded(t, names)
		t.Logf("%s: %s given back at stage %s (%s)", f.name, name, b.Stage, b.Class)
		switch {
		case b.Outcome != queue.GivenBack || b.Class != queue.ClassInfra:
			t.Fatalf("%s: %s ended %s, class %s; want given back, infrastructure\n%s", f.name, name, b.Outcome, b.Class, q.daemonLog())
		case f.stage != "" && b.Stage != f.stage:
			t.Errorf("%s: %s failed at stage %s, want %s", f.name, name, b.Stage, f.stage)
		case b.RetryAfter < time.Now().Add(50*time.Minute).Unix():
			t.Errorf("%s: %s may be taken again at %d, want an hour's backoff", f.name, name, b.RetryAfter)
		}
		if st := q.state(name); st != queue.NeedsBuild {
			t.Errorf("%s: %s is %s, want Needs-Build", f.name, name, st)
		}
		quar, err := home.New(q.cfg.Home).Quarantine().Read()
		if err != nil || (quar != nil) != (i == len(faults)-1) {
			t.Fatalf("after %d infrastructure failures with max_sbuild_fails = 2: quarantine %+v, %v", i+1, quar, err)
		}
	}
	var mess string
	for _, m := range q.smtp.Wait(4, time.Minute) {
		if strings.Contains(string(m.Data), "Subject: Repeated mess with sbuild: quarantined after 3") {
			mess = string(m.Data)
		}
	}
	if !strings.Contains(mess, "stage create-snapshot") || !strings.Contains(mess, "stage fetch-src") || !strings.Contains(mess, "MiB free of") {
		t.Errorf("the quarantine mail does not say what failed and the diagnostics:\n%s", mess)
	}
	q.round()
	if strings.Count(q.daemonLog(), "Starting build") != len(faults) {
		t.Fatalf("a quarantined builder started a build:\n%s", q.daemonLog())
	}

	if out, err := exec.Command(bin, "quarantine", "--config", q.conf).CombinedOutput(); err != nil || !strings.Contains(string(out), "quarantined since") {
		t.Errorf("buildd quarantine: %v\n%s", err, out)
	}

	// A probe build that fails keeps the quarantine; one that builds ends
	// it. Neither takes its package from the queue.
	probe := func(pkgv, want string) {
		t.Helper()
		c := *q.cfg
		c.QuarantineProbe, c.SbuildFailsPause = pkgv, 0
		q.d.SetConfig(&c)
		q.round()
		if !strings.Contains(q.daemonLog(), want) {
			t.Fatalf("probe build of %s: daemon.log does not say %q:\n%s", pkgv, want, q.daemonLog())
		}
		q.d.SetConfig(q.cfg)
	}
	probe("ownfault_1.0", "Probe build of ownfault_1.0 failed (attempted, stage build")
	if quar, _ := home.New(q.cfg.Home).Quarantine().Read(); quar == nil {
		t.Fatal("a failed probe build ended the quarantine")
	}
	probe("faultd_1.0", "Probe build of faultd_1.0 succeeded: quarantine ended")
	if out, err := exec.Command(bin, "quarantine", "--config", q.conf).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "not quarantined" {
		t.Errorf("buildd quarantine after the probe: %v\n%s", err, out)
	}
	if st := q.state("faultd"); st != queue.NeedsBuild {
		t.Errorf("faultd is %s after its probe build, want Needs-Build (a probe takes nothing)", st)
	}
	if out, err := exec.Command(wannaBuild(t), append([]string{"--db", q.cfg.WannaBuildDB, "-d", "bookworm", "-A", "amd64", "--retry"}, names...)...).CombinedOutput(); err != nil {
		t.Fatalf("--retry: %v\n%s", err, out)
	}
	for i := 0; i < len(pkgs)+1; i++ {
		q.round()
	}
	for _, n := range names {
		if st := q.state(n); st != queue.Built {
			t.Errorf("%s is %s after the quarantine, want Built\n%s", n, st, q.daemonLog())
		}
		bs := keptBuilds(t, q.cfg.WannaBuildDB, n)
		if last := bs[len(bs)-1]; last.Class != queue.ClassOK || last.PeakMemory <= 0 || last.CPUTime <= 0 || last.Disk <= 0 || last.SlotMemory <= 0 {
			t.Errorf("%s's build kept as %+v: want class ok and its resources measured", n, last)
		}
	}
	if st := q.state("ownfault"); st != queue.BuildAttempted {
		t.Errorf("ownfault is %s, want Build-Attempted", st)
	}
	bs := keptBuilds(t, q.cfg.WannaBuildDB, "ownfault")
	if len(bs) != 1 || bs[0].Class != queue.ClassPackage || bs[0].RetryAfter != 0 || bs[0].Stage != "build" {
		t.Errorf("ownfault's builds %+v: want one, class package, at stage build, no retry", bs)
	}
}

// TestOOMBiggerSlot: on a PostgreSQL queue, a package whose build needs
// more memory than a small builder's slots is killed there by the slot's
// limit (class oom), given back because a live builder has slots big
// enough (its heartbeat says so), and built by that builder; the small
// one takes it no more (too big for its slots).
func TestOOMBiggerSlot(t *testing.T) {
	// The script is a make recipe: $$ is perl's $.
	hog := srcPkg{"hog", "1.0", "misc", `perl -e '$$x = "a" x (400 * 1024 * 1024); print length($$x), "\n"'`}
	nw := newNetworkOf(t, 2, "", func(i int) string {
		return map[int]string{1: "slot_memory = 256\n", 2: "slot_memory = 1024\n"}[i]
	}, hog)
	small, big := nw.nodes[0], nw.nodes[1]
	nw.start()
	waitFor(t, time.Minute, "the big builder's heartbeat", func() bool {
		sts, err := nw.q.Builders(queue.Pair{Dist: "bookworm", Arch: "amd64"})
		return err == nil && slices.ContainsFunc(sts, func(st queue.BuilderStatus) bool { return st.Builder == big.name && st.SlotMemory == 1024<<10 })
	})
	// The big builder stops; its heartbeat is fresh: it is live.
	big.proc.cmd.Process.Signal(syscall.SIGTERM)
	if code := big.proc.wait(t, StopWait+time.Minute); code != 0 {
		t.Fatalf("%s exit %d", big.name, code)
	}
	nw.merge()
	nw.waitQueue(10*time.Minute, "hog given back by the small builder", func(v queueView) bool {
		if st := v.recs["hog"].State; st != queue.NeedsBuild && st != queue.Building {
			t.Fatalf("hog is %s, want it given back for the big builder\n%s", st, small.env.daemonLog())
		}
		return len(v.actions("hog", "--give-back")) == 1 && v.recs["hog"].State == queue.NeedsBuild
	})
	bs := keptBuilds(t, nw.db.URL(pgtest.Admin), "hog")
	if len(bs) != 1 || bs[0].Class != queue.ClassOOM || bs[0].Builder != small.name || bs[0].SlotMemory != 256<<10 {
		t.Fatalf("hog's builds %+v: want one, killed by the small builder's slot of 256 MiB (class oom)\n%s", bs, small.env.daemonLog())
	}
	waitFor(t, time.Minute, "the small builder to leave hog", func() bool {
		return strings.Contains(small.env.daemonLog(), "hog_1.0 on amd64 (dist=bookworm): too big for this builder's slots")
	})
	big.proc = big.env.start("--no-detach")
	v := nw.waitQueue(10*time.Minute, "hog built by the big builder", func(v queueView) bool {
		return v.recs["hog"].State == queue.Built
	})
	if r := v.recs["hog"]; r.Builder != big.name || len(v.actions("hog", "--take")) != 2 || len(v.actions("hog", "--attempted")) != 0 {
		t.Fatalf("hog %s by %s, want Built by %s after one give-back, never attempted:\n%s", r.State, r.Builder, big.name, v)
	}
	bs = keptBuilds(t, nw.db.URL(pgtest.Admin), "hog")
	if last := bs[len(bs)-1]; last.Class != queue.ClassOK || last.PeakMemory < 400<<10 {
		t.Errorf("hog's build by the big builder kept as %+v: want ok, with a peak of at least 400 MiB", last)
	}
	nw.stop()
}

// TestNetworkSickBuilder: a builder whose mirror refuses every
// connection takes packages, gives each back (infrastructure, at
// fetch-src) and puts itself in quarantine after max_sbuild_fails + 1; the
// healthy builders build every package, none failed or attempted, and
// the sick one's heartbeat says it is quarantined.
func TestNetworkSickBuilder(t *testing.T) {
	var pkgs []srcPkg
	for i := 0; i < 6; i++ {
		pkgs = append(pkgs, srcPkg{fmt.Sprintf("sickpkg%02d", i), "1.0", "misc", "true"})
	}
	nw := newNetworkOf(t, 3, "", func(i int) string { return "delay_after_give_back = 0\n" }, pkgs...)
	sick := nw.nodes[0]
	conf, err := os.ReadFile(sick.env.conf)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(sick.env.conf, []byte(strings.ReplaceAll(string(conf), nw.archive.url, sickMirror)), 0o644)
	// The sick builder alone first: it takes packages until it stops.
	healthy := nw.nodes[1:]
	nw.nodes = nw.nodes[:1]
	nw.start()
	nw.merge()
	waitFor(t, 5*time.Minute, "the sick builder's quarantine", func() bool {
		q, _ := home.New(sick.env.home).Quarantine().Read()
		return q != nil
	})
	nw.nodes = healthy
	nw.start()
	nw.nodes = append([]*node{sick}, healthy...)
	v := nw.waitQueue(10*time.Minute, "every package built", func(v queueView) bool {
		for _, p := range pkgs {
			if r := v.recs[p.name]; r == nil || r.State != queue.Built {
				return false
			}
		}
		return true
	})
	takes := 0
	for _, tr := range v.history {
		if tr.User != sick.name {
			continue
		}
		switch tr.Action {
		case "--take":
			takes++
		case "--give-back":
		default:
			t.Errorf("the sick builder: %s", tr.Line("bookworm"))
		}
	}
	if takes != 3 {
		t.Errorf("the sick builder took %d packages, want 3 (max_sbuild_fails + 1) before its quarantine", takes)
	}
	for _, p := range pkgs {
		if r := v.recs[p.name]; r.Builder == sick.name || len(v.actions(p.name, "--attempted")) > 0 {
			t.Errorf("%s: built by %s, attempted %d times", p.name, r.Builder, len(v.actions(p.name, "--attempted")))
		}
	}
	sts, err := nw.q.Builders(queue.Pair{Dist: "bookworm", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if (st.Builder == sick.name) != (st.Quarantined != "") {
			t.Errorf("heartbeat of %s: quarantined %q", st.Builder, st.Quarantined)
		}
	}
	nw.stop()
}

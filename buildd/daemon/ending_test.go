package daemon

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// TestEndings: the end of a build (the queue told, the log spooled and
// mailed, BUILDING cleared) survives a queue that fails at the report, a
// buildd that dies between the steps, and a package taken away while it
// built: each report reaches the queue once, each log is mailed once and
// only by the package's builder, and nothing is built again. The queue is
// the real bbolt one; it "fails" by being replaced with a damaged file
// for a while, as TestREDOClaim's does.
func TestEndings(t *testing.T) {
	ctx := context.Background()
	const pv = "endme_1.0"
	type env struct {
		*queueEnv
		ours, other queue.Port
		h           home.Home
		restore     func() // puts back the queue breakQueue broke
	}
	// breakQueue replaces the queue's file with a damaged one and returns
	// the function that puts it back.
	breakQueue := func(q *env) func() {
		db := q.cfg.WannaBuildDB
		if err := os.Rename(db, db+".saved"); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(db, []byte("not a database"), 0o644); err != nil {
			t.Error(err)
		}
		return func() {
			if err := os.Rename(db+".saved", db); err != nil {
				t.Error(err)
			}
		}
	}
	// crashed leaves what a buildd killed after the build ended leaves:
	// the package Building by it, its BUILDING line, its log, and rec in
	// FINISHED; then a new daemon starts (stage queue) on the same home.
	crashed := func(q *env, rec home.Finished, then func() error) {
		if err := q.ours.Take(ctx, pv); err != nil {
			t.Fatal(err)
		}
		if then != nil {
			if err := then(); err != nil {
				t.Fatal(err)
			}
		}
		rec.RedoEntry = home.RedoEntry{PkgVersion: pv, Dist: "bookworm"}
		rec.LogPath = q.h.Path("logs", "endme_1.0_amd64-20261206-000000.build")
		rec.Ended = time.Now()
		if err := os.WriteFile(rec.LogPath, []byte("build of endme_1.0\nStatus: successful\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := q.h.Building().Add(rec.RedoEntry); err != nil {
			t.Fatal(err)
		}
		if err := q.h.Finished().Put(rec); err != nil {
			t.Fatal(err)
		}
		r := &runner{d: q.d, log: q.d.log}
		if err := r.queue(ctx, q.cfg); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		setup  func(q *env) // before the first round
		during func(q *env) // while the package builds
		mid    func(q *env) // after the first round, before the second
		state  queue.State  // the package's state at the end
		builds int          // builds of the package in the two rounds
		mails  int          // log mails of it
		logged string
	}{
		{name: "the queue fails at the report",
			during: func(q *env) { q.restore = breakQueue(q) },
			mid: func(q *env) {
				q.check(q.t, "after the failed report", false, 1, 0)
				q.restore()
			},
			state: queue.Built, builds: 1, mails: 1,
			logged: "wanna-build (successful) --dist=bookworm --arch=amd64 endme_1.0 failed: "},
		{name: "a crash after the report",
			setup: func(q *env) {
				crashed(q, home.Finished{Status: string(build.Successful), Reported: true},
					func() error { return q.ours.Built(ctx, pv) })
			},
			state: queue.Built, builds: 0, mails: 1,
			logged: "endme_1.0 on amd64 (dist=bookworm) had ended (successful) when buildd died -- going on with its end (told the queue: true"},
		{name: "a crash between the report and its mark",
			setup: func(q *env) {
				crashed(q, home.Finished{Status: string(build.Successful)},
					func() error { return q.ours.Built(ctx, pv) })
			},
			state: queue.Built, builds: 0, mails: 1,
			logged: "endme_1.0 on amd64 (dist=bookworm): the queue has its outcome (successful) from this builder already"},
		{name: "a crash before the report",
			setup: func(q *env) { crashed(q, home.Finished{Status: string(build.Successful)}, nil) },
			state: queue.Built, builds: 0, mails: 1,
			logged: "going on with its end (told the queue: false"},
		{name: "taken away while it built",
			during: func(q *env) {
				if err := q.ours.GiveBack(ctx, pv); err != nil {
					t.Error(err)
				}
				if err := q.other.Take(ctx, pv); err != nil {
					t.Error(err)
				}
			},
			state: queue.Building, builds: 1, mails: 0,
			logged: "Build of endme_1.0 on amd64 (dist=bookworm) (successful) not reported: the queue refuses it: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &env{queueEnv: newQueueEnv(t, "max_build = 1", pkg("endme", "1.0"))}
			q.h = home.New(q.cfg.Home)
			q.ours = port.Open(q.cfg, &q.cfg.Dists[0])
			defer q.ours.Close()
			od := q.cfg.Dists[0]
			od.WannaBuildDBUser = "buildd_other"
			q.other = port.Open(q.cfg, &od)
			defer q.other.Close()
			if c.during != nil {
				q.b.during = func(string) { c.during(q) }
			}
			if c.setup != nil {
				c.setup(q)
			}
			q.round()
			q.b.during = nil
			if c.mid != nil {
				c.mid(q)
			}
			q.round()
			if n := strings.Count(" "+q.b.built()+" ", " "+pv+" "); n != c.builds {
				t.Errorf("built %q: %s %d times, want %d", q.b.built(), pv, n, c.builds)
			}
			if st := q.state("endme"); st != c.state {
				t.Errorf("endme is %s, want %s", st, c.state)
			}
			if !strings.Contains(q.daemonLog(), c.logged) {
				t.Errorf("daemon.log does not say %q:\n%s", c.logged, q.daemonLog())
			}
			q.check(t, "at the end", true, 0, c.mails)
		})
	}
}

// check checks the home and the mails: FINISHED and BUILDING hold the
// package (held) or are empty, and mails log mails of it were sent.
func (q *queueEnv) check(t testing.TB, when string, done bool, held, mails int) {
	t.Helper()
	h := home.New(q.cfg.Home)
	recs, bad, err := h.Finished().Read()
	if err != nil || len(bad) > 0 || len(recs) != held {
		t.Errorf("%s: FINISHED holds %v %v (%v), want %d records", when, recs, bad, err, held)
	}
	es, _, err := h.Building().Read()
	if err != nil || len(es) != held {
		t.Errorf("%s: BUILDING holds %v (%v), want %d lines", when, es, err, held)
	}
	if done {
		q.smtp.Wait(mails, 5*time.Second)
	}
	n := 0
	for _, m := range q.smtp.Mails() {
		if strings.Contains(string(m.Data), "Subject: Log for ") {
			n++
		}
	}
	if n != mails {
		t.Errorf("%s: %d log mails, want %d", when, n, mails)
	}
}

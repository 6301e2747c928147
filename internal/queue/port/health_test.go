package port_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/store"
)

// TestEnd: a build's end reaches the queue through every way to a queue
// (a bbolt file, PostgreSQL as the admin and as the builder's role,
// wanna-build over ssh) with its class and resources; a package given
// back waits (it is not listed, a take is refused) until its delay ends
// or the admin's --retry; a build's end of a package that is not the
// builder's keeps nothing; a heartbeat is kept, and one the queue must
// not take is refused.
func TestEnd(t *testing.T) {
	for _, kind := range append(kinds, "builder") {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var p queue.Port
			var db string
			name, pkgv := "nb", "nb_1.0-1"
			if kind == "builder" {
				p, db = builderPort(t)
				name, pkgv = "hello", "hello_1.0-1"
			} else {
				p, db = newPort(t, kind)
				if err := p.Take(ctx, pkgv); err != nil {
					t.Fatal(err)
				}
			}
			retry := queue.RetryPolicy{Delay: 3600, Max: 5}
			b, err := p.End(ctx, pkgv, queue.BuildEnd{Outcome: queue.GivenBack, Class: queue.ClassInfra, Stage: "fetch-src",
				Resources: queue.Resources{Wall: 5, SlotMemory: 1 << 20}, Retry: retry})
			if err != nil || b == nil || b.RetryAfter < time.Now().Add(50*time.Minute).Unix() || b.Held != "" || b.Builder != "buildd_a" {
				t.Fatalf("give-back: kept %+v, %v; want a wait of an hour", b, err)
			}
			listed := func() bool {
				t.Helper()
				list, err := p.NeedsBuild(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return slices.ContainsFunc(list, func(c queue.Candidate) bool { return c.Name == name })
			}
			if listed() {
				t.Errorf("%s is listed while it waits", name)
			}
			if err := p.Take(ctx, pkgv); !queue.IsRefused(err) || !strings.Contains(err.Error(), "in backoff until") {
				t.Errorf("take while it waits: %v, want a refusal saying it is in backoff", err)
			}
			if info, err := p.Info(ctx, name); err != nil || !strings.Contains(info.Waiting, "in backoff until") {
				t.Errorf("info while it waits: %+v, %v", info, err)
			}
			if out, err := exec.Command(bin, "--db", db, "-d", "sid", "-A", "amd64", "-U", pgtest.Admin, "--retry", name).CombinedOutput(); err != nil {
				t.Fatalf("--retry: %v\n%s", err, out)
			}
			if !listed() {
				t.Errorf("%s is not listed after --retry", name)
			}
			if err := p.Take(ctx, pkgv); err != nil {
				t.Fatalf("take after --retry: %v", err)
			}
			b, err = p.End(ctx, pkgv, queue.BuildEnd{Outcome: queue.Successful, Class: queue.ClassOK,
				Resources: queue.Resources{PeakMemory: 300 << 10, CPUTime: 1500, Disk: 9000, Wall: 7, SlotMemory: 1 << 20}})
			if err != nil || b == nil || b.Class != queue.ClassOK || b.RetryAfter != 0 {
				t.Fatalf("built: kept %+v, %v", b, err)
			}
			if info, err := p.Info(ctx, name); err != nil || info.State != queue.Built {
				t.Errorf("after the end: %+v, %v; want Built", info, err)
			}
			if b, err := p.End(ctx, pkgv, queue.BuildEnd{Outcome: queue.Attempted, Class: queue.ClassPackage, Stage: "build"}); !queue.IsRefused(err) || b != nil {
				t.Errorf("the end of a package not Building: kept %+v, %v; want a refusal", b, err)
			}
			if _, err := p.End(ctx, pkgv, queue.BuildEnd{Outcome: queue.Successful, Class: queue.ClassOOM}); err == nil || !strings.Contains(err.Error(), "class oom with outcome successful") {
				t.Errorf("an end whose class and outcome disagree: %v", err)
			}

			if err := p.Heartbeat(ctx, queue.BuilderStatus{Slots: 2, SlotMemory: 4 << 20, Running: 1}); err != nil {
				t.Fatal(err)
			}
			if err := p.Heartbeat(ctx, queue.BuilderStatus{Slots: 2, Quarantined: "bad\x1b[31m", QuarantinedSince: 1}); err == nil || !strings.Contains(err.Error(), "control character") {
				t.Errorf("a heartbeat with a control character: %v", err)
			}
			sts, err := p.Builders(ctx)
			if err != nil || len(sts) != 1 || sts[0].Builder != "buildd_a" || sts[0].Slots != 2 || sts[0].SlotMemory != 4<<20 || sts[0].Heard < time.Now().Add(-time.Minute).Unix() {
				t.Errorf("builders: %+v, %v", sts, err)
			}

			s, err := store.Open(db, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got []string
			err = s.View("sid", "amd64", func(tx queue.Tx) error {
				return tx.Builds(name, func(b *queue.BuildRecord) error {
					got = append(got, string(b.Outcome)+" "+string(b.Class)+" by "+b.Builder)
					return nil
				})
			})
			want := []string{"given-back infrastructure by buildd_a", " retry by " + pgtest.Admin, "successful ok by buildd_a"}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("the queue keeps %q, %v; want %q", got, err, want)
			}
		})
	}
}

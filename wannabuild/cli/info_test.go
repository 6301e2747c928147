package cli

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

// infoRun runs --info args on db for sid/amd64 as Main does, through
// run.info, and returns its stdout.
func infoRun(t *testing.T, db string, args ...string) string {
	t.Helper()
	o, err := parseArgs(append([]string{"--db", db, "--dist=sid", "--arch=amd64", "--info"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr, out bytes.Buffer
	r := &run{o: o, stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	if status, ok := r.setup(); !ok {
		t.Fatalf("setup: exit %d: %s", status, stderr.String())
	}
	r.s.Out = &out
	if code := r.info(); code != 0 || stderr.Len() > 0 {
		t.Fatalf("--info %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
	}
	return stdout.String() + out.String()
}

// TestInfoHealth: after the classic lines, --info shows when a Building
// package's lease ends and when its builder was last heard (its renewal
// or its heartbeat, whichever is later), and why a Needs-Build package
// given back is not taken yet; nothing more for the others.
func TestInfoHealth(t *testing.T) {
	t.Setenv(EnvNow, now)
	clock, _ := strconv.ParseInt(now, 10, 64)
	spec := storetest.New(t)
	db, err := store.Open(spec, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Heartbeat(queue.BuilderStatus{Builder: "buildd_a", Pair: queue.Pair{Dist: "sid", Arch: "amd64"}, Slots: 1}); err != nil {
		t.Fatal(err)
	}
	sts, err := db.Builders(queue.Pair{Dist: "sid", Arch: "amd64"})
	if err != nil || len(sts) != 1 {
		t.Fatalf("heartbeats %v: %v", sts, err)
	}
	beat := sts[0].Heard
	err = db.Update("sid", "amd64", func(tx queue.Tx) error {
		for _, r := range []queue.Record{
			{Package: "beating", Version: "1", State: queue.Building, Builder: "buildd_a", StateChange: clock - 600, LeaseUntil: clock + 3000, LeaseRenewed: clock - 60},
			{Package: "renewing", Version: "1", State: queue.Building, Builder: "buildd_b", StateChange: clock - 600, LeaseUntil: clock + 3000, LeaseRenewed: clock - 60},
			{Package: "unleased", Version: "1", State: queue.Building, Builder: "buildd_c", StateChange: clock - 600},
			{Package: "backoff", Version: "1", State: queue.NeedsBuild, StateChange: clock - 600},
			{Package: "held", Version: "1", State: queue.NeedsBuild, StateChange: clock - 600},
			{Package: "retried", Version: "1", State: queue.NeedsBuild, StateChange: clock - 600},
			{Package: "failed", Version: "1", State: queue.Failed, Builder: "root", StateChange: clock - 600},
		} {
			if err := tx.Put(&r); err != nil {
				return err
			}
		}
		for _, b := range []queue.BuildRecord{
			{Package: "backoff", Version: "1", Builder: "buildd_a", Time: clock - 600, Outcome: queue.GivenBack, Class: queue.ClassTimeout, RetryAfter: clock + 3600},
			{Package: "held", Version: "1", Builder: "buildd_a", Time: clock - 600, Outcome: queue.GivenBack, Class: queue.ClassInfra, Held: "given back 3 times in a row"},
			{Package: "retried", Version: "1", Builder: "buildd_a", Time: clock - 600, Outcome: queue.GivenBack, Class: queue.ClassInfra, Held: "given back 3 times in a row"},
			{Package: "retried", Version: "1", Builder: "root", Time: clock - 60, Class: queue.ClassRetry},
		} {
			if err := tx.AddBuild(&b); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	at := func(u int64) string { return time.Unix(u, 0).UTC().Format(queue.TimeFormat) }
	for _, tc := range []struct {
		pkg  string
		want []string // the lines after State-Time
	}{
		{"beating", []string{"  Lease-Until         : " + at(clock+3000), "  Last-Heard          : " + at(max(beat, clock-60))}},
		{"renewing", []string{"  Lease-Until         : " + at(clock+3000), "  Last-Heard          : " + at(clock-60)}},
		{"unleased", nil},
		{"backoff", []string{"  Waiting             : in backoff until " + at(clock+3600) + " UTC (given back timeout by buildd_a)"}},
		{"held", []string{"  Waiting             : held for the admin (wanna-build --retry): given back 3 times in a row"}},
		{"retried", nil},
		{"failed", nil},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			out := infoRun(t, spec, tc.pkg)
			_, after, ok := strings.Cut(out, "  State-Time          : ")
			if !ok || !strings.HasPrefix(out, tc.pkg+":\n  Package             : "+tc.pkg+"\n") {
				t.Fatalf("not the classic block:\n%s", out)
			}
			_, after, _ = strings.Cut(after, "\n")
			if got := strings.Split(strings.TrimSuffix(after, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("after the classic lines:\n%s\nwant:\n%s", after, strings.Join(tc.want, "\n"))
			}
		})
	}
	// The classic block is the one the classic path prints, and a
	// package the queue does not hold gets the classic refusal.
	classic, _, _ := wb(t, spec, "", "--info", "failed", "nothere")
	if got := infoRun(t, spec, "failed", "nothere"); got != classic || !strings.Contains(got, "nothere: not registered") {
		t.Errorf("--info failed nothere:\n%s\nwant the classic:\n%s", got, classic)
	}
}

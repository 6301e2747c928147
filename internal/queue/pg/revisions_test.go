package pg_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
)

// testUUID is the test's UUID number n.
func testUUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// report is a report of revisions m-FIRST..m-(FIRST+N-1), the first
// current.
func report(first, n int) []queue.HeldRevision {
	var h []queue.HeldRevision
	for i := 0; i < n; i++ {
		h = append(h, queue.HeldRevision{Machine: "m", Revision: fmt.Sprintf("m-%d", first+i), UUID: testUUID(first + i), Current: i == 0})
	}
	return h
}

// TestBuilderRevisions: through the queue's calls, a builder role reports
// its own revisions of the queues it was given and learns what they
// require; the database refuses its report in another builder's name or
// of another queue, and its requirement; the admin may report in a
// builder's name (a queue host answering a builder over ssh) and
// require.
func TestBuilderRevisions(t *testing.T) {
	db, admin := builderQueue(t)
	a := open(t, db.URL("buildd_a"))
	if got, err := a.ReportRevisions("buildd_a", sidAmd64, report(1, 2)); err != nil || got != "" {
		t.Fatalf("its own report: required %q, %v", got, err)
	}
	if err := admin.RequireRevision(sidAmd64, testUUID(3), pgtest.Admin); err != nil {
		t.Fatal(err)
	}
	if got, err := a.ReportRevisions("buildd_a", sidAmd64, report(3, 1)); err != nil || got != testUUID(3) {
		t.Fatalf("its report after the requirement: required %q, %v; want %s", got, err, testUUID(3))
	}
	if _, err := admin.ReportRevisions("buildd_b", sidAmd64, report(1, 1)); err != nil {
		t.Fatalf("the admin's report in buildd_b's name: %v", err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"in another builder's name", func() error { _, err := a.ReportRevisions("buildd_b", sidAmd64, report(5, 1)); return err },
			"builder buildd_a may not report the revisions of builder buildd_b"},
		{"of a queue not given", func() error { _, err := a.ReportRevisions("buildd_a", sidArm64, report(5, 1)); return err },
			"not a queue of this builder (wb_builder_queues)"},
		{"a requirement", func() error { return a.RequireRevision(sidAmd64, testUUID(5), "buildd_a") }, "permission denied for table wb_required_revisions"},
		{"lifting the requirement", func() error { return a.RequireRevision(sidAmd64, "", "buildd_a") }, "permission denied for table wb_required_revisions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, pg.ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want ErrRefused saying %q", err, tc.want)
			}
		})
	}
	rs, err := admin.Revisions("", queue.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.Builder+" "+r.Revision)
	}
	if strings.Join(got, ", ") != "buildd_a m-3, buildd_b m-1" {
		t.Errorf("the reports: %q, want buildd_a's last and the admin's for buildd_b", got)
	}
	if reqs, err := admin.RequiredRevisions(); err != nil || len(reqs) != 1 || reqs[0].UUID != testUUID(3) {
		t.Errorf("required: %+v, %v", reqs, err)
	}
}

var sidArm64 = queue.Pair{Dist: "sid", Arch: "arm64"}

// TestRevisionsBounded: a builder's reports sent at once on many
// connections, each of 16 revisions of its own, leave one report: 16
// rows, never more, whatever their order.
func TestRevisionsBounded(t *testing.T) {
	db, admin := builderQueue(t)
	a, err := pg.Open(context.Background(), db.URL("buildd_a"), pg.Options{MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if _, err := a.ReportRevisions("buildd_a", sidAmd64, report(1+100*i+j*16, queue.MaxHeldRevisions)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a report: %v", err)
	}
	var rows, span, current int
	if err := admin.Conn().QueryRow(context.Background(), `SELECT count(*), max(substr(revision, 3)::int) - min(substr(revision, 3)::int),
		count(*) FILTER (WHERE current) FROM wb_revisions WHERE builder = 'buildd_a'`).Scan(&rows, &span, &current); err != nil {
		t.Fatal(err)
	}
	if rows != queue.MaxHeldRevisions || span != queue.MaxHeldRevisions-1 || current != 1 {
		t.Errorf("after buildd_a's reports at once: %d rows spanning %d revisions, %d current; want one report: %d rows, one current",
			rows, span+1, current, queue.MaxHeldRevisions)
	}
}

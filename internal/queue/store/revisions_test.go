package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

var (
	sidAmd64 = queue.Pair{Dist: "sid", Arch: "amd64"}
	sidArm64 = queue.Pair{Dist: "sid", Arch: "arm64"}
)

// uuid is the test's UUID number n.
func uuid(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// held is a report of machine m: revisions m-N with UUID N, the first
// current.
func held(m string, ns ...int) []queue.HeldRevision {
	var out []queue.HeldRevision
	for i, n := range ns {
		out = append(out, queue.HeldRevision{Machine: m, Revision: fmt.Sprintf("%s-%d", m, n), UUID: uuid(n), Current: i == 0})
	}
	return out
}

// lines are reports as "BUILDER DIST/ARCH REVISION [current]", "?"
// after a revision whose UUID is not held's.
func lines(rs []queue.ReportedRevision) []string {
	var out []string
	for _, r := range rs {
		s := r.Builder + " " + r.Dist + "/" + r.Arch + " " + r.Revision
		var n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(r.Revision, r.Machine+"-"), "%d", &n); err != nil || r.UUID != uuid(n) {
			s += " ?"
		}
		if r.Current {
			s += " current"
		}
		out = append(out, s)
	}
	return out
}

// TestRevisions: what builders report of their machines and what the
// queues require, on the store $BUILDD_TEST_STORE names: a report
// replaces the builder's last one of that queue and no other; the lists
// filter by builder and queue, sorted; a requirement is set, answered to
// every report of its queue, and lifted; a report makes no queue of
// Pairs; the times are the store's clock.
func TestRevisions(t *testing.T) {
	db, err := store.Open(storetest.New(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	report := func(builder string, p queue.Pair, h []queue.HeldRevision, want string) {
		t.Helper()
		got, err := db.ReportRevisions(builder, p, h)
		if err != nil || got != want {
			t.Fatalf("report of %s in %v: required %q, %v; want %q", builder, p, got, err, want)
		}
	}
	list := func(builder string, p queue.Pair) []string {
		t.Helper()
		rs, err := db.Revisions(builder, p)
		if err != nil {
			t.Fatal(err)
		}
		return lines(rs)
	}
	before := time.Now().Unix()
	report("buildd_a", sidAmd64, held("m", 3, 1, 10, 2), "")
	report("buildd_b", sidAmd64, held("m", 2), "")
	report("buildd_a", sidArm64, held("n", 1), "")
	report("buildd_a", sidAmd64, held("m", 4, 3), "") // replaces its first
	report("buildd_c", sidAmd64, nil, "")             // holds none
	after := time.Now().Unix()
	for _, tc := range []struct {
		builder string
		p       queue.Pair
		want    []string
	}{
		{"", queue.Pair{}, []string{"buildd_a sid/amd64 m-4 current", "buildd_a sid/amd64 m-3", "buildd_b sid/amd64 m-2 current", "buildd_a sid/arm64 n-1 current"}},
		{"buildd_a", queue.Pair{}, []string{"buildd_a sid/amd64 m-4 current", "buildd_a sid/amd64 m-3", "buildd_a sid/arm64 n-1 current"}},
		{"", sidAmd64, []string{"buildd_a sid/amd64 m-4 current", "buildd_a sid/amd64 m-3", "buildd_b sid/amd64 m-2 current"}},
		{"", queue.Pair{Arch: "arm64"}, []string{"buildd_a sid/arm64 n-1 current"}},
		{"buildd_b", sidArm64, nil},
		{"nobody", queue.Pair{}, nil},
	} {
		if got := list(tc.builder, tc.p); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Revisions(%q, %v) = %q, want %q", tc.builder, tc.p, got, tc.want)
		}
	}
	rs, err := db.Revisions("buildd_b", sidAmd64)
	if err != nil || len(rs) != 1 || rs[0].UUID != uuid(2) || rs[0].Machine != "m" || rs[0].Reported < before || rs[0].Reported > after {
		t.Errorf("buildd_b's report: %+v, %v; want m-2 with UUID %s reported between %d and %d", rs, err, uuid(2), before, after)
	}

	if err := db.RequireRevision(sidAmd64, uuid(4), "wbadmin"); err != nil {
		t.Fatal(err)
	}
	report("buildd_b", sidAmd64, held("m", 2), uuid(4))
	report("buildd_a", sidArm64, held("n", 1), "")
	reqs, err := db.RequiredRevisions()
	if err != nil || len(reqs) != 1 || reqs[0].Pair != sidAmd64 || reqs[0].UUID != uuid(4) || reqs[0].SetBy != "wbadmin" || reqs[0].Set < before {
		t.Errorf("RequiredRevisions = %+v, %v; want sid/amd64's %s by wbadmin", reqs, err, uuid(4))
	}
	rs, _ = db.Revisions("", sidAmd64)
	if got := queue.Behind(rs, uuid(4)); !reflect.DeepEqual(got, []string{"buildd_b"}) {
		t.Errorf("behind %q, want buildd_b", got)
	}
	if err := db.RequireRevision(sidAmd64, uuid(5), "wbadmin"); err != nil {
		t.Fatal(err)
	}
	report("buildd_b", sidAmd64, held("m", 2), uuid(5))
	if err := db.RequireRevision(sidAmd64, "", "wbadmin"); err != nil {
		t.Fatal(err)
	}
	report("buildd_b", sidAmd64, held("m", 2), "")
	if reqs, err := db.RequiredRevisions(); err != nil || len(reqs) != 0 {
		t.Errorf("after lifting: %+v, %v", reqs, err)
	}
	if pairs, err := db.Pairs(); err != nil || len(pairs) != 0 {
		t.Errorf("Pairs = %v, %v: a report or a requirement makes no queue", pairs, err)
	}
}

// TestRevisionsRefused: a report or a requirement a store must not take
// is refused, naming the input, and changes nothing; a read-only store
// refuses to write.
func TestRevisionsRefused(t *testing.T) {
	spec := storetest.New(t)
	db, err := store.Open(spec, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ReportRevisions("buildd_a", sidAmd64, held("m", 1)); err != nil {
		t.Fatal(err)
	}
	if err := db.RequireRevision(sidAmd64, uuid(1), "wbadmin"); err != nil {
		t.Fatal(err)
	}
	seventeen := held("m", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)
	bad := func(f func(h []queue.HeldRevision)) []queue.HeldRevision {
		h := held("m", 2, 3)
		f(h)
		return h
	}
	for _, tc := range []struct {
		name    string
		builder string
		p       queue.Pair
		held    []queue.HeldRevision
		want    string
	}{
		{"seventeen", "buildd_a", sidAmd64, seventeen, "17 reported, at most 16"},
		{"an upper-case UUID", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[1].UUID = strings.ToUpper(uuid(0xabc)) }), "revision 2: invalid UUID"},
		{"not a UUID", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[0].UUID = "'; DROP TABLE x" }), `invalid UUID "'; DROP TABLE x"`},
		{"a machine name with a slash", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[0].Machine = "../m" }), `invalid machine name "../m"`},
		{"a long revision name", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[1].Revision = strings.Repeat("r", 101) }), "invalid revision name"},
		{"a revision name with a newline", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[1].Revision = "m-1\nm-2" }), `invalid revision name "m-1\nm-2"`},
		{"two current", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[1].Current = true }), "m-3 is current, and so is m-2"},
		{"a UUID twice", "buildd_a", sidAmd64, bad(func(h []queue.HeldRevision) { h[1].UUID = h[0].UUID }), "reported twice"},
		{"a bad builder", "<b>", sidAmd64, held("m", 1), `invalid builder "<b>"`},
		{"a bad distribution", "buildd_a", queue.Pair{Dist: "Sid", Arch: "amd64"}, held("m", 1), `invalid distribution "Sid"`},
		{"no architecture", "buildd_a", queue.Pair{Dist: "sid"}, held("m", 1), `invalid architecture ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.ReportRevisions(tc.builder, tc.p, tc.held); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, uuid, by string
		p              queue.Pair
		want           string
	}{
		{"not a UUID", "x", "wbadmin", sidAmd64, `invalid UUID "x"`},
		{"a bad user", uuid(2), "", sidAmd64, `invalid user ""`},
		{"a bad queue", uuid(2), "wbadmin", queue.Pair{Dist: "sid", Arch: "a/b"}, `invalid architecture "a/b"`},
	} {
		t.Run("require "+tc.name, func(t *testing.T) {
			if err := db.RequireRevision(tc.p, tc.uuid, tc.by); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
	rs, err := db.Revisions("", queue.Pair{})
	if got := lines(rs); err != nil || !reflect.DeepEqual(got, []string{"buildd_a sid/amd64 m-1 current"}) {
		t.Errorf("after the refusals: %q, %v", got, err)
	}
	if reqs, err := db.RequiredRevisions(); err != nil || len(reqs) != 1 || reqs[0].UUID != uuid(1) {
		t.Errorf("after the refusals: %+v, %v", reqs, err)
	}
	db.Close()

	ro, err := store.Open(spec, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.ReportRevisions("buildd_a", sidAmd64, held("m", 2)); !errors.Is(err, queue.ErrReadOnly) {
		t.Errorf("report to a read-only store: %v, want ErrReadOnly", err)
	}
	if err := ro.RequireRevision(sidAmd64, "", "wbadmin"); !errors.Is(err, queue.ErrReadOnly) {
		t.Errorf("requirement in a read-only store: %v, want ErrReadOnly", err)
	}
}

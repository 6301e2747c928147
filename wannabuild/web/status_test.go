package web

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

// listFixture is a queue sid/amd64 of 600 packages with every calprio
// input varied, and returns its wanna_build_db.
func listFixture(t *testing.T) string {
	t.Helper()
	spec := storetest.New(t)
	db := openQueue(t, spec)
	defer db.Close()
	prios := []string{"required", "important", "standard", "optional", "extra", ""}
	sections := []string{"libs", "devel", "contrib/libs", "non-free/devel", "non-free-firmware/kernel", "utils", "a/b/c"}
	notes := []string{"", "uncompiled", "out-of-date", "other"}
	states := []queue.State{queue.NeedsBuild, queue.Installed, queue.Installed, queue.Building, queue.Failed, queue.DepWait}
	err := db.Update("sid", "amd64", func(tx queue.Tx) error {
		for i := 0; i < 600; i++ {
			r := &queue.Record{
				Package: fmt.Sprintf("pkg%03d", i), Version: "1.0-1", State: states[i%len(states)],
				Priority: prios[i%len(prios)], Section: sections[i%len(sections)], Notes: notes[i%len(notes)],
				StateChange: now - int64(i%11)*43200, BuildTime: int64(i%5) * 7200, SuccessTime: int64(i%3) * 20000,
				BuildPri: i%4 - 1, PermBuildPri: i % 3,
			}
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestListPageStore: the store's own page (bbolt from the encoded
// records, PostgreSQL in SQL) is the page made through the Tx, for every
// order, filter and place.
func TestListPageStore(t *testing.T) {
	spec := listFixture(t)
	db, err := store.Open(spec, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, ok := db.(queue.Lister)
	if !ok {
		t.Fatalf("%T is no queue.Lister", db)
	}
	for _, order := range queue.Orders {
		for _, st := range []queue.State{"", queue.NeedsBuild, queue.Installed, queue.NotForUs} {
			for _, off := range []int{0, 7, 250, 599, 700} {
				q := queue.PageQuery{State: st, Order: order, Offset: off, Limit: 250, Now: time.Unix(now, 0)}
				t.Run(fmt.Sprintf("%s/%s/%d", order, st, off), func(t *testing.T) {
					var want *queue.Page
					if err := db.View("sid", "amd64", func(tx queue.Tx) error {
						var err error
						want, err = queue.ListPageOf(tx, q)
						return err
					}); err != nil {
						t.Fatal(err)
					}
					got, err := l.ListPage("sid", "amd64", q)
					if err != nil {
						t.Fatal(err)
					}
					if got.Total != want.Total || len(got.Rows) != len(want.Rows) {
						t.Fatalf("total %d, %d rows; want %d, %d", got.Total, len(got.Rows), want.Total, len(want.Rows))
					}
					for i := range want.Rows {
						g, w := got.Rows[i], want.Rows[i]
						if g.Package != w.Package || g.CalPrio != w.CalPrio || g.Days != w.Days || g.Ahead != w.Ahead {
							t.Fatalf("row %d: %s calprio %d days %d ahead %d; want %s %d %d %d",
								i, g.Package, g.CalPrio, g.Days, g.Ahead, w.Package, w.CalPrio, w.Days, w.Ahead)
						}
						if g.CalPrio != queue.CalPrio(w.Record, q.Now) {
							t.Fatalf("row %d: calprio %d, queue.CalPrio %d", i, g.CalPrio, queue.CalPrio(w.Record, q.Now))
						}
					}
				})
			}
		}
	}
}

// TestPaging: a list is shown in pages of pageSize, with the place and
// the links to the others.
func TestPaging(t *testing.T) {
	ts := newServer(t, listFixture(t))
	for _, tc := range []struct {
		query              string
		code               int
		page, pages, first int
		matching, rows     int
		firstPackage       string
	}{
		{"sort=name", 200, 1, 3, 1, 600, 250, "pkg000"},
		{"sort=name&page=2", 200, 2, 3, 251, 600, 250, "pkg250"},
		{"sort=name&page=3", 200, 3, 3, 501, 600, 100, "pkg500"},
		{"state=needs-build&sort=name", 200, 1, 1, 1, 100, 100, "pkg000"},
		{"state=not-for-us", 200, 1, 1, 0, 0, 0, ""},
		{"sort=name&page=4", 404, 0, 0, 0, 0, 0, ""},
		{"page=0", 400, 0, 0, 0, 0, 0, ""},
		{"page=x", 400, 0, 0, 0, 0, 0, ""},
		{"page=99999999999", 400, 0, 0, 0, 0, 0, ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := get(t, ts, "GET", "/api/dist/sid/amd64?"+tc.query)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %.300s", resp.StatusCode, tc.code, body)
			}
			if tc.code != 200 {
				return
			}
			var p distPage
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatal(err)
			}
			if p.Page != tc.page || p.Pages != tc.pages || p.First != tc.first || p.Matching != tc.matching ||
				len(p.Rows) != tc.rows || p.PageSize != pageSize || p.Total != 600 {
				t.Fatalf("page %d of %d from %d, %d matching, %d rows, size %d, total %d",
					p.Page, p.Pages, p.First, p.Matching, len(p.Rows), p.PageSize, p.Total)
			}
			if tc.rows > 0 && p.Rows[0].Package != tc.firstPackage {
				t.Errorf("first row %s, want %s", p.Rows[0].Package, tc.firstPackage)
			}
		})
	}
	_, body := get(t, ts, "GET", "/dist/sid/amd64?sort=name&page=2")
	for _, w := range []string{"600 package(s), sorted by name; 251–500 shown", "Page 2 of 3:",
		`<a href="?sort=name&amp;page=1">1</a> <b>2</b> <a href="?sort=name&amp;page=3">3</a>`} {
		if !strings.Contains(body, w) {
			t.Errorf("page 2 lacks %q", w)
		}
	}
	if n := strings.Count(body, `<tr class=`); n != 250 {
		t.Errorf("page 2 has %d rows", n)
	}
}

// day is the start of the day d days before now's.
func day(d int) int64 { return (now/86400-int64(d))*86400 + 3600 }

// historyFixture is a queue whose history spans four days: four packages
// merged, taken, built, attempted, given back, re-prioritized and
// renewed, by two builders; and a queue with a hostile name.
func historyFixture(t *testing.T) string {
	t.Helper()
	spec := storetest.New(t)
	db := openQueue(t, spec)
	defer db.Close()
	do := func(user string, at int64, fn func(*queue.Session, queue.Tx) error) {
		t.Helper()
		s := &queue.Session{Dist: "sid", Arch: "amd64", User: user, RealUser: user, Now: time.Unix(at, 0), Lease: 3600}
		if err := db.Update("sid", "amd64", func(tx queue.Tx) error { return fn(s, tx) }); err != nil {
			t.Fatalf("%s at %d: %v", user, at, err)
		}
	}
	apply := func(cmd queue.Command, arg string, n int) func(*queue.Session, queue.Tx) error {
		return func(s *queue.Session, tx queue.Tx) error { return s.Apply(tx, cmd, arg, n) }
	}
	do("root", day(3), func(s *queue.Session, tx queue.Tx) error {
		for _, p := range []string{"p1", "p2", "p3", "p4"} {
			r := &queue.Record{Package: p, Version: "1", State: queue.NeedsBuild, StateChange: day(3)}
			if err := tx.Put(r); err != nil {
				return err
			}
			if err := tx.Log(&queue.Transaction{Package: p, Version: "1", Action: "--merge-v3: needs-build",
				To: queue.NeedsBuild, RealUser: "root", User: "root", Time: day(3)}); err != nil {
				return err
			}
		}
		return nil
	})
	do("buildd_a", day(2), apply(queue.Take, "p1_1", 0))
	do("buildd_a", day(2)+3600, apply(queue.SetBuilt, "p1_1", 0))
	do("buildd_a", day(1), apply(queue.Take, "p2_1", 0))
	do("buildd_a", day(1)+60, apply(queue.SetAttempted, "p2_1", 0))
	do("buildd_b", day(1)+120, apply(queue.Take, "p3_1", 0))
	do("buildd_b", day(1)+180, apply(queue.GiveBack, "p3_1", 0))
	do("root", day(1)+240, apply(queue.BuildPriority, "p3_1", 5)) // no change of state
	do("buildd_b", now-7200, apply(queue.Take, "p4_1", 0))
	do("buildd_b", now-600, func(s *queue.Session, tx queue.Tx) error { return s.Renew(tx, "p4_1") })
	if err := db.Update(`a<b>"&`, "amd64", func(tx queue.Tx) error {
		return tx.Put(&queue.Record{Package: "x", Version: "1", State: queue.NeedsBuild})
	}); err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestDepth: the overview's depth of each queue over the last days,
// counted back from now through the history, as JSON and as an SVG that
// is well-formed XML with the queue's name escaped.
func TestDepth(t *testing.T) {
	ts := newServer(t, historyFixture(t))
	_, body := get(t, ts, "GET", "/api/")
	var o overviewPage
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		`a<b>"&/amd64`: {1, 1, 1, 1},
		"sid/amd64":    {4, 3, 2, 1}, // merged; p1 taken; p2 taken, p3 taken and given back; p4 taken
	}
	for _, p := range o.Pairs {
		d := p.Depth
		if len(d) != depthDays || d[len(d)-1].Day != time.Unix(now, 0).UTC().Format(time.DateOnly) {
			t.Fatalf("%s/%s: %d days, the last %s", p.Dist, p.Arch, len(d), d[len(d)-1].Day)
		}
		var last []int
		for _, pt := range d[len(d)-4:] {
			last = append(last, pt.NeedsBuild)
		}
		if w := want[p.Dist+"/"+p.Arch]; fmt.Sprint(last) != fmt.Sprint(w) {
			t.Errorf("%s/%s: the last 4 days %v, want %v", p.Dist, p.Arch, last, w)
		}
		if p.Dist == "sid" && d[len(d)-5].NeedsBuild != 0 {
			t.Errorf("sid: %d before the merge", d[len(d)-5].NeedsBuild)
		}
	}
	_, page := get(t, ts, "GET", "/")
	svgs := regexp.MustCompile(`(?s)<svg .*?</svg>`).FindAllString(page, -1)
	if len(svgs) != 2 {
		t.Fatalf("%d graphs on the overview, want 2:\n%s", len(svgs), page)
	}
	if strings.Contains(page, `a<b>`) {
		t.Errorf("the overview has the queue's name unescaped")
	}
	for _, s := range svgs {
		var g struct {
			Width    int    `xml:"width,attr"`
			Label    string `xml:"aria-label,attr"`
			Title    string `xml:"title"`
			Polyline struct {
				Points string `xml:"points,attr"`
			} `xml:"polyline"`
		}
		if err := xml.Unmarshal([]byte(s), &g); err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, s)
		}
		if g.Width != graphWidth || g.Title == "" || g.Label != g.Title || len(strings.Fields(g.Polyline.Points)) != depthDays {
			t.Errorf("graph: width %d, title %q, label %q, %d points", g.Width, g.Title, g.Label, len(strings.Fields(g.Polyline.Points)))
		}
		if strings.Contains(g.Title, "a<b>") && !strings.HasPrefix(g.Title, `a<b>"&/amd64: `) {
			t.Errorf("title %q", g.Title)
		}
	}
	if !strings.Contains(svgs[1], "sid/amd64: Needs-Build at the end of each day") || !strings.Contains(svgs[1], "at most 4") {
		t.Errorf("sid's graph:\n%s", svgs[1])
	}
}

// TestLastHeard: a builder is last heard from at its newest transaction
// or lease renewal, whichever is later; the page says since when it
// builds.
func TestLastHeard(t *testing.T) {
	ts := newServer(t, historyFixture(t))
	for _, tc := range []struct {
		builder string
		heard   int64
		ago     string
		since   int64
	}{
		{"buildd_b", now - 600, "10 min", now - 7200}, // renewed after its take
		{"buildd_a", day(1) + 60, ago(now - day(1) - 60), 0},
		{"nobody", 0, "", 0},
	} {
		t.Run(tc.builder, func(t *testing.T) {
			_, body := get(t, ts, "GET", "/api/builder/"+tc.builder)
			var p builderPage
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatal(err)
			}
			if p.LastHeardUnix != tc.heard || p.LastHeardAgo != tc.ago || p.SinceUnix != tc.since {
				t.Errorf("last heard %d (%q ago), since %d; want %d (%q), %d", p.LastHeardUnix, p.LastHeardAgo, p.SinceUnix, tc.heard, tc.ago, tc.since)
			}
			_, html := get(t, ts, "GET", "/builder/"+tc.builder)
			w := "Never heard from."
			if tc.heard != 0 {
				w = "Last heard from " + time.Unix(tc.heard, 0).UTC().Format(queue.TimeFormat) + " (UTC), " + tc.ago + " ago."
			}
			if !strings.Contains(html, w) {
				t.Errorf("page lacks %q", w)
			}
		})
	}
	_, body := get(t, ts, "GET", "/")
	if !strings.Contains(body, `<a href="/builder/buildd_b">buildd_b</a></td><td class="n">1</td><td>`+time.Unix(now-600, 0).UTC().Format(queue.TimeFormat)) {
		t.Errorf("the overview lacks buildd_b's last heard:\n%s", body)
	}
}

// TestMetricsHistory: the builds that ended, by result, and the seconds
// since each builder was heard from.
func TestMetricsHistory(t *testing.T) {
	ts := newServer(t, historyFixture(t))
	_, body := get(t, ts, "GET", "/metrics")
	for _, w := range []string{
		"# TYPE wanna_build_builds_finished_total counter",
		`wanna_build_builds_finished_total{dist="sid",arch="amd64",result="built"} 1`,
		`wanna_build_builds_finished_total{dist="sid",arch="amd64",result="attempted"} 1`,
		`wanna_build_builds_finished_total{dist="sid",arch="amd64",result="given-back"} 1`,
		`wanna_build_builds_finished_total{dist="sid",arch="amd64",result="dep-wait"} 0`,
		`wanna_build_builds_finished_total{dist="sid",arch="amd64",result="failed"} 0`,
		"# TYPE wanna_build_builder_last_heard_seconds gauge",
		fmt.Sprintf(`wanna_build_builder_last_heard_seconds{builder="buildd_a"} %d`, now-day(1)-60),
		`wanna_build_builder_last_heard_seconds{builder="buildd_b"} 600`,
	} {
		if !strings.Contains(body, w+"\n") {
			t.Errorf("metrics lack %q:\n%s", w, body)
		}
	}
	for _, n := range []string{`builder="root"`, `result="bd-uninstallable"`} {
		if strings.Contains(body, n) {
			t.Errorf("metrics have %q", n)
		}
	}
	if !strings.Contains(body, `wanna_build_builds_finished_total{dist="a<b>\"&",arch="amd64",result="built"} 0`) {
		t.Errorf("metrics lack the hostile queue's line, escaped")
	}
}

// TestDigest: a transaction that changes no state (From is the record's
// previous state) does not move the depth; one that leaves Building is a
// finished build.
func TestDigest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		txs      []queue.Transaction
		depth    map[int64]int
		finished map[queue.State]int
	}{
		{"merge then priority", []queue.Transaction{
			{Package: "a", To: queue.NeedsBuild, Time: 86400},
			{Package: "a", From: queue.Installed, To: queue.NeedsBuild, Time: 2 * 86400},
		}, map[int64]int{1: 1}, map[queue.State]int{}},
		{"take, give back, take, built", []queue.Transaction{
			{Package: "a", From: queue.Installed, To: queue.NeedsBuild, Time: 86400},
			{Package: "a", From: queue.NeedsBuild, To: queue.Building, Time: 86400 + 1},
			{Package: "a", From: queue.Building, To: queue.NeedsBuild, Time: 2 * 86400},
			{Package: "a", From: queue.NeedsBuild, To: queue.Building, Time: 3 * 86400},
			{Package: "a", From: queue.Building, To: queue.Built, Time: 3*86400 + 5},
		}, map[int64]int{1: 0, 2: 1, 3: -1}, map[queue.State]int{queue.NeedsBuild: 1, queue.Built: 1}},
		{"deleted while waiting", []queue.Transaction{
			{Package: "a", To: queue.NeedsBuild, Time: 86400},
			{Package: "a", From: queue.NeedsBuild, To: "deleted", Time: 2 * 86400},
			{Package: "b", To: queue.NeedsBuild, Time: 86400},
		}, map[int64]int{1: 2, 2: -1}, map[queue.State]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, e := queue.NewDigest(), queue.NewDigest()
			for i := range tc.txs {
				d.Add(&tc.txs[i])
				data, _ := tc.txs[i].MarshalBinary()
				if err := e.AddEncoded(data); err != nil {
					t.Fatal(err)
				}
			}
			for _, g := range []*queue.Digest{d, e} {
				for day, n := range tc.depth {
					if g.NeedsBuild[day] != n {
						t.Errorf("day %d: %d, want %d (%v)", day, g.NeedsBuild[day], n, g.NeedsBuild)
					}
				}
				if fmt.Sprint(g.Finished) != fmt.Sprint(tc.finished) {
					t.Errorf("finished %v, want %v", g.Finished, tc.finished)
				}
			}
		})
	}
}

// TestDigestFollows: a server that read the history before reads only
// what was logged since (PostgreSQL), and its pages are those of a
// server that reads it all.
func TestDigestFollows(t *testing.T) {
	spec := historyFixture(t)
	clock := func() time.Time { return time.Unix(now, 0) }
	s := &Server{DB: spec, Timeout: 5 * time.Second, Now: clock}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, path := range []string{"/metrics", "/api/"} {
		get(t, ts, "GET", path)
	}
	db := openQueue(t, spec)
	for _, step := range []struct {
		user string
		at   int64
		cmd  queue.Command
	}{{"buildd_c", now - 300, queue.Take}, {"buildd_c", now - 200, queue.SetBuilt}} {
		sess := &queue.Session{Dist: "sid", Arch: "amd64", User: step.user, RealUser: step.user, Now: time.Unix(step.at, 0)}
		if err := db.Update("sid", "amd64", func(tx queue.Tx) error { return sess.Apply(tx, step.cmd, "p3_1", 0) }); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	fresh := httptest.NewServer((&Server{DB: spec, Timeout: 5 * time.Second, Now: clock}).Handler())
	defer fresh.Close()
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/metrics", []string{`result="built"} 2`, `wanna_build_builder_last_heard_seconds{builder="buildd_c"} 200`}},
		{"/api/", []string{`"needs_build": 0`}},
	} {
		_, got := get(t, ts, "GET", tc.path)
		_, want := get(t, fresh, "GET", tc.path)
		if got != want {
			t.Errorf("%s after the changes:\n%s\nwant (read whole):\n%s", tc.path, got, want)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s lacks %q", tc.path, w)
			}
		}
	}
}

// farm is healthFixture's queue: its clock (a minute after the newest
// heartbeat: the store stamps them with its own clock) and the
// heartbeats as the store keeps them, by builder.
type farm struct {
	spec  string
	now   int64
	beats map[string]queue.BuilderStatus
}

// healthFixture is a farm of four queues. sid/amd64: buildd_a (one slot
// of 4 GiB) builds building1; buildd_q is quarantined; its Needs-Build
// packages, in the build order: held (held for the admin), huge (needs
// 10 GiB), backoff (given back, waiting a day), first and second;
// admin-failed was marked Failed by root, builder-failed by buildd_a.
// sid/arm64: its only builder is quarantined. sid/i386: no builder ever
// reported in. sid/armhf: buildd_idle reports in, idle. Each has hello
// in Needs-Build.
func healthFixture(t *testing.T) farm {
	t.Helper()
	f := farm{spec: storetest.New(t), beats: map[string]queue.BuilderStatus{}}
	db := openQueue(t, f.spec)
	defer db.Close()
	gib := int64(1 << 20)
	since := time.Now().Unix() - 7200
	for _, st := range []queue.BuilderStatus{
		{Builder: "buildd_a", Pair: queue.Pair{Dist: "sid", Arch: "amd64"}, Slots: 1, SlotMemory: 4 * gib, Running: 1},
		{Builder: "buildd_q", Pair: queue.Pair{Dist: "sid", Arch: "amd64"}, Slots: 2, SlotMemory: 16 * gib, Quarantined: "disk full\n<b>df</b>", QuarantinedSince: since},
		{Builder: "buildd_arm", Pair: queue.Pair{Dist: "sid", Arch: "arm64"}, Slots: 4, SlotMemory: 8 * gib, Quarantined: "fetch failures", QuarantinedSince: since},
		{Builder: "buildd_idle", Pair: queue.Pair{Dist: "sid", Arch: "armhf"}, Slots: 2, SlotMemory: 2 * gib},
	} {
		if err := db.Heartbeat(st); err != nil {
			t.Fatal(err)
		}
	}
	sts, err := db.Builders(queue.Pair{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		f.beats[st.Builder] = st
		f.now = max(f.now, st.Heard+60)
	}
	T := f.now
	day := int64(86400)
	type pkg struct {
		r      queue.Record
		builds []queue.BuildRecord
	}
	put := func(arch string, pkgs ...pkg) {
		t.Helper()
		err := db.Update("sid", arch, func(tx queue.Tx) error {
			for i := range pkgs {
				p := &pkgs[i]
				p.r.Version = "1-1"
				if p.r.StateChange == 0 {
					p.r.StateChange = T - day
				}
				if err := tx.Put(&p.r); err != nil {
					return err
				}
				for j := range p.builds {
					b := &p.builds[j]
					b.Package, b.Version = p.r.Package, p.r.Version
					if err := tx.AddBuild(b); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ok := func(at, wall, peakKiB int64) queue.BuildRecord {
		return queue.BuildRecord{Builder: "buildd_a", Time: at, Outcome: queue.Successful, Class: queue.ClassOK,
			Resources: queue.Resources{Wall: wall, PeakMemory: peakKiB, CPUTime: wall * 900, Disk: gib, SlotMemory: 4 * gib}}
	}
	hello := pkg{r: queue.Record{Package: "hello", State: queue.NeedsBuild}}
	put("amd64",
		pkg{queue.Record{Package: "building1", State: queue.Building, Builder: "buildd_a", StateChange: T - 300, LeaseUntil: T + 3600},
			[]queue.BuildRecord{ok(T-day, 1800, gib)}},
		pkg{queue.Record{Package: "first", State: queue.NeedsBuild, PermBuildPri: 30}, []queue.BuildRecord{
			{Builder: "buildd_a", Time: T - 2*day, Outcome: queue.Attempted, Class: queue.ClassPackage, Stage: "build",
				Resources: queue.Resources{PeakMemory: 3 * gib / 2, CPUTime: 125000, Disk: 3 * gib, Wall: 400, SlotMemory: 4 * gib}},
			{Builder: "root", Time: T - 2*day + 100, Class: queue.ClassRetry},
			ok(T-day, 600, gib)}},
		pkg{queue.Record{Package: "second", State: queue.NeedsBuild, PermBuildPri: 20}, nil},
		pkg{queue.Record{Package: "held", State: queue.NeedsBuild, PermBuildPri: 50}, []queue.BuildRecord{
			{Builder: "buildd_a", Time: T - 3600, Outcome: queue.GivenBack, Class: queue.ClassInfra, Stage: "fetch", Held: "given back 3 times in a row"}}},
		pkg{queue.Record{Package: "huge", State: queue.NeedsBuild, PermBuildPri: 45}, []queue.BuildRecord{ok(T-day, 3000, 8*gib)}},
		pkg{queue.Record{Package: "backoff", State: queue.NeedsBuild, PermBuildPri: 40}, []queue.BuildRecord{
			{Builder: "buildd_a", Time: T - 600, Outcome: queue.GivenBack, Class: queue.ClassTimeout, Stage: "build", RetryAfter: T + day}}},
		pkg{queue.Record{Package: "admin-failed", State: queue.Failed, Builder: "root", Failed: "FTBFS, see #1234"}, nil},
		pkg{queue.Record{Package: "builder-failed", State: queue.Failed, Builder: "buildd_a", Failed: "compile error"}, nil},
		hello,
	)
	for _, arch := range []string{"arm64", "i386", "armhf"} {
		put(arch, hello)
	}
	return f
}

// serverAt serves spec with the clock at unix time clock.
func serverAt(t *testing.T, spec string, clock int64) *httptest.Server {
	t.Helper()
	s := &Server{DB: spec, Timeout: 5 * time.Second, Now: func() time.Time { return time.Unix(clock, 0) }}
	t.Cleanup(func() { s.Close() })
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// unixUTC is a unix time as the pages write it.
func unixUTC(u int64) string { return time.Unix(u, 0).UTC().Format(queue.TimeFormat) }

// TestFarm (issue "a farm that heals itself"): the kept builds with
// their classes and resources, every builder that reports in (idle,
// quarantined), the admin's marks shown as the admin's, every reason a
// Needs-Build package waits and its estimated start, on the pages and
// in their JSON; and, an hour later, the silent builders.
func TestFarm(t *testing.T) {
	f := healthFixture(t)
	T := f.now
	ts := serverAt(t, f.spec, T)
	a, q, arm, idle := f.beats["buildd_a"], f.beats["buildd_q"], f.beats["buildd_arm"], f.beats["buildd_idle"]
	qSince := unixUTC(q.QuarantinedSince)
	for _, tc := range []struct {
		path string
		want []string // in the body, in this order
		not  []string
	}{
		{"/package/first", []string{
			"<td>Needs-Build</td>", "waiting for a builder (3 in the queue before it; estimated start " + unixUTC(T+1500) + " UTC)",
			"<h2>Builds</h2>",
			"<td>sid</td><td>amd64</td><td>" + unixUTC(T-86400) + `</td><td>1-1</td><td><a href="/builder/buildd_a">buildd_a</a></td><td>successful</td><td>ok</td><td></td>`,
			`<td class="n">1.0 GiB</td><td class="n">9 min</td><td class="n">1.0 GiB</td><td class="n">10 min</td>`,
			"<td>" + unixUTC(T-2*86400+100) + "</td><td>1-1</td><td>marked by the admin root</td><td></td><td>retry</td>",
			"<td>" + unixUTC(T-2*86400) + `</td><td>1-1</td><td><a href="/builder/buildd_a">buildd_a</a></td><td>attempted</td><td>package</td><td>build</td>`,
			`<td class="n">1.5 GiB</td><td class="n">2 min</td><td class="n">3.0 GiB</td><td class="n">6 min</td>`,
		}, []string{`href="/builder/root"`}},
		{"/api/package/first", []string{`"why": "waiting for a builder (3 in the queue before it; estimated start ` + unixUTC(T+1500) + ` UTC)"`,
			`"expected_duration_s": 600`, `"expected_duration_from": "its last build"`, `"estimated_start_unix": ` + strconv.FormatInt(T+1500, 10),
			`"builds": [`, `"class": "ok"`, `"wall_s": 600`, `"builder": "root"`, `"by_admin": true`, `"class": "retry"`,
			`"outcome": "attempted"`, `"class": "package"`, `"stage": "build"`, `"peak_memory_kib": 1572864`, `"cpu_ms": 125000`, `"disk_kib": 3145728`, `"wall_s": 400`, `"slot_memory_kib": 4194304`}, nil},
		{"/package/second", []string{"waiting for a builder (4 in the queue before it; estimated start " + unixUTC(T+2100) + " UTC)", "No ended build kept."}, nil},
		{"/api/package/second", []string{`"expected_duration_s": 1800`, `"expected_duration_from": "the queue's median"`, `"builds": []`}, nil},
		{"/package/held", []string{"held for the admin (wanna-build --retry): given back 3 times in a row", "<td>given-back</td><td>infrastructure</td><td>fetch</td>",
			"held for the admin: given back 3 times in a row"}, nil},
		{"/package/backoff", []string{"in backoff until " + unixUTC(T+86400) + " UTC (given back timeout by buildd_a)", "not taken again before " + unixUTC(T+86400)}, nil},
		{"/api/package/backoff", []string{`"why": "in backoff until ` + unixUTC(T+86400) + ` UTC (given back timeout by buildd_a)"`, `"retry_after": "` + unixUTC(T+86400) + `"`, `"retry_after_unix": ` + strconv.FormatInt(T+86400, 10)}, nil},
		{"/package/huge", []string{"too big for every live builder of sid/amd64: it needs 10.0 GiB, the largest slot has 4.0 GiB"}, nil},
		{"/package/hello", []string{
			`/dist/sid/amd64">amd64</a>`, "waiting for a builder (5 in the queue before it; estimated start " + unixUTC(T+2100+1800) + " UTC)",
			`/dist/sid/arm64">arm64</a>`, "every builder of sid/arm64 is quarantined: buildd_arm since " + unixUTC(arm.QuarantinedSince) + ": fetch failures",
			`/dist/sid/armhf">armhf</a>`, "waiting for a builder (0 in the queue before it; estimated start " + unixUTC(T) + " UTC)",
			`/dist/sid/i386">i386</a>`, "no builder of sid/i386 ever reported in"}, nil},
		{"/api/package/hello", []string{`"why": "every builder of sid/arm64 is quarantined: buildd_arm since `, `"why": "no builder of sid/i386 ever reported in"`}, nil},
		{"/package/admin-failed", []string{"<td>Failed</td>", "<td>marked by the admin root</td>", "failed: FTBFS, see #1234"}, []string{`href="/builder/root"`}},
		{"/api/package/admin-failed", []string{`"builder": "root"`, `"by_admin": true`}, nil},
		{"/package/builder-failed", []string{`<td><a href="/builder/buildd_a">buildd_a</a></td>`}, []string{"marked by the admin"}},
		{"/package/building1", []string{`<a href="/builder/buildd_a">buildd_a</a>`, "being built by buildd_a since " + unixUTC(T-300)}, []string{"marked by the admin"}},
		{"/dist/sid/amd64?sort=name", []string{
			"<th>expected duration</th>",
			`<a href="/package/admin-failed">admin-failed</a></td><td>1-1</td><td>Failed</td><td>marked by the admin root</td>`,
			`<a href="/package/backoff">backoff</a>`, "<td>30 min (the queue&#39;s median)</td><td>in backoff until ",
			`<a href="/package/builder-failed">builder-failed</a></td><td>1-1</td><td>Failed</td><td><a href="/builder/buildd_a">buildd_a</a></td>`,
			`<a href="/package/first">first</a>`, "<td>10 min (its last build)</td><td>waiting for a builder (3 in the queue before it; estimated start " + unixUTC(T+1500) + " UTC)</td>",
			`<a href="/package/huge">huge</a>`, "<td>50 min (its last build)</td><td>too big for every live builder"}, []string{`href="/builder/root"`}},
		{"/api/dist/sid/amd64?sort=name", []string{`"package": "admin-failed"`, `"by_admin": true`, `"package": "first"`, `"expected_duration_s": 600`, `"expected_duration_from": "its last build"`}, nil},
		{"/builders", []string{"<h1>Builders</h1>", "4 heartbeat(s): 0 silent (unheard for more than 10 min), 2 quarantined.",
			`<td><a href="/builder/buildd_a">buildd_a</a></td><td>sid</td><td><a href="/dist/sid/amd64">amd64</a></td><td class="n">1</td><td class="n">4.0 GiB</td><td class="n">1</td>`,
			"<td>" + unixUTC(a.Heard) + " (" + ago(T-a.Heard) + " ago)</td><td>taking packages</td>",
			`<a href="/builder/buildd_q">buildd_q</a>`, "<td>quarantined since " + qSince + "<pre>disk full\n&lt;b&gt;df&lt;/b&gt;</pre></td>",
			`<a href="/builder/buildd_arm">buildd_arm</a>`, "quarantined since " + unixUTC(arm.QuarantinedSince),
			`<td><a href="/builder/buildd_idle">buildd_idle</a></td><td>sid</td><td><a href="/dist/sid/armhf">armhf</a></td><td class="n">2</td><td class="n">2.0 GiB</td><td class="n">0</td>`,
			"<td>" + unixUTC(idle.Heard) + " (" + ago(T-idle.Heard) + " ago)</td><td>taking packages</td>"}, []string{"<b>df"}},
		{"/api/builders", []string{`"builder": "buildd_a"`, `"slots": 1`, `"slot_memory_kib": 4194304`, `"running": 1`, `"silent": false`,
			`"builder": "buildd_q"`, `"quarantined": "disk full\n\u003cb\u003edf\u003c/b\u003e"`, `"quarantined_since_unix": ` + strconv.FormatInt(q.QuarantinedSince, 10),
			`"builder": "buildd_idle"`, `"last_heard_unix": ` + strconv.FormatInt(idle.Heard, 10), `"silent": 0`, `"quarantined": 2`}, nil},
		{"/builder/buildd_idle", []string{"<h1>buildd_idle</h1>", "Last heard from " + unixUTC(idle.Heard) + " (UTC)", "Building nothing.", "<h2>Heartbeats</h2>",
			`<a href="/dist/sid/armhf">armhf</a></td><td class="n">2</td>`, "taking packages"}, []string{"Never reported in."}},
		{"/api/builder/buildd_q", []string{`"queues": [`, `"last_heard_unix": ` + strconv.FormatInt(q.Heard, 10), `"quarantined": "disk full`}, nil},
		{"/builder/root", []string{"Never heard from.", "Never reported in."}, nil},
		{"/", []string{
			`<a href="/builder/buildd_a">buildd_a</a></td><td class="n">1</td><td>` + unixUTC(a.Heard) + `</td><td class="n">1</td><td>taking packages</td>`,
			`<a href="/builder/buildd_idle">buildd_idle</a></td><td class="n">0</td><td>` + unixUTC(idle.Heard) + `</td><td class="n">2</td><td>taking packages</td>`,
			`<a href="/builder/buildd_q">buildd_q</a></td><td class="n">0</td>`, "<td>quarantined in sid/amd64</td>", `<a href="/builders">`}, nil},
		{"/api/", []string{`"builder": "buildd_idle"`, `"building": 0`, `"reports_in": true`, `"slots": 2`, `"quarantined_in": [`}, nil},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, ts, "GET", tc.path)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; body:\n%.2000s", resp.StatusCode, body)
			}
			checkBody(t, body, tc.want, tc.not)
		})
	}

	// An hour later nobody was heard: every builder is silent.
	later := serverAt(t, f.spec, T+3600)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/package/second", []string{"no live builder of sid/amd64 since " + unixUTC(a.Heard) + " UTC (the last heard, " + ago(T+3600-a.Heard) +
			" ago); quarantined: buildd_q since " + qSince + ": disk full"}},
		{"/package/hello", []string{"no live builder of sid/armhf since " + unixUTC(idle.Heard) + " UTC"}},
		{"/builders", []string{"4 heartbeat(s): 4 silent (unheard for more than 10 min), 2 quarantined.", "<td>silent</td>",
			"quarantined since " + qSince + ", and silent"}},
		{"/api/builders", []string{`"silent": true`}},
		{"/", []string{`<a href="/builder/buildd_idle">buildd_idle</a></td><td class="n">0</td><td>` + unixUTC(idle.Heard) + `</td><td class="n">2</td><td>silent</td>`}},
	} {
		t.Run("later "+tc.path, func(t *testing.T) {
			_, body := get(t, later, "GET", tc.path)
			checkBody(t, body, tc.want, nil)
		})
	}
}

// TestMetricsFarm: the kept builds by class, and each builder's
// heartbeat, as metrics.
func TestMetricsFarm(t *testing.T) {
	f := healthFixture(t)
	ts := serverAt(t, f.spec, f.now)
	_, body := get(t, ts, "GET", "/metrics")
	a, idle := f.beats["buildd_a"], f.beats["buildd_idle"]
	for _, w := range []string{
		"# TYPE wanna_build_builds_kept gauge",
		`wanna_build_builds_kept{dist="sid",arch="amd64",class="ok"} 3`,
		`wanna_build_builds_kept{dist="sid",arch="amd64",class="package"} 1`,
		`wanna_build_builds_kept{dist="sid",arch="amd64",class="deps"} 0`,
		`wanna_build_builds_kept{dist="sid",arch="amd64",class="timeout"} 1`,
		`wanna_build_builds_kept{dist="sid",arch="amd64",class="oom"} 0`,
		`wanna_build_builds_kept{dist="sid",arch="amd64",class="infrastructure"} 1`,
		`wanna_build_builds_kept{dist="sid",arch="i386",class="ok"} 0`,
		"# TYPE wanna_build_builder_slots gauge",
		`wanna_build_builder_slots{builder="buildd_a",dist="sid",arch="amd64"} 1`,
		`wanna_build_builder_slots{builder="buildd_idle",dist="sid",arch="armhf"} 2`,
		`wanna_build_builder_running{builder="buildd_a",dist="sid",arch="amd64"} 1`,
		`wanna_build_builder_running{builder="buildd_idle",dist="sid",arch="armhf"} 0`,
		`wanna_build_builder_quarantined{builder="buildd_a",dist="sid",arch="amd64"} 0`,
		`wanna_build_builder_quarantined{builder="buildd_q",dist="sid",arch="amd64"} 1`,
		`wanna_build_builder_quarantined{builder="buildd_arm",dist="sid",arch="arm64"} 1`,
		fmt.Sprintf(`wanna_build_builder_heard_timestamp_seconds{builder="buildd_a",dist="sid",arch="amd64"} %d`, a.Heard),
		fmt.Sprintf(`wanna_build_builder_heard_timestamp_seconds{builder="buildd_idle",dist="sid",arch="armhf"} %d`, idle.Heard),
		fmt.Sprintf(`wanna_build_builder_last_heard_seconds{builder="buildd_idle"} %d`, f.now-idle.Heard),
		`wanna_build_packages{dist="sid",arch="amd64",state="Needs-Build"} 6`,
	} {
		if !strings.Contains(body, w+"\n") {
			t.Errorf("metrics lack %q:\n%s", w, body)
		}
	}
	if strings.Contains(body, `class="retry"`) {
		t.Errorf("metrics count the admin's retries as builds")
	}
}

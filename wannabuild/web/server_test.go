package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/bolt"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

const now = 1795000000 // 2026-11-18

// hostileFailure is a failure message from outside: markup, quotes,
// control bytes and 1 MB. PostgreSQL's text cannot hold a NUL byte, so
// there the message has none (the write would fail).
func hostileFailure() string {
	nul := "\x00"
	if storetest.Postgres() {
		nul = ""
	}
	return "<script>alert(\"x\")</script> 'q' \x1b[31m" + nul + "\x07\n" + strings.Repeat("<b>x</b>", 1<<17)
}

// hostileShown is how the pages show the first line of hostileFailure.
func hostileShown() string {
	if storetest.Postgres() {
		return `<script>alert("x")</script> 'q' \x1b[31m\x07`
	}
	return `<script>alert("x")</script> 'q' \x1b[31m\x00\x07`
}

// openQueue opens the queue spec for writing; the caller closes it.
func openQueue(t testing.TB, spec string) queue.Store {
	t.Helper()
	db, err := store.Open(spec, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// checkBody fails t unless body holds every string of want, in that
// order, and none of not.
func checkBody(t *testing.T, body string, want, not []string) {
	t.Helper()
	rest := body
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("body lacks %q (after the earlier ones):\n%.3000s", w, body)
		}
		rest = rest[i+len(w):]
	}
	for _, n := range not {
		if strings.Contains(body, n) {
			t.Errorf("body has %q", n)
		}
	}
}

// fixture makes a queue of three (dist, arch) with a package in every
// interesting state and a hostile one, and returns its wanna_build_db.
func fixture(t *testing.T) string {
	t.Helper()
	spec := storetest.New(t)
	db := openQueue(t, spec)
	defer db.Close()
	day := int64(86400)
	put := func(dist, arch string, recs ...queue.Record) {
		t.Helper()
		err := db.Update(dist, arch, func(tx queue.Tx) error {
			for i := range recs {
				if err := tx.Put(&recs[i]); err != nil {
					return err
				}
				if err := tx.Log(&queue.Transaction{Package: recs[i].Package, Version: recs[i].Version,
					Action: "--merge-v3: needs-build", To: queue.NeedsBuild, RealUser: "root", User: "root", Time: now - 3*day}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("sid", "amd64",
		queue.Record{Package: "hello", Version: "2.10-3", State: queue.NeedsBuild, Section: "devel", Priority: "optional", StateChange: now - 2*day},
		queue.Record{Package: "aaa", Version: "1.0-1", State: queue.NeedsBuild, Section: "libs", Priority: "required", StateChange: now - day},
		queue.Record{Package: "gcc", Version: "13-1", State: queue.Building, Builder: "buildd_amd64", StateChange: now - 3600, LeaseUntil: now + 3600},
		queue.Record{Package: "zlib", Version: "1.3-1", State: queue.Installed, StateChange: now - 9*day},
		queue.Record{Package: "broken", Version: "1-1", State: queue.Failed, Failed: "compile error\nmore", StateChange: now - day},
		queue.Record{Package: "waiter", Version: "1-1", State: queue.DepWait, Depends: "libfoo (>= 2)", StateChange: now - day},
		queue.Record{Package: "evil", Version: "1<script>", State: queue.Failed, Builder: `b"<i>`, Notes: "<b>n</b>", Failed: hostileFailure(), StateChange: now - day},
	)
	put("sid", "arm64",
		queue.Record{Package: "hello", Version: "2.10-3", State: queue.BDUninstallable, BDProblem: "libbar is not installable", StateChange: now - day},
		queue.Record{Package: "gcc", Version: "13-1", State: queue.Building, Builder: "buildd_arm64", StateChange: now - 7200},
	)
	put("bookworm", "amd64",
		queue.Record{Package: "hello", Version: "2.10-2", State: queue.Installed, StateChange: now - 100*day},
	)
	// buildd_amd64's machine is behind the revision sid/amd64 requires.
	for _, r := range []struct {
		builder string
		p       queue.Pair
		held    []queue.HeldRevision
	}{
		{"buildd_amd64", queue.Pair{Dist: "sid", Arch: "amd64"}, []queue.HeldRevision{
			{Machine: "sid-amd64", Revision: "sid-amd64-2", UUID: revUUID(2)}, {Machine: "sid-amd64", Revision: "sid-amd64-3", UUID: revUUID(3), Current: true}}},
		{"buildd_arm64", queue.Pair{Dist: "sid", Arch: "arm64"}, []queue.HeldRevision{{Machine: "sid-arm64", Revision: "sid-arm64-1", UUID: revUUID(1), Current: true}}},
	} {
		if _, err := db.ReportRevisions(r.builder, r.p, r.held); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RequireRevision(queue.Pair{Dist: "sid", Arch: "amd64"}, revUUID(4), "wbadmin"); err != nil {
		t.Fatal(err)
	}
	return spec
}

// revUUID is the test's UUID number n.
func revUUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

func newServer(t *testing.T, spec string) *httptest.Server {
	t.Helper()
	s := &Server{DB: spec, Timeout: 5 * time.Second, Now: func() time.Time { return time.Unix(now, 0) }}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, ts *httptest.Server, method, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader("ignored body"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestPages: every page and its JSON, and the answers to bad requests.
func TestPages(t *testing.T) {
	ts := newServer(t, fixture(t))
	for _, tc := range []struct {
		method, path string
		code         int
		want         []string // in the body, in this order
		not          []string
	}{
		{"GET", "/", 200, []string{"<table>", "<th>Needs-Build</th>", "bookworm", "sid", `href="/dist/sid/amd64?state=Needs-Build">2</a>`, `href="/builder/buildd_amd64"`}, nil},
		{"HEAD", "/", 200, nil, []string{"<table>"}},
		{"GET", "/api/", 200, []string{`"states"`, `"dist": "bookworm"`, `"Needs-Build": 2`, `"builder": "buildd_amd64"`}, nil},
		{"GET", "/package/hello", 200, []string{
			"<h1>hello</h1>",
			"bookworm", "built and in the archive",
			"sid", "amd64", "2.10-3", "Needs-Build", "2026 Nov 16", "no builder of sid/amd64 ever reported in",
			"arm64", "BD-Uninstallable", "build-dependencies not installable: libbar is not installable",
			"History", "--merge-v3: needs-build"}, nil},
		{"GET", "/api/package/hello", 200, []string{`"package": "hello"`, `"why": "built and in the archive"`, `"bd_problem": "libbar is not installable"`, `"history"`}, nil},
		{"GET", "/package/gcc", 200, []string{"being built by buildd_amd64 since 2026 Nov 18", "being built by buildd_arm64"}, nil},
		{"GET", "/package/waiter", 200, []string{"waiting for libfoo (&gt;= 2)"}, nil},
		{"GET", "/package/nosuch", 404, []string{"404 Not Found", "no package nosuch"}, nil},
		{"GET", "/api/package/nosuch", 404, []string{`"code": 404`, `"error": "no package nosuch in the queue"`}, nil},
		{"GET", "/package/Bad_Name", 400, []string{"invalid package name"}, nil},
		{"GET", "/package/a", 400, []string{"invalid package name"}, nil},
		{"GET", "/api/package/%3Cscript%3E", 400, []string{`\u003cscript\u003e`}, []string{"<script>"}},
		{"GET", "/dist/sid/amd64", 200, []string{"<h1>sid/amd64</h1>", "7 package(s), sorted by prio", "aaa", "10 min (the default)", "no builder of sid/amd64 ever reported in", "hello", "no builder of sid/amd64 ever reported in", "failed: compile error",
			`<td>marked by the admin b&#34;&lt;i&gt;</td>`}, nil},
		{"GET", "/dist/sid/amd64?state=needs-build", 200, []string{"In Needs-Build: 2 package(s)", "aaa", "hello"}, []string{"zlib"}},
		{"GET", "/api/dist/sid/amd64?sort=name", 200, []string{`"package": "aaa"`, `"package": "broken"`, `"package": "evil"`, `"package": "gcc"`, `"package": "hello"`, `"package": "waiter"`, `"package": "zlib"`}, nil},
		{"GET", "/api/dist/sid/amd64?sort=since", 200, []string{`"package": "zlib"`, `"package": "hello"`, `"package": "aaa"`, `"package": "gcc"`}, nil},
		{"GET", "/api/dist/sid/amd64?sort=state", 200, []string{`"package": "aaa"`, `"package": "hello"`, `"package": "gcc"`, `"package": "zlib"`, `"package": "waiter"`, `"package": "broken"`}, nil},
		{"GET", "/dist/sid/amd64?sort=bogus", 400, []string{"invalid sort"}, nil},
		{"GET", "/dist/sid/amd64?state=bogus", 400, []string{"invalid state"}, nil},
		{"GET", "/dist/sid/mips", 404, []string{"no queue sid/mips"}, nil},
		{"GET", "/dist/SID/amd64", 400, []string{"invalid distribution name"}, nil},
		{"GET", "/builder/buildd_amd64", 200, []string{"<h1>buildd_amd64</h1>", "gcc", "13-1", "2026 Nov 18"}, []string{"buildd_arm64"}},
		{"GET", "/api/builder/buildd_arm64", 200, []string{`"builder": "buildd_arm64"`, `"dist": "sid"`, `"arch": "arm64"`, `"package": "gcc"`}, nil},
		{"GET", "/builder/nobody", 200, []string{"Building nothing.", "No revisions of its build machines reported."}, nil},
		{"GET", "/builder/buildd_amd64", 200, []string{"<h2>Build machines</h2>",
			"<strong>Takes nothing from sid/amd64 until it has revision " + revUUID(4) + "</strong>: its machine is on revision sid-amd64-3 (" + revUUID(3) + ").",
			"<td>sid-amd64</td><td>sid-amd64-3</td><td>" + revUUID(3) + "</td><td>yes</td><td></td><td>",
			"<td>sid-amd64</td><td>sid-amd64-2</td><td>" + revUUID(2) + "</td><td></td><td></td><td>"}, nil},
		{"GET", "/builder/buildd_arm64", 200, []string{"<td>sid-arm64</td><td>sid-arm64-1</td><td>" + revUUID(1) + "</td><td>yes</td><td></td><td>"}, []string{"Takes nothing"}},
		{"GET", "/api/builder/buildd_amd64", 200, []string{`"machines": [`, `"dist": "sid"`, `"arch": "amd64"`, `"required": "` + revUUID(4) + `"`, `"behind": true`,
			`"current": "sid-amd64-3"`, `"current_uuid": "` + revUUID(3) + `"`, `"revision": "sid-amd64-3"`, `"current": true`, `"reported_unix": `}, nil},
		{"GET", "/api/builder/nobody", 200, []string{`"machines": []`}, nil},
		{"GET", "/dist/sid/amd64", 200, []string{"<h1>sid/amd64</h1>",
			`<p>Requires build machine revision ` + revUUID(4) + `; behind, taking nothing from it until their machine is on it: <a href="/builder/buildd_amd64">buildd_amd64</a>.</p>`}, nil},
		{"GET", "/api/dist/sid/amd64", 200, []string{`"required_revision": "` + revUUID(4) + `"`, `"behind": [`, `"buildd_amd64"`}, nil},
		{"GET", "/dist/sid/arm64", 200, []string{"<h1>sid/arm64</h1>"}, []string{"Requires build machine revision"}},
		{"GET", "/builder/b%22%3Ci%3E", 400, []string{"invalid builder name"}, []string{"<i>"}},
		{"GET", "/metrics", 200, []string{
			"# TYPE wanna_build_packages gauge",
			`wanna_build_packages{dist="bookworm",arch="amd64",state="Installed"} 1`,
			`wanna_build_packages{dist="sid",arch="amd64",state="Needs-Build"} 2`,
			`wanna_build_packages{dist="sid",arch="amd64",state="Failed"} 2`,
			`wanna_build_packages{dist="sid",arch="arm64",state="Needs-Build"} 0`}, nil},
		{"GET", "/nosuch", 404, []string{"no such page"}, nil},
		{"GET", "/api/nosuch", 404, []string{`"code": 404`}, nil},
		{"POST", "/", 405, nil, nil},
		{"PUT", "/api/package/hello", 405, nil, nil},
		{"DELETE", "/package/hello", 405, nil, nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := get(t, ts, tc.method, tc.path)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d; body:\n%.2000s", resp.StatusCode, tc.code, body)
			}
			if tc.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("405 without Allow: GET, HEAD")
			}
			checkBody(t, body, tc.want, tc.not)
			ct := resp.Header.Get("Content-Type")
			switch {
			case tc.path == "/metrics":
				if !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
					t.Errorf("Content-Type %q", ct)
				}
			case tc.code == 405:
			case strings.HasPrefix(tc.path, "/api/"):
				var v map[string]any
				if ct != "application/json" || json.Unmarshal([]byte(body), &v) != nil {
					t.Errorf("Content-Type %q, want JSON; body %.200q", ct, body)
				}
			default:
				if ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type %q, want HTML", ct)
				}
			}
		})
	}
}

// TestHostileData: markup, quotes and control bytes from the queue are
// escaped, and a 1 MB failure message is cut, on the pages and in JSON.
func TestHostileData(t *testing.T) {
	ts := newServer(t, fixture(t))
	for _, path := range []string{"/package/evil", "/api/package/evil", "/dist/sid/amd64", "/api/dist/sid/amd64"} {
		t.Run(path, func(t *testing.T) {
			resp, body := get(t, ts, "GET", path)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, bad := range []string{"<script>", "<b>", "<i>", "\x1b", "\x00", "\x07"} {
				if strings.Contains(body, bad) {
					t.Errorf("body has %q", bad)
				}
			}
			// JSON writes a character of markup in 6 bytes (\u003c).
			if len(body) > 6*maxText+16<<10 {
				t.Errorf("body is %d bytes, want the failure cut to 64 KiB", len(body))
			}
			if strings.HasPrefix(path, "/package/") {
				for _, w := range []string{template.HTMLEscapeString(hostileShown()), "more bytes not shown", "1&lt;script&gt;"} {
					if !strings.Contains(body, w) {
						t.Errorf("body lacks %q", w)
					}
				}
			}
			if strings.HasPrefix(path, "/api/package/") {
				var p packagePage
				if err := json.Unmarshal([]byte(body), &p); err != nil {
					t.Fatal(err)
				}
				f := p.Cells[0].Failed
				if !strings.HasPrefix(f, hostileShown()) || len(f) > maxText+100 {
					t.Errorf("failed: %d bytes, %.80q", len(f), f)
				}
			}
		})
	}
}

// TestLockNotHeld: between requests a bbolt writer gets the lock at once.
func TestLockNotHeld(t *testing.T) {
	if storetest.Postgres() {
		t.Skip("SKIPPED on PostgreSQL: this test is about the bbolt file's lock; the bbolt pass runs it")
	}
	spec := fixture(t)
	ts := newServer(t, spec)
	for _, path := range []string{"/", "/package/hello", "/dist/sid/amd64", "/builder/buildd_amd64", "/metrics", "/package/nosuch"} {
		get(t, ts, "GET", path)
		db, err := bolt.Open(spec, bolt.Options{Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("after %s: %v", path, err)
		}
		err = db.Update("sid", "amd64", func(tx queue.Tx) error {
			return tx.Put(&queue.Record{Package: "new", Version: "1", State: queue.NeedsBuild})
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The writes are seen by the next request.
	if _, body := get(t, ts, "GET", "/package/new"); !strings.Contains(body, "no builder of sid/amd64 ever reported in") {
		t.Errorf("/package/new:\n%.1000s", body)
	}
}

// TestLocked: a request while a writer holds the lock past the timeout
// is a 503 naming the reason.
func TestLocked(t *testing.T) {
	if storetest.Postgres() {
		t.Skip("SKIPPED on PostgreSQL: this test is about the bbolt file's lock; the bbolt pass runs it")
	}
	spec := fixture(t)
	s := &Server{DB: spec, Timeout: 100 * time.Millisecond, Log: discard}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	db, err := bolt.Open(spec, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	resp, body := get(t, ts, "GET", "/api/")
	if resp.StatusCode != 503 || !strings.Contains(body, "locked") {
		t.Errorf("status %d, body %s; want 503 and the lock", resp.StatusCode, body)
	}
}

// TestInvisibleShown: bidi controls and invisible characters in the
// queue's texts (a failure message, notes, a history line) reach the
// package page, the list and their JSON as escapes, never as
// themselves, so they cannot reorder or hide what the page shows.
func TestInvisibleShown(t *testing.T) {
	spec := fixture(t)
	db := openQueue(t, spec)
	err := db.Update("sid", "amd64", func(tx queue.Tx) error {
		if err := tx.Put(&queue.Record{Package: "rlo", Version: "1-1", State: queue.Failed, StateChange: now - 3600,
			Failed: "error in \u202e)cod.exe(\u202c, see \u2066log\u2069\u200b\ufeff\nline\u2028two", Notes: "\u200f<b>"}); err != nil {
			return err
		}
		return tx.Log(&queue.Transaction{Package: "rlo", Version: "1-1", Action: "--failed \u061c\u200e\u200d", From: queue.Building,
			To: queue.Failed, RealUser: "root", User: "root", Time: now - 3600})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, spec)
	// The escapes as a page shows them; JSON writes the backslash twice.
	failed := `error in \u202e)cod.exe(\u202c, see \u2066log\u2069\u200b\ufeff`
	for _, tc := range []struct {
		path string
		want []string // in the body, in this order
	}{
		{"/package/rlo", []string{`\u200f&lt;b&gt;`, "failed: " + failed, "<pre>" + failed + "\nline\\u2028two</pre>", `--failed \u061c\u200e\u200d`}},
		{"/api/package/rlo", []string{`"notes": "\\u200f\u003cb\u003e"`, `"failed": "` + strings.ReplaceAll(failed, `\`, `\\`) + `\nline\\u2028two"`,
			`"why": "failed: ` + strings.ReplaceAll(failed, `\`, `\\`) + `"`, `"action": "--failed \\u061c\\u200e\\u200d"`}},
		{"/dist/sid/amd64?state=failed", []string{`\u200f&lt;b&gt;`, "failed: " + failed}},
		{"/api/dist/sid/amd64?state=failed", []string{`"notes": "\\u200f\u003cb\u003e"`}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, ts, "GET", tc.path)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; body:\n%.2000s", resp.StatusCode, body)
			}
			checkBody(t, body, tc.want, nil)
			if i := strings.IndexFunc(body, escaped); i >= 0 {
				t.Errorf("body has %U at %d: %.80q", []rune(body[i:])[0], i, body[max(0, i-40):])
			}
		})
	}
}

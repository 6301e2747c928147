package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"buildd/internal/debiandata"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
	"buildd/wannabuild/cli"
	"buildd/wannabuild/web"
)

// screenshotFile makes TestBrowser write a PNG of hello's package page, the
// README's picture:
//
//	go test ./wannabuild/web -run TestBrowser -screenshot docs/package-page.png
var screenshotFile = flag.String("screenshot", "", "TestBrowser writes a PNG of the package page of hello to this file (a relative path is taken from the repository's root)")

// The clock of the browser's queue: the merge at browserStart, each of
// browserSteps an hour after the one before, and the pages read an hour
// after the last.
const browserStart = 1795000000 // 2026 Nov 18

func stepTime(i int) int64 { return browserStart + int64(i+1)*3600 }

var readTime = stepTime(len(browserSteps))

// stepAt is when browserSteps[i] ran, as the pages write times.
func stepAt(i int) string { return time.Unix(stepTime(i), 0).UTC().Format(queue.TimeFormat) }

// hostileFailure is the reason hello failed on amd64: markup, an event
// handler and quotes, which the pages must show as text, running nothing.
const hostileFailure = `dpkg-buildpackage: error: <script>alert(1)</script> "double" 'single' & <img src=x onerror=alert(2)>` + "\n" +
	"make[1]: *** [debian/rules:12: override_dh_auto_test] Error 1"

// browserSteps are the state changes after the merge: wanna-build on
// bookworm ARCH as USER ("" is the admin, the default user).
var browserSteps = []struct {
	arch, user string
	args       []string
}{
	{"amd64", "", []string{"--binNMU=1", "-m", "Rebuild against libc6 2.36", "hello_2.10-3", "grep_3.8-5", "pv_1.6.20-1", "ncdu_1.18-0.2"}},
	{"arm64", "", []string{"--binNMU=1", "-m", "Rebuild against libc6 2.36", "hello_2.10-3", "tree_2.1.0-1"}},
	{"amd64", "buildd-amd64", []string{"--take", "hello_2.10-3", "grep_3.8-5", "pv_1.6.20-1", "ncdu_1.18-0.2"}},
	{"arm64", "buildd-arm64", []string{"--take", "hello_2.10-3", "tree_2.1.0-1"}},
	{"amd64", "buildd-amd64", []string{"--built", "grep_3.8-5"}},
	{"amd64", "buildd-amd64", []string{"--give-back", "pv_1.6.20-1"}},
	{"arm64", "buildd-arm64", []string{"--dep-wait", "-m", "libfoo-dev (>= 2.1), libbar-dev", "tree_2.1.0-1"}},
	{"amd64", "buildd-amd64", []string{"--attempted", "hello_2.10-3"}},
	{"amd64", "buildd-amd64", []string{"--failed", "-m", hostileFailure, "hello_2.10-3"}},
}

// wannaBuild runs wanna-build on bookworm ARCH as user ("" is the
// default) and returns its output; an exit status other than 0 or
// anything on stderr fails t. (Some refusals go to stdout: the pages'
// checks find what they left undone.)
func wannaBuild(t *testing.T, db, arch, user string, args ...string) string {
	t.Helper()
	all := []string{"--db", db, "--dist=bookworm", "--arch=" + arch}
	if user != "" {
		all = append(all, "-U", user)
	}
	all = append(all, args...)
	var out, errb bytes.Buffer
	if code := cli.Main(all, strings.NewReader(""), &out, &errb); code != 0 || errb.Len() > 0 {
		t.Fatalf("wanna-build %s: exit %d: %s", strings.Join(all, " "), code, errb.String())
	}
	return out.String()
}

// listedRE is a package's line in --list: SECTION/PKG_VERSION, then
// ": STATE..." or " [...]"; the other lines are failure reasons and totals.
var listedRE = regexp.MustCompile(`^\S*/([a-z0-9][a-z0-9+.-]*)_\S+?(?:: | \[)`)

// listed is wanna-build's --list=STATE on bookworm ARCH: the packages'
// names in its order, and its total.
func listed(t *testing.T, db, arch, state string) (names []string, total int) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(wannaBuild(t, db, arch, "", "--list="+state)), "\n")
	last := lines[len(lines)-1]
	if _, err := fmt.Sscanf(last, "Total %d package(s)", &total); err != nil {
		t.Fatalf("--list=%s on %s: last line %q: %v", state, arch, last, err)
	}
	for _, l := range lines {
		if m := listedRE.FindStringSubmatch(l); m != nil {
			names = append(names, m[1])
		}
	}
	return names, total
}

// browserQueue merges the real bookworm main indexes for amd64 and arm64
// (34k sources each) into a fresh queue ($BUILDD_TEST_STORE's kind), then
// makes browserSteps' state changes through wanna-build, as builders and
// admins do. It leaves $WANNA_BUILD_NOW at readTime.
func browserQueue(t *testing.T) string {
	src := debiandata.Path(t, "debian-bookworm-main/Sources.xz")
	db := storetest.New(t)
	t.Setenv(cli.EnvNow, strconv.Itoa(browserStart))
	for _, arch := range []string{"amd64", "arm64"} {
		wannaBuild(t, db, arch, "", "--merge-v3", debiandata.Path(t, "debian-bookworm-main/Packages-"+arch+".xz"), ".", src)
	}
	debug.SetGCPercent(100) // the merge raised it
	for i, s := range browserSteps {
		t.Setenv(cli.EnvNow, strconv.FormatInt(stepTime(i), 10))
		wannaBuild(t, db, s.arch, s.user, s.args...)
	}
	deliverLog(t, db)
	machineRevisions(t, db)
	quarantine(t, db)
	t.Setenv(cli.EnvNow, strconv.FormatInt(readTime, 10))
	return db
}

// browserUUID is the browser's queue's UUID number n.
func browserUUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// browserRevisions are the builders' reports of their machines, and the
// revision each queue requires: buildd-amd64's machine is behind
// bookworm/amd64's, buildd-arm64's on bookworm/arm64's.
var browserRevisions = []struct {
	arch, user, held, required string
}{
	{"amd64", "buildd-amd64", "bookworm-amd64 bookworm-amd64-3 " + browserUUID(3) + " current\nbookworm-amd64 bookworm-amd64-2 " + browserUUID(2) + "\n", browserUUID(4)},
	{"arm64", "buildd-arm64", "bookworm-arm64 bookworm-arm64-7 " + browserUUID(7) + " current\n", browserUUID(7)},
}

// machineRevisions reports browserRevisions through wanna-build
// --report-revisions, as buildd does over ssh, and requires each queue's
// revision as the admin does.
func machineRevisions(t *testing.T, db string) {
	t.Helper()
	for _, r := range browserRevisions {
		for _, args := range [][]string{{"-U", r.user, "--report-revisions"}, {"--require-revision=" + r.required}} {
			all := append([]string{"--db", db, "--dist=bookworm", "--arch=" + r.arch}, args...)
			var out, errb bytes.Buffer
			if code := cli.Main(all, strings.NewReader(r.held), &out, &errb); code != 0 || errb.Len() > 0 {
				t.Fatalf("wanna-build %s: exit %d: %s", strings.Join(all, " "), code, errb.String())
			}
		}
	}
}

// quarantinedSince is when buildd-arm64 put itself in quarantine.
var quarantinedSince = stepTime(len(browserSteps) - 1)

// quarantine reports buildd-arm64's heartbeat of bookworm/arm64, in
// quarantine, as buildd does each round.
func quarantine(t *testing.T, spec string) {
	t.Helper()
	db, err := store.Open(spec, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Heartbeat(queue.BuilderStatus{Builder: "buildd-arm64", Pair: queue.Pair{Dist: "bookworm", Arch: "arm64"}, Slots: 2, SlotMemory: 8 << 20, Running: 1,
		Quarantined: "<b>disk full</b> on /srv/buildd", QuarantinedSince: quarantinedSince}); err != nil {
		t.Fatal(err)
	}
}

// failedLog is the log buildd-amd64 delivers of hello's failed build: the
// end of the build, the hostile error and the summary block.
var failedLog = `dh_auto_test
make[1]: Entering directory '/build/hello-2.10'
` + hostileFailure + `

+------------------------------------------------------------------------------+
| Summary                                      Wed, 18 Nov 2026 19:06:40 +0000 |
+------------------------------------------------------------------------------+

Package: hello
Version: 2.10-3+b1
Source-Version: 2.10-3
Distribution: bookworm
Architecture: amd64
Build-Time: 31
Install-Time: 1
Install-Layer: layer-1-6671fda17fca8a1ffd47789045ffb6e5
Package-Time: 35
Job-Time: 36
Status: attempted
Fail-Stage: build
Fail-Reason: build of hello_2.10-3 failed: dpkg-buildpackage: exit status 2
`

// deliverLog stores failedLog as buildd-amd64 would, through wanna-build
// --put-log, at the time of the --attempted step.
func deliverLog(t *testing.T, db string) {
	t.Helper()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(failedLog))
	w.Close()
	end := stepTime(slices.IndexFunc(browserSteps, func(s struct {
		arch, user string
		args       []string
	}) bool {
		return s.args[0] == "--attempted"
	}))
	args := []string{"--db", db, "--dist=bookworm", "--arch=amd64", "-U", "buildd-amd64", "--put-log",
		"--log-time=" + strconv.FormatInt(end, 10), "--log-status=attempted", "--log-expires=" + strconv.FormatInt(end+90*86400, 10), "hello_2.10-3+b1"}
	var out, errb bytes.Buffer
	if code := cli.Main(args, &gz, &out, &errb); code != 0 || errb.Len() > 0 {
		t.Fatalf("wanna-build %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
}

// serve serves the status web of db on 127.0.0.1 as wanna-build --web
// does, with the clock at readTime, and returns its URL.
func serve(t *testing.T, db string) string {
	l, err := web.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := &web.Server{DB: db, Now: func() time.Time { return time.Unix(readTime, 0) }}
	go func() { done <- web.Serve(ctx, l, s.Handler()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the status web: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

// browser is one tab of a headless Chromium, and the JavaScript dialogs
// its pages opened.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	dialogs []string
}

// chromium is the browser's program; t skips when it is not installed.
func chromium(t *testing.T) string {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skipf("SKIPPING: the browser tests need Debian's chromium, which make deps installs: %v", err)
	}
	return path
}

// newBrowser starts the browser at path: headless (one of the default
// options), without the sandbox (the tests run as root) and the GPU, its
// temporary files in a test directory (it leaves one behind in $TMPDIR).
// It closes before the servers started earlier stop, which otherwise wait
// for its open connections.
func newBrowser(t *testing.T, path string) *browser {
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 800),
		chromedp.Env("TMPDIR="+tmp))
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	b := &browser{ctx: ctx}
	err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
			b.mu.Unlock()
			// A dialog blocks the page: close it, and let the checks fail.
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return b
}

// seen is what a person sees of a page.
type seen struct {
	Status  int64                 `json:"-"`       // the HTTP status
	URL     string                `json:"url"`     // the location's path and query
	Heading string                `json:"heading"` // the h1
	Text    string                `json:"text"`    // the visible text of the whole page
	Scripts int                   `json:"scripts"` // script elements
	Tables  [][]map[string]string `json:"tables"`  // every table's rows, each cell's text by its column's heading
}

const readPage = `(() => {
	const h1 = document.querySelector('h1');
	return {
		url: location.pathname + location.search,
		heading: h1 ? h1.innerText.trim() : '',
		text: document.body.innerText,
		scripts: document.querySelectorAll('script').length,
		tables: [...document.querySelectorAll('table')].filter(t => t.rows.length > 0).map(t => {
			const head = [...t.rows[0].cells].map(c => c.innerText.trim());
			return [...t.rows].slice(1).map(r => Object.fromEntries([...r.cells].map((c, i) => [head[i], c.innerText.trim()])));
		}),
	};
})()`

// open loads the page at url.
func (b *browser) open(t *testing.T, url string) seen {
	t.Helper()
	resp, err := chromedp.Run(b.ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	return b.read(t, resp.Status)
}

// click clicks the first element sel finds and reads the page it leads to.
func (b *browser) click(t *testing.T, sel string) seen {
	t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("clicking %s: %v", sel, err)
	}
	return b.read(t, resp.Status)
}

// read reads the page loaded with HTTP status, and fails t when a script
// ran or could run: a dialog opened, or a script element is there.
func (b *browser) read(t *testing.T, status int64) seen {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[seen](readPage))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	s.Status = status
	b.mu.Lock()
	dialogs := b.dialogs
	b.dialogs = nil
	b.mu.Unlock()
	if len(dialogs) > 0 || s.Scripts > 0 {
		t.Errorf("%s: a script ran or is there: dialogs %q, %d script elements", s.URL, dialogs, s.Scripts)
	}
	return s
}

// row is the first table row of s whose cells have the texts of want (by
// column heading); it fails t when there is none.
func (s seen) row(t *testing.T, want map[string]string) map[string]string {
	t.Helper()
	for _, table := range s.Tables {
		for _, r := range table {
			if matches(r, want) {
				return r
			}
		}
	}
	t.Fatalf("%s: no row with %q in %q", s.URL, want, s.Tables)
	return nil
}

func matches(row, want map[string]string) bool {
	for k, v := range want {
		if got, ok := row[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// TestBrowser reads the status web in headless Chromium, over the real
// bookworm queue of amd64 and arm64 with builds taken, built, failed,
// dep-waiting and given back: what each page shows, that its links lead
// where they say, and that hostile text is shown and never run. With
// -screenshot it writes the README's picture of a package page.
func TestBrowser(t *testing.T) {
	path := chromium(t)
	start := time.Now()
	db := browserQueue(t)
	t.Logf("the queue: %v", time.Since(start))
	base := serve(t, db)
	b := newBrowser(t, path)
	firstLine, _, _ := strings.Cut(hostileFailure, "\n")

	t.Run("overview", func(t *testing.T) {
		s := b.open(t, base+"/")
		if s.Status != 200 {
			t.Fatalf("/: status %d:\n%s", s.Status, s.Text)
		}
		for _, arch := range []string{"amd64", "arm64"} {
			row := s.row(t, map[string]string{"distribution": "bookworm", "architecture": arch})
			_, all := listed(t, db, arch, "all")
			if row["total"] != strconv.Itoa(all) {
				t.Errorf("/: bookworm/%s total %q, want %d (--list=all)", arch, row["total"], all)
			}
			for _, st := range []queue.State{queue.NeedsBuild, queue.Building, queue.Built, queue.Failed, queue.DepWait, queue.Installed} {
				want := ""
				if _, n := listed(t, db, arch, string(st)); n > 0 {
					want = strconv.Itoa(n)
				}
				if row[string(st)] != want {
					t.Errorf("/: bookworm/%s %s %q, want %q (--list)", arch, st, row[string(st)], want)
				}
			}
		}
		for _, builder := range []string{"buildd-amd64", "buildd-arm64"} {
			if !strings.Contains(s.Text, builder) {
				t.Errorf("/: builder %s not shown:\n%s", builder, s.Text)
			}
		}
	})

	t.Run("package", func(t *testing.T) {
		for _, tc := range []struct {
			pkg, arch, version, state, builder, why string
			details                                 string // among the details, as written
		}{
			{"hello", "amd64", "2.10-3+b1", "Failed", "buildd-amd64", "failed: " + firstLine, hostileFailure},
			{"hello", "arm64", "2.10-3+b1", "Building", "buildd-arm64", "being built by buildd-arm64 since " + stepAt(3), ""},
			{"grep", "amd64", "3.8-5+b1", "Built", "buildd-amd64", "built by buildd-amd64, waiting for the upload", ""},
			{"grep", "arm64", "3.8-5", "Installed", "", "built and in the archive", ""},
			{"tree", "arm64", "2.1.0-1+b1", "Dep-Wait", "buildd-arm64", "waiting for libfoo-dev (>= 2.1), libbar-dev", "libfoo-dev (>= 2.1), libbar-dev"},
			{"pv", "amd64", "1.6.20-1+b1", "Needs-Build", "", "no builder of bookworm/amd64 ever reported in", ""},
			{"ncdu", "amd64", "1.18-0.2+b1", "Building", "buildd-amd64", "being built by buildd-amd64 since " + stepAt(2), ""},
		} {
			s := b.open(t, base+"/package/"+tc.pkg)
			if s.Status != 200 || s.Heading != tc.pkg {
				t.Errorf("/package/%s: status %d, heading %q:\n%s", tc.pkg, s.Status, s.Heading, s.Text)
				continue
			}
			row := s.row(t, map[string]string{"distribution": "bookworm", "arch": tc.arch})
			want := map[string]string{"version": tc.version, "state": tc.state, "builder": tc.builder, "why isn't it building?": tc.why}
			if !matches(row, want) || !strings.Contains(row["details"], tc.details) {
				t.Errorf("/package/%s: bookworm/%s shows\n%q\nwant\n%q\nand details %q", tc.pkg, tc.arch, row, want, tc.details)
			}
		}
		s := b.open(t, base+"/package/hello")
		for _, action := range []string{"--binNMU", "--take", "--attempted", "--failed"} {
			s.row(t, map[string]string{"arch": "amd64", "action": action})
		}
	})

	t.Run("dist", func(t *testing.T) {
		for _, tc := range []struct {
			arch, state, pkg, why string
		}{
			{"amd64", "Failed", "hello", "failed: " + firstLine},
			{"amd64", "Built", "grep", "built by buildd-amd64, waiting for the upload"},
			{"amd64", "Needs-Build", "pv", ""},
			{"arm64", "Dep-Wait", "tree", "waiting for libfoo-dev (>= 2.1), libbar-dev"},
			{"arm64", "Building", "hello", "being built by buildd-arm64 since " + stepAt(3)},
		} {
			path := "/dist/bookworm/" + tc.arch + "?state=" + tc.state
			s := b.open(t, base+path)
			if s.Status != 200 || s.Heading != "bookworm/"+tc.arch {
				t.Errorf("%s: status %d, heading %q:\n%s", path, s.Status, s.Heading, s.Text)
				continue
			}
			want := map[string]string{"package": tc.pkg, "state": tc.state}
			if tc.why != "" {
				want["why isn't it building?"] = tc.why
			}
			s.row(t, want)
			_, n := listed(t, db, tc.arch, tc.state)
			rows := 0
			for _, table := range s.Tables {
				for _, r := range table {
					if _, ok := r["package"]; !ok {
						continue
					}
					if r["state"] != tc.state {
						t.Errorf("%s: %s in state %s", path, r["package"], r["state"])
					}
					rows++
				}
			}
			if rows != n {
				t.Errorf("%s: %d rows, want %d (--list)", path, rows, n)
			}
		}
	})

	t.Run("builder", func(t *testing.T) {
		for _, tc := range []struct{ builder, arch, pkg, version string }{
			{"buildd-amd64", "amd64", "ncdu", "1.18-0.2+b1"},
			{"buildd-arm64", "arm64", "hello", "2.10-3+b1"},
		} {
			s := b.open(t, base+"/builder/"+tc.builder)
			if s.Status != 200 || s.Heading != tc.builder {
				t.Errorf("/builder/%s: status %d, heading %q:\n%s", tc.builder, s.Status, s.Heading, s.Text)
				continue
			}
			s.row(t, map[string]string{"distribution": "bookworm", "arch": tc.arch, "package": tc.pkg, "version": tc.version})
		}
		// Its machines' revisions, and where it takes nothing.
		for _, tc := range []struct {
			builder, arch, revision, uuid, current, required string
		}{
			{"buildd-amd64", "amd64", "bookworm-amd64-3", browserUUID(3), "yes", ""},
			{"buildd-amd64", "amd64", "bookworm-amd64-2", browserUUID(2), "", ""},
			{"buildd-arm64", "arm64", "bookworm-arm64-7", browserUUID(7), "yes", "yes"},
		} {
			s := b.open(t, base+"/builder/"+tc.builder)
			row := s.row(t, map[string]string{"distribution": "bookworm", "arch": tc.arch, "revision": tc.revision})
			want := map[string]string{"machine": "bookworm-" + tc.arch, "UUID": tc.uuid, "current": tc.current, "required by the queue": tc.required}
			if !matches(row, want) || !strings.HasSuffix(row["reported (UTC)"], " ago)") {
				t.Errorf("/builder/%s: %s shows %q, want %q and when it was reported", tc.builder, tc.revision, row, want)
			}
		}
		behind := "Takes nothing from bookworm/amd64 until it has revision " + browserUUID(4) + ": its machine is on revision bookworm-amd64-3 (" + browserUUID(3) + ")."
		if s := b.open(t, base+"/builder/buildd-amd64"); !strings.Contains(s.Text, behind) {
			t.Errorf("/builder/buildd-amd64 does not say %q:\n%s", behind, s.Text)
		}
		if s := b.open(t, base+"/builder/buildd-arm64"); strings.Contains(s.Text, "Takes nothing") {
			t.Errorf("/builder/buildd-arm64, on the required revision, says it takes nothing:\n%s", s.Text)
		}
		s := b.open(t, base+"/dist/bookworm/amd64")
		if want := "Requires build machine revision " + browserUUID(4) + "; behind, taking nothing from it until their machine is on it: buildd-amd64."; !strings.Contains(s.Text, want) {
			t.Errorf("/dist/bookworm/amd64 does not say %q:\n%.2000s", want, s.Text)
		}
	})

	t.Run("builders", func(t *testing.T) {
		s := b.open(t, base+"/builders")
		row := s.row(t, map[string]string{"builder": "buildd-arm64", "arch": "arm64"})
		want := map[string]string{"distribution": "bookworm", "slots": "2", "slot memory": "8.0 GiB", "running": "1",
			"state": "quarantined since " + stepAt(len(browserSteps)-1) + "\n<b>disk full</b> on /srv/buildd"}
		if s.Status != 200 || !matches(row, want) {
			t.Errorf("/builders: buildd-arm64 shows %q, want %q", row, want)
		}
	})

	t.Run("not found", func(t *testing.T) {
		for _, tc := range []struct{ path, text string }{
			{"/package/no-such-package", "no package no-such-package"},
			{"/dist/bookworm/s390x", "no queue bookworm/s390x"},
			{"/no/such/page", "no such page"},
		} {
			s := b.open(t, base+tc.path)
			if s.Status != 404 || s.Heading != "404 Not Found" || !strings.Contains(s.Text, tc.text) {
				t.Errorf("%s: status %d, heading %q, want 404 saying %q:\n%s", tc.path, s.Status, s.Heading, tc.text, s.Text)
			}
		}
	})

	t.Run("log", func(t *testing.T) {
		b.open(t, base+"/package/hello")
		s := b.click(t, `a[href^="/log/bookworm/amd64/hello_2.10-3+b1"]`)
		if s.Status != 200 || s.Heading != "hello_2.10-3+b1 on bookworm/amd64" {
			t.Fatalf("the log link: status %d at %s, heading %q:\n%s", s.Status, s.URL, s.Heading, s.Text)
		}
		summary := regexp.MustCompile(`Fail-Reason\s+build of hello_2.10-3 failed`).FindStringIndex(s.Text)
		log := strings.Index(s.Text, "\nLog\n")
		if summary == nil || log < 0 || summary[0] > log {
			t.Errorf("%s: the summary is not shown before the log:\n%s", s.URL, s.Text)
		}
		for _, want := range []string{`by buildd-amd64, ended ` + regexp.QuoteMeta(stepAt(7)) + ` \(UTC\): attempted`,
			`Install-Layer\s+layer-1-6671fda17fca8a1ffd47789045ffb6e5`, regexp.QuoteMeta(firstLine)} {
			if !regexp.MustCompile(want).MatchString(s.Text) {
				t.Errorf("%s: does not show %s:\n%s", s.URL, want, s.Text)
			}
		}
	})

	t.Run("links", func(t *testing.T) {
		b.open(t, base+"/")
		for _, tc := range []struct{ click, url, heading string }{
			{`a[href="/dist/bookworm/amd64?state=Failed"]`, "/dist/bookworm/amd64?state=Failed", "bookworm/amd64"},
			{`a[href="/package/hello"]`, "/package/hello", "hello"},
			{`a[href="/builder/buildd-arm64"]`, "/builder/buildd-arm64", "buildd-arm64"},
			{`a[href="/package/hello"]`, "/package/hello", "hello"},
			{`nav a[href="/"]`, "/", "Queues"},
		} {
			s := b.click(t, tc.click)
			if s.Status != 200 || s.URL != tc.url || s.Heading != tc.heading {
				t.Fatalf("clicking %s: status %d at %s, heading %q; want %s, heading %q", tc.click, s.Status, s.URL, s.Heading, tc.url, tc.heading)
			}
		}
	})

	if *screenshotFile != "" {
		t.Run("screenshot", func(t *testing.T) {
			b.open(t, base+"/package/hello")
			png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot of /package/hello: %v", err)
			}
			path := *screenshotFile
			if !filepath.IsAbs(path) {
				path = filepath.Join(debiandata.ModuleRoot(t), path)
			}
			if err := os.WriteFile(path, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", path, len(png))
		})
	}
}

package home

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/flock"
)

func TestParseRedoLine(t *testing.T) {
	tests := []struct {
		line string
		want RedoEntry
		bad  bool
	}{
		{line: "hello_1.0-1 bookworm", want: RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm"}},
		{line: "hello_1.0-1 bookworm/arm64", want: RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm", Arch: "arm64"}},
		{line: "foo_2.0 sid 3 Rebuild for libbar2", want: RedoEntry{PkgVersion: "foo_2.0", Dist: "sid", BinNMU: 3, Changelog: "Rebuild for libbar2"}},
		{line: "foo_2.0 sid/amd64 3 Rebuild for libbar2", want: RedoEntry{PkgVersion: "foo_2.0", Dist: "sid", Arch: "amd64", BinNMU: 3, Changelog: "Rebuild for libbar2"}},
		{line: "hello bookworm", bad: true},
		{line: "hello_1.0", bad: true},
		{line: "_1.0 sid", bad: true},
		{line: "foo_1 sid x text", bad: true},
		{line: "foo_1 sid/ 1 text", bad: true},
		{line: "foo_1 /arm64", bad: true},
		{line: "foo_1 sid/arm64/x", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseRedoLine(tt.line)
		if (err != nil) != tt.bad {
			t.Errorf("ParseRedoLine(%q) error = %v, want bad=%v", tt.line, err, tt.bad)
			continue
		}
		if !tt.bad && got != tt.want {
			t.Errorf("ParseRedoLine(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
		if !tt.bad && got.String() != tt.line {
			t.Errorf("String() = %q, want %q", got.String(), tt.line)
		}
	}
}

func TestREDOFile(t *testing.T) {
	h := New(t.TempDir())
	b, _ := os.ReadFile("testdata/REDO")
	os.MkdirAll(h.BuildDir(), 0o755)
	os.WriteFile(h.REDO().Path(), b, 0o644)
	es, bad, err := h.REDO().Read()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || len(bad) != 3 {
		t.Fatalf("Read: %d entries, %d bad; want 2, 3: %v", len(es), len(bad), bad)
	}
	if got := bad[0].Error(); got != `REDO:2: bad line "bad line here"` {
		t.Errorf("bad line error = %q", got)
	}
	if err := h.REDO().Add(RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm"}, RedoEntry{PkgVersion: "new_1", Dist: "sid"}); err != nil {
		t.Fatal(err)
	}
	if err := h.REDO().Remove(func(e RedoEntry) bool { return e.PkgVersion == "foo_2.0" }); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(h.REDO().Path())
	if want := "hello_1.0-1 bookworm\nbad line here\n_1.0 sid\nbar_1 sid x y\nnew_1 sid\n"; string(got) != want {
		t.Errorf("REDO = %q, want %q", got, want)
	}
}

// TestREDOEditKeepsBadLines: a rewrite keeps the lines it cannot parse,
// verbatim, after the entry they followed (or the nearest earlier kept
// one), and reports them with their line numbers.
func TestREDOEditKeepsBadLines(t *testing.T) {
	fixture, err := os.ReadFile("testdata/REDO")
	if err != nil {
		t.Fatal(err)
	}
	hello := RedoEntry{PkgVersion: "hello_1.0-1", Dist: "bookworm"}
	foo := RedoEntry{PkgVersion: "foo_2.0", Dist: "bookworm", BinNMU: 1, Changelog: "Rebuild against libbar2"}
	added := RedoEntry{PkgVersion: "new_1", Dist: "sid"}
	for _, tt := range []struct {
		name string
		f    func([]RedoEntry) []RedoEntry
		want string
	}{
		{"unchanged", func(es []RedoEntry) []RedoEntry { return es },
			"hello_1.0-1 bookworm\nbad line here\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\n"},
		{"add", func(es []RedoEntry) []RedoEntry { return append(es, added) },
			"hello_1.0-1 bookworm\nbad line here\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\nnew_1 sid\n"},
		{"remove the entry before bad lines", func([]RedoEntry) []RedoEntry { return []RedoEntry{hello} },
			"hello_1.0-1 bookworm\nbad line here\n_1.0 sid\nbar_1 sid x y\n"},
		{"remove the first entry", func([]RedoEntry) []RedoEntry { return []RedoEntry{foo, added} },
			"bad line here\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\nnew_1 sid\n"},
		{"remove all", func([]RedoEntry) []RedoEntry { return nil },
			"bad line here\n_1.0 sid\nbar_1 sid x y\n"},
		{"reorder", func([]RedoEntry) []RedoEntry { return []RedoEntry{foo, hello} },
			"foo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\nhello_1.0-1 bookworm\nbad line here\n"},
		{"duplicate", func(es []RedoEntry) []RedoEntry { return []RedoEntry{hello, hello, foo} },
			"hello_1.0-1 bookworm\nbad line here\nhello_1.0-1 bookworm\nfoo_2.0 bookworm 1 Rebuild against libbar2\n_1.0 sid\nbar_1 sid x y\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			os.MkdirAll(h.BuildDir(), 0o755)
			if err := os.WriteFile(h.REDO().Path(), fixture, 0o644); err != nil {
				t.Fatal(err)
			}
			bad, err := h.REDO().Edit(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bad {
				var le *LineError
				if !errors.As(b, &le) {
					t.Errorf("%v is not a *LineError", b)
				}
				got = append(got, b.Error())
			}
			want := []string{`REDO:2: bad line "bad line here"`, `REDO:5: bad line "_1.0 sid"`, `REDO:6: bad binNMU number in line "bar_1 sid x y"`}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("reported %q, want %q", got, want)
			}
			if b, _ := os.ReadFile(h.REDO().Path()); string(b) != tt.want {
				t.Errorf("REDO =\n%s\nwant\n%s", b, tt.want)
			}
		})
	}
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "REDO")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p); !errors.Is(err, flock.ErrLocked) {
		t.Fatalf("second TryLock = %v, want ErrLocked", err)
	}
	if _, err := LockFile(p, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "held by") {
		t.Errorf("LockFile with timeout = %v, want a 'held by' error", err)
	}
	l.Unlock()
	// The waiter LockFile gave up on still sleeps in flock (it cannot be
	// called back): the release hands it the lock, which it lets go at
	// once (internal/flock's take). Until then TryLock finds it held.
	deadline := time.Now().Add(5 * time.Second)
	for {
		l2, err := TryLock(p)
		if err == nil {
			l2.Unlock()
			return
		}
		if !errors.Is(err, flock.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("TryLock after Unlock: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutdated(t *testing.T) {
	h := New(t.TempDir())
	c := twoArches(t)
	now := time.Unix(1_800_000_000, 0)
	o := h.Outdated()
	o.Add("a_1", "a_2", "sid", "amd64", now.Add(-22*24*time.Hour))
	o.Add("b_1", "b_2", "bookworm", "arm64", now)
	amd64, _ := c.DistArch("bookworm", "amd64")
	arm64, _ := c.DistArch("bookworm", "arm64")
	sid, _ := c.DistArch("sid", "amd64")
	if _, ok, _ := o.IsOutdated("a_1", means(c, sid)); ok {
		t.Error("entry older than 21 days kept")
	}
	if nv, ok, _ := o.IsOutdated("b_1", means(c, arm64)); !ok || nv != "b_2" {
		t.Errorf("IsOutdated(b_1, bookworm/arm64) = %q, %v", nv, ok)
	}
	if _, ok, _ := o.IsOutdated("b_1", means(c, amd64)); ok {
		t.Error("b_1 superseded on arm64 is outdated on amd64")
	}
	if err := o.Add("c_1", "c_2", "bookworm", "", now); err == nil {
		t.Error("outdated entry without its architecture recorded")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestPID(t *testing.T) {
	p := filepath.Join(t.TempDir(), "buildd.pid")
	if pid, err := ReadPID(p); pid != 0 || err != nil {
		t.Errorf("missing pid file: %d, %v", pid, err)
	}
	WritePID(p, 42)
	if b, _ := os.ReadFile(p); string(b) != "   42\n" {
		t.Errorf("pid file = %q", b)
	}
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := ReadPID(p); err == nil || !strings.Contains(err.Error(), `"garbage"`) {
		t.Errorf("corrupt pid file error = %v", err)
	}
	if !Alive(os.Getpid()) || Alive(0) {
		t.Error("Alive wrong")
	}
}

func TestSent(t *testing.T) {
	h := New(t.TempDir())
	c := twoArches(t)
	at := time.Unix(1_800_000_000, 0)
	s := h.Sent()
	if err := s.Add(SentMail{MessageID: "<abc@host>", Time: at, Dist: "bookworm", Arch: "arm64", PkgVersion: "hello_1.0-1", Kind: "log"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []SentMail{{MessageID: "bad id", Time: at, Dist: "bookworm", Arch: "amd64"}, {MessageID: "x@h", Time: at, Dist: "bookworm"},
		{MessageID: "x@h", Time: at, Dist: "bookworm/arm64", Arch: "arm64"}} {
		if err := s.Add(bad); err == nil {
			t.Errorf("record %+v accepted", bad)
		}
	}
	m, ok, err := s.Lookup("abc@host")
	if err != nil || !ok || m.PkgVersion != "hello_1.0-1" || m.Dist != "bookworm" || m.Arch != "arm64" || !m.Time.Equal(at) {
		t.Errorf("Lookup = %+v, %v, %v", m, ok, err)
	}
	amd64, _ := c.DistArch("bookworm", "amd64")
	arm64, _ := c.DistArch("bookworm", "arm64")
	if _, ok, _ := s.Latest("hello_1.0-1", "log", means(c, arm64)); !ok {
		t.Error("Latest did not find the arm64 log mail")
	}
	if m, ok, _ := s.Latest("hello_1.0-1", "log", means(c, amd64)); ok {
		t.Errorf("Latest for amd64 found the arm64 log mail %+v", m)
	}
}

// TestSkip: a "PKG_VERSION DIST/ARCH" line names that build in its dist
// and arch only, a classic "PKG_VERSION" line names it in every dist, a
// "PKG_VERSION DIST" line in the dist's only arch, and nothing in a dist
// built for two (an error says so); Take consumes what it matches and
// keeps every other line, junk and ambiguous ones included, as it was.
func TestSkip(t *testing.T) {
	fixture, err := os.ReadFile("testdata/SKIP")
	if err != nil {
		t.Fatal(err)
	}
	c := twoArches(t)
	const helloAmbiguous = `SKIP:12: dist bookworm without an architecture: this host builds it for amd64 and arm64 (testdata/two-arches.conf), name one in line "hello_1.0-1 bookworm"`
	tests := []struct {
		name       string
		pkgv       string
		dist, arch string
		found      bool
		gone       []string // fixture lines Take removes
		ambiguous  string   // the error's start
	}{
		{name: "own dist and arch", pkgv: "hello_1.0-1", dist: "bookworm", arch: "arm64", found: true, gone: []string{"hello_1.0-1 bookworm/arm64"}, ambiguous: helloAmbiguous},
		{name: "other arch's line", pkgv: "hello_1.0-1", dist: "bookworm", arch: "amd64", ambiguous: helloAmbiguous},
		{name: "dist of one arch", pkgv: "hello_1.0-1", dist: "trixie", arch: "amd64", found: true, gone: []string{"hello_1.0-1 trixie"}},
		{name: "other dist's line", pkgv: "barsep_1.0-1", dist: "trixie", arch: "amd64"},
		{name: "epoch differs", pkgv: "barsep_1:1.0-1", dist: "bookworm", arch: "amd64"},
		{name: "classic line, any dist", pkgv: "classic_2.0-1", dist: "trixie", arch: "amd64", found: true, gone: []string{"classic_2.0-1"}},
		{name: "blanks around", pkgv: "spaced_1.0-1", dist: "trixie", arch: "amd64", found: true, gone: []string{"  spaced_1.0-1   trixie  "}},
		{name: "junk names nothing", pkgv: "junk", dist: "line", arch: "amd64"},
		{name: "not listed", pkgv: "nosuch_1", dist: "bookworm", arch: "amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			os.MkdirAll(h.BuildDir(), 0o755)
			path := h.Path("build", "SKIP")
			if err := os.WriteFile(path, fixture, 0o644); err != nil {
				t.Fatal(err)
			}
			d, ok := c.DistArch(tt.dist, tt.arch)
			if !ok {
				d = &config.Dist{DistName: tt.dist, BuiltArchitecture: tt.arch}
			}
			found, err := h.Skip().Take(tt.pkgv, means(c, d))
			if found != tt.found || (err == nil) != (tt.ambiguous == "") || err != nil && !strings.HasPrefix(err.Error(), tt.ambiguous) {
				t.Fatalf("Take(%q, %s) = %v, %v; want %v, error %q", tt.pkgv, d.Where(), found, err, tt.found, tt.ambiguous)
			}
			var want []string
			for _, l := range strings.SplitAfter(string(fixture), "\n") {
				if l != "" && !slices.Contains(tt.gone, strings.TrimSuffix(l, "\n")) {
					want = append(want, l)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != strings.Join(want, "") {
				t.Errorf("SKIP after Take:\n%s\nwant:\n%s", b, strings.Join(want, ""))
			}
		})
	}
}

func TestSkipAdd(t *testing.T) {
	h := New(t.TempDir())
	c := twoArches(t)
	amd64, _ := c.DistArch("bookworm", "amd64")
	arm64, _ := c.DistArch("bookworm", "arm64")
	trixie, _ := c.DistArch("trixie", "amd64")
	s := h.Skip()
	if found, err := s.Take("a_1", means(c, amd64)); found || err != nil {
		t.Fatalf("Take on a missing SKIP = %v, %v", found, err)
	}
	if _, err := os.Stat(h.Path("build", "SKIP")); !os.IsNotExist(err) {
		t.Error("Take created SKIP")
	}
	for _, a := range [][3]string{{"a_1", "bookworm", "amd64"}, {"a_1", "bookworm", "arm64"}, {"a_1", "trixie", "amd64"}, {"b_2", "", ""}, {"a_1", "bookworm", "amd64"}, {"b_2", "", ""}} {
		if err := s.Add(a[0], a[1], a[2]); err != nil {
			t.Fatalf("Add(%q, %q, %q): %v", a[0], a[1], a[2], err)
		}
	}
	for _, bad := range [][3]string{{"", "bookworm", "amd64"}, {"a_1 x", "bookworm", "amd64"}, {"a_1", "book worm", "amd64"}, {"a_1", "sid\n", "amd64"},
		{"a_1", "bookworm", ""}, {"a_1", "", "amd64"}, {"a_1", "bookworm/amd64", "arm64"}} {
		if err := s.Add(bad[0], bad[1], bad[2]); err == nil || !strings.Contains(err.Error(), "SKIP") {
			t.Errorf("Add(%q, %q, %q) = %v, want an error naming the file", bad[0], bad[1], bad[2], err)
		}
	}
	if b, _ := os.ReadFile(h.Path("build", "SKIP")); string(b) != "a_1 bookworm/amd64\na_1 bookworm/arm64\na_1 trixie/amd64\nb_2\n" {
		t.Errorf("SKIP = %q, want each line once", b)
	}
	if found, _ := s.Take("a_1", means(c, amd64)); !found {
		t.Error("a_1 bookworm/amd64 not found")
	}
	if found, _ := s.Take("a_1", means(c, amd64)); found {
		t.Error("a_1 bookworm/amd64 found twice: Take should consume it")
	}
	if found, _ := s.Take("a_1", means(c, arm64)); !found {
		t.Error("a_1 bookworm/arm64 consumed with a_1 bookworm/amd64")
	}
	if found, _ := s.Take("a_1", means(c, trixie)); !found {
		t.Error("a_1 trixie consumed with a_1 bookworm")
	}
}

// twoArches is a host that builds bookworm for amd64 and arm64, and
// trixie and sid for amd64.
func twoArches(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Load("testdata/two-arches.conf")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// means is what a record means on c's host for d (config.Config.Means).
func means(c *config.Config, d *config.Dist) Means {
	return func(dist, arch string) (bool, error) { return c.Means(d, dist, arch) }
}

// TestRecordsWithoutArch: the records of sent-mails and outdated-packages
// written before records carried the architecture name their dist alone:
// on a host that builds that dist for one architecture they are about it;
// on one that builds it for two, a sent mail may be about either (it
// counts as the newest mail about the package for both: a signature must
// not predate it) and an outdated entry is about neither, which the error
// says.
func TestRecordsWithoutArch(t *testing.T) {
	c := twoArches(t)
	h := New(t.TempDir())
	for _, f := range []string{"sent-mails", "outdated-packages"} {
		if err := os.WriteFile(h.Path(f), must(os.ReadFile("testdata/"+f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	amd64, _ := c.DistArch("bookworm", "amd64")
	arm64, _ := c.DistArch("bookworm", "arm64")
	trixie, _ := c.DistArch("trixie", "amd64")
	for _, l := range []struct{ id, dist, arch string }{
		{"old-trixie@h", "trixie", ""}, {"old-bookworm@h", "bookworm", ""}, {"new-amd64@h", "bookworm", "amd64"}, {"new-arm64@h", "bookworm", "arm64"},
	} {
		m, ok, err := h.Sent().Lookup("<" + l.id + ">")
		if err != nil || !ok || m.Dist != l.dist || m.Arch != l.arch {
			t.Errorf("Lookup(%s) = %+v, %v, %v; want dist %q arch %q", l.id, m, ok, err, l.dist, l.arch)
		}
	}
	if _, ok, _ := h.Sent().Lookup("bad-arch@h"); ok {
		t.Error("a record naming bookworm/ was read")
	}
	latest := []struct {
		d          *config.Dist
		pkgv, kind string
		want       string
	}{
		{trixie, "hello_1.0-1", "log", "old-trixie@h"},
		{amd64, "hello_1.0-1", "log", "new-amd64@h"},
		{arm64, "hello_1.0-1", "log", "new-arm64@h"},
		{amd64, "frail_2.0", "should-build", ""},
		{arm64, "frail_2.0", "should-build", "new-arm64-q@h"},
	}
	for _, l := range latest {
		m, ok, err := h.Sent().Latest(l.pkgv, l.kind, means(c, l.d))
		if err != nil || ok != (l.want != "") || m.MessageID != l.want {
			t.Errorf("Latest(%s, %s, %s) = %q, %v, %v; want %q", l.pkgv, l.kind, l.d.Where(), m.MessageID, ok, err, l.want)
		}
	}
	// The old record counts for both arches when it is the newest.
	os.WriteFile(h.Path("sent-mails"), []byte("new-amd64@h 1800000020 bookworm/amd64 hello_1.0-1 log\nold-bookworm@h 1800000030 bookworm hello_1.0-1 log\n"), 0o644)
	for _, d := range []*config.Dist{amd64, arm64} {
		if m, _, _ := h.Sent().Latest("hello_1.0-1", "log", means(c, d)); m.MessageID != "old-bookworm@h" {
			t.Errorf("Latest for %s = %q, want the newer record without arch", d.Where(), m.MessageID)
		}
	}

	outdated := []struct {
		d         *config.Dist
		pkgv      string
		want      string
		ambiguous bool
	}{
		{trixie, "a_1", "a_2", false},
		{amd64, "b_1", "", true},
		{arm64, "b_1", "", true},
		{amd64, "c_1", "c_3", false},
		{arm64, "c_1", "c_2", false},
		{amd64, "d_1", "", false},
	}
	for _, o := range outdated {
		nv, ok, err := h.Outdated().IsOutdated(o.pkgv, means(c, o.d))
		if nv != o.want || ok != (o.want != "") || (err != nil) != o.ambiguous {
			t.Errorf("IsOutdated(%s, %s) = %q, %v, %v; want %q, ambiguous %v", o.pkgv, o.d.Where(), nv, ok, err, o.want, o.ambiguous)
		}
		var le *LineError
		if err != nil && (!errors.As(err, &le) || !strings.HasPrefix(err.Error(), "outdated-packages:2: dist bookworm without an architecture")) {
			t.Errorf("IsOutdated(%s, %s): error %q does not name the line", o.pkgv, o.d.Where(), err)
		}
	}
}

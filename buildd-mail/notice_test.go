package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const noticeDir = "testdata/notice"

// queued is a package version in a dist's queue, in a state.
type queued struct{ dist, pkgv, state string }

// noticeCase: the queue, REDO and build/ as the case sets them up, the
// notice (testdata/notice/mail/NAME) piped into the real binary, and what
// build/, REDO, SKIP, PURGE and outdated-packages must hold after.
type noticeCase struct {
	name     string
	queue    []queued
	build    string   // a set of results in testdata/notice/build/, copied into build/
	dirs     []string // directories made in build/
	redo     []string // REDO before
	mail     string
	kept     []string // files of build/ still there after
	gone     []string // files of build/ deleted
	redoNow  []string // REDO after
	skip     []string // SKIP after
	purge    []string // PURGE after: directories in build/
	outdated string   // the outdated-packages entry: "OLD NEW DIST/ARCH"
}

// TestNewVersionNoticeScope: an unsigned "new version of" notice touches
// only its own dist's results, REDO and SKIP lines, and only for exactly the
// version the queue shows superseded, epoch included (issue 22, item 2).
func TestNewVersionNoticeScope(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "buildd-mail")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	barsfooFiles := []string{"barsfoo_1.0-1_amd64.changes", "barsfoo_1.0-1_amd64.deb"}
	barsepFiles := []string{"barsep_1.0-1_amd64.changes", "barsep_1.0-1_amd64.deb"}
	cases := []noticeCase{
		// Found: trixie's notice deleted bookworm's .changes and .deb of
		// the same version, awaiting the admin's signed "ok".
		{name: "cross-dist: another dist's results awaiting ok stay",
			queue: []queued{{bookworm, "barsfoo_1.0-1", "Built"}, {trixie, "barsfoo_1.0-2", "Needs-Build"}},
			build: "barsfoo-bookworm", mail: "barsfoo-trixie.eml",
			kept: barsfooFiles, skip: []string{"barsfoo_1.0-1 trixie/amd64"},
			outdated: "barsfoo_1.0-1 barsfoo_1.0-2 trixie/amd64"},
		// The same when the .changes names no dist of this buildd: the
		// queue of bookworm still has the version, so they may be its.
		{name: "cross-dist: results naming no dist stay while another queue has the version",
			queue: []queued{{bookworm, "barsfoo_1.0-1", "Built"}, {trixie, "barsfoo_1.0-2", "Needs-Build"}},
			build: "barsfoo-unstable", mail: "barsfoo-trixie.eml",
			kept: barsfooFiles, skip: []string{"barsfoo_1.0-1 trixie/amd64"},
			outdated: "barsfoo_1.0-1 barsfoo_1.0-2 trixie/amd64"},
		// Found: trixie's notice dropped bookworm's REDO entry (the admin's
		// retry) and, since REDO had the version, put nothing in SKIP.
		{name: "cross-dist: another dist's REDO entry stays",
			queue: []queued{{bookworm, "barsfoo_1.0-1", "Build-Attempted"}, {trixie, "barsfoo_1.0-2", "Needs-Build"}},
			redo:  []string{"barsfoo_1.0-1 bookworm"}, mail: "barsfoo-trixie.eml",
			redoNow: []string{"barsfoo_1.0-1 bookworm"}, skip: []string{"barsfoo_1.0-1 trixie/amd64"},
			outdated: "barsfoo_1.0-1 barsfoo_1.0-2 trixie/amd64"},
		// Found: a notice for barsep_1.0-1 deleted the results of the
		// current 1:1.0-1, whose file names carry no epoch either.
		{name: "epoch: a notice without the epoch leaves the current version's results",
			queue: []queued{{bookworm, "barsep_1:1.0-1", "Built"}},
			build: "barsep-epoch", dirs: []string{"barsep-1.0"}, redo: []string{"barsep_1:1.0-1 bookworm"},
			mail: "barsep-no-epoch.eml",
			kept: barsepFiles, redoNow: []string{"barsep_1:1.0-1 bookworm"}, skip: []string{"barsep_1.0-1 bookworm/amd64"},
			outdated: "barsep_1.0-1 barsep_1:1.0-1 bookworm/amd64"},
		// The exact superseded version of the notice's own dist is purged:
		// its results, its REDO entry (not another dist's), its directory.
		{name: "own dist: the exact superseded version is purged",
			queue: []queued{{bookworm, "hello_1.1-1", "Needs-Build"}, {trixie, "hello_0.9-1", "Building"}},
			build: "hello-bookworm", dirs: []string{"hello-1.0"}, redo: []string{"hello_1.0-1 bookworm", "hello_0.9-1 trixie"},
			mail: "hello-bookworm.eml",
			gone: []string{"hello_1.0-1_amd64.changes", "hello_1.0-1_amd64.deb"}, redoNow: []string{"hello_0.9-1 trixie"},
			purge: []string{"hello-1.0"}, outdated: "hello_1.0-1 hello_1.1-1 bookworm/amd64"},
		// With its epoch: 1:1.0-1's results (named without it) are purged;
		// barsep-1.0 is kept, 1:1.0-2 unpacks there too.
		{name: "own dist: the exact superseded version with its epoch is purged",
			queue: []queued{{bookworm, "barsep_1:1.0-2", "Needs-Build"}},
			build: "barsep-epoch", dirs: []string{"barsep-1.0"}, mail: "barsep-epoch.eml",
			gone: barsepFiles, skip: []string{"barsep_1:1.0-1 bookworm/amd64"},
			outdated: "barsep_1:1.0-1 barsep_1:1.0-2 bookworm/amd64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newHostile(t, bin)
			c.setup(x)
			x.deliverRaw(c.mail, x.noticeFile("mail", c.mail))
			x.wantNoReply(c.mail)
			c.check(x)
		})
	}
}

func (c noticeCase) setup(x *hostile) {
	x.t.Helper()
	ctx := context.Background()
	for _, q := range c.queue {
		cl := x.queue(q.dist)
		if err := cl.Take(ctx, q.pkgv); err != nil {
			x.t.Fatalf("take %s in %s: %v", q.pkgv, q.dist, err)
		}
		var err error
		switch q.state {
		case "Building":
		case "Built":
			err = cl.Built(ctx, q.pkgv)
		case "Build-Attempted":
			err = cl.Attempted(ctx, q.pkgv)
		case "Needs-Build":
			err = cl.GiveBack(ctx, q.pkgv)
		default:
			x.t.Fatalf("state %s: not one the cases use", q.state)
		}
		if err != nil {
			x.t.Fatalf("%s in %s to %s: %v", q.pkgv, q.dist, q.state, err)
		}
		x.require(q.dist, q.pkgv, q.state)
	}
	if c.build != "" {
		ents, err := os.ReadDir(filepath.Join(noticeDir, "build", c.build))
		if err != nil {
			x.t.Fatal(err)
		}
		for _, e := range ents {
			x.writeFile(filepath.Join("build", e.Name()), x.noticeFile("build", c.build, e.Name()))
		}
	}
	for _, d := range c.dirs {
		if err := os.MkdirAll(filepath.Join(x.h.BuildDir(), d), 0o755); err != nil {
			x.t.Fatal(err)
		}
	}
	if len(c.redo) > 0 {
		x.writeFile(filepath.Join("build", "REDO"), []byte(strings.Join(c.redo, "\n")+"\n"))
	}
}

func (c noticeCase) check(x *hostile) {
	x.t.Helper()
	for _, f := range c.kept {
		want := x.noticeFile("build", c.build, f)
		if got, err := os.ReadFile(filepath.Join(x.h.BuildDir(), f)); err != nil || string(got) != string(want) {
			x.t.Errorf("build/%s deleted or changed (%v)", f, err)
		}
	}
	for _, f := range c.gone {
		if _, err := os.Lstat(filepath.Join(x.h.BuildDir(), f)); err == nil {
			x.t.Errorf("build/%s still there", f)
		}
	}
	var purge []string
	for _, d := range c.purge {
		purge = append(purge, filepath.Join(x.h.BuildDir(), d))
	}
	for _, f := range []struct {
		rel  string
		want []string
	}{{"build/REDO", c.redoNow}, {"build/SKIP", c.skip}, {"build/PURGE", purge}} {
		if got := x.lines(f.rel); !slices.Equal(got, f.want) {
			x.t.Errorf("%s = %q, want %q", f.rel, got, f.want)
		}
	}
	want := strings.Fields(c.outdated)
	found := false
	for _, l := range x.lines("outdated-packages") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == want[0] && f[1] == want[1] && f[3] == want[2] {
			found = true
		}
	}
	if !found {
		x.t.Errorf("outdated-packages %q has no entry %q", x.lines("outdated-packages"), c.outdated)
	}
	if x.t.Failed() {
		x.t.Logf("daemon.log:\n%s", tail(x.daemonLog(), 20))
	}
}

// noticeFile reads a fixture under testdata/notice.
func (x *hostile) noticeFile(elem ...string) []byte {
	x.t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{noticeDir}, elem...)...))
	if err != nil {
		x.t.Fatal(err)
	}
	return b
}

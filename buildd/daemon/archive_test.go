package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buildd/internal/machine/machinetest"
)

// srcPkg is a tiny native source package; build is the shell of its
// debian/rules build target.
type srcPkg struct {
	name, version, section, build string
}

func run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// makeSource writes the package's tree and runs dpkg-source -b on it in dir.
func makeSource(t testing.TB, dir string, s srcPkg) {
	t.Helper()
	tree := filepath.Join(dir, s.name+"-"+s.version)
	files := map[string]string{
		"debian/source/format": "3.0 (native)\n",
		"debian/control": fmt.Sprintf(`Source: %[1]s
Section: %[2]s
Priority: optional
Maintainer: Buildd Test <test@example.org>
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: %[1]s
Architecture: any
Description: test package for buildd
 A tiny package the buildd daemon tests build.
`, s.name, s.section),
		"debian/changelog": fmt.Sprintf("%s (%s) bookworm; urgency=medium\n\n  * Test.\n\n -- Buildd Test <test@example.org>  Fri, 21 Nov 2025 07:30:12 +0000\n", s.name, s.version),
		"debian/rules": fmt.Sprintf(`#!/usr/bin/make -f
build build-arch build-indep:
	%[2]s
binary binary-arch binary-indep: build
	rm -rf debian/tmp
	mkdir -p debian/tmp/DEBIAN debian/tmp/usr/share/doc/%[1]s
	cp debian/changelog debian/tmp/usr/share/doc/%[1]s/changelog
	dpkg-gencontrol -p%[1]s -Pdebian/tmp
	dpkg-deb --root-owner-group --build debian/tmp ..
clean:
	rm -rf debian/tmp debian/files
`, s.name, s.build),
	}
	for name, text := range files {
		p := filepath.Join(tree, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if name == "debian/rules" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, "dpkg-source", "-b", filepath.Base(tree))
	os.RemoveAll(tree)
}

// archive is a local apt archive served over HTTP on 127.0.0.1, holding
// source packages only (and an empty Packages).
type archive struct {
	dir string
	url string
}

func newArchive(t testing.TB, pkgs ...srcPkg) *archive {
	t.Helper()
	a := &archive{dir: t.TempDir()}
	for _, s := range pkgs {
		pool := filepath.Join(a.dir, "pool", "main", s.name[:1], s.name)
		os.MkdirAll(pool, 0o755)
		makeSource(t, pool, s)
	}
	src := filepath.Join(a.dir, "dists", "bookworm", "main", "source")
	bin := filepath.Join(a.dir, "dists", "bookworm", "main", "binary-amd64")
	os.MkdirAll(src, 0o755)
	os.MkdirAll(bin, 0o755)
	sources := run(t, a.dir, "dpkg-scansources", "pool")
	os.WriteFile(filepath.Join(src, "Sources"), []byte(sources), 0o644)
	run(t, src, "gzip", "-k", "Sources")
	os.WriteFile(filepath.Join(bin, "Packages"), nil, 0o644)
	run(t, bin, "gzip", "-k", "Packages")
	rel := run(t, a.dir, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Suite=bookworm",
		"-o", "APT::FTPArchive::Release::Codename=bookworm",
		"-o", "APT::FTPArchive::Release::Components=main",
		"-o", "APT::FTPArchive::Release::Architectures=amd64 source",
		"release", "dists/bookworm")
	os.WriteFile(filepath.Join(a.dir, "dists", "bookworm", "Release"), []byte(rel), 0o644)

	a.url = serveArchive(t, a.dir)
	return a
}

// merge merges the archive's indexes into the queue db of bookworm/amd64
// with the real wanna-build CLI: Packages . Sources.
func (a *archive) merge(t testing.TB, db string) { a.mergeArch(t, db, "amd64") }

// mergeArch merges the archive's sources into the queue db of bookworm
// for arch (its Packages, empty, stands for every architecture's).
func (a *archive) mergeArch(t testing.TB, db, arch string) {
	t.Helper()
	wb := wannaBuild(t)
	run(t, a.dir, wb, "--db", db, "--dist=bookworm", "-A", arch, "--merge-v3",
		"dists/bookworm/main/binary-amd64/Packages", ".", "dists/bookworm/main/source/Sources")
}

// The archive server is one per test binary, over HTTP on loopback; each
// test points it at its own archive.
var server struct {
	once sync.Once
	url  string
	dir  atomic.Pointer[string]
}

func serveArchive(t testing.TB, dir string) string {
	t.Helper()
	server.once.Do(func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.FileServer(http.Dir(*server.dir.Load())).ServeHTTP(w, r)
		})}
		go srv.Serve(l)
		server.url = "http://" + l.Addr().String() + "/"
	})
	server.dir.Store(&dir)
	return server.url
}

// buildMachine gives a fresh btrfs machines_dir holding the test machine,
// and the [[dist]] table that builds in it, fetching from the archive a
// through apt_sources as a real host's local archive would.
func buildMachine(t testing.TB, a *archive) (machinesDir, dist string) {
	t.Helper()
	m := machinetest.New(t)
	return m.Dir, fmt.Sprintf(`[[dist]]
dist_name = "bookworm"
built_architecture = "amd64"
machine = %q
apt_sources = [
  "deb [trusted=yes] %s bookworm main",
  "deb-src [trusted=yes] %s bookworm main",
]
`, m.Machine, a.url, a.url)
}

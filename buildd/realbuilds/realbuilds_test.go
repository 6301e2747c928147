//go:build realbuilds

package realbuilds

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/control"
	"buildd/internal/debiandata"
	"buildd/internal/debversion"
	"buildd/internal/flock"
	"buildd/internal/machine/machinetest"
)

// chosen are the bookworm sources the test builds: small arch:any ones,
// each with why it is here. Which of them the mirror serves is probed at
// run time; at least minBuilt must be served.
var chosen = []struct{ name, why string }{
	{"hello", "debhelper-compat 13, help2man and texinfo; one binary"},
	{"tree", "debhelper-compat 13 alone; one binary"},
	{"pv", "debhelper 10; one binary"},
	{"sl", "libncurses5-dev; Debian's binary is a binNMU (Source: sl (5.02-1))"},
	{"bc", "bison, flex, texinfo, readline; two binaries (bc, dc), binNMU'd"},
	{"libyaml", "a library: two arch:any binaries beside the arch:all libyaml-doc that -B does not build"},
	{"ncdu", "its tarballs were 404 on the mirror here when chosen: a give-back at fetch-src"},
}

const (
	minBuilt   = 5
	lockPath   = "/var/lock/buildd-realbuilds.lock"
	lockedEnv  = "BUILDD_REALBUILDS_LOCKED" // set by make test-real, which holds lockPath with flock(1)
	dataEnv    = "BUILDD_REAL_DATA"
	builder    = "buildd_realbuilds"
	dist       = "bookworm"
	runTimeout = 45 * time.Minute
)

// src is a chosen source as the real Sources has it, and what the test
// learns about it.
type src struct {
	name, version string
	dir           string   // Directory
	files         []string // Files: the names
	// want is what Debian built of it for the architecture, from
	// Packages: binary package name → version without epoch (and without
	// a binNMU suffix).
	want map[string]string
	// missing are the files the mirror does not serve ("NAME: 404").
	missing []string
}

func (s *src) pkgv() string { return s.name + "_" + s.version }

func (s *src) served() bool { return len(s.missing) == 0 }

func TestRealBuilds(t *testing.T) {
	machinetest.Require(t)
	if os.Getenv(lockedEnv) == "" {
		t.Logf("taking %s (waiting up to 30 min for other heavy runs)", lockPath)
		lk, err := flock.Acquire(lockPath, flock.Exclusive, 0o644, 30*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lk.Unlock() })
	}
	start := time.Now()
	root := debiandata.ModuleRoot(t)
	bins := map[string]string{}
	for _, p := range []string{"buildd", "wanna-build"} {
		bins[p] = filepath.Join(root, "bin", p)
		if _, err := os.Stat(bins[p]); err != nil {
			t.Fatalf("%v: run make all first (make test-real does)", err)
		}
	}
	data := os.Getenv(dataEnv)
	if data == "" {
		data = filepath.Join(root, "..", "shared", "data", "debian-bookworm-main")
	}
	arch := machinetest.Arch(t)
	sourcesFile := filepath.Join(data, "Sources.xz")
	packagesFile := filepath.Join(data, "Packages-"+arch+".xz")
	for _, f := range []string{sourcesFile, packagesFile} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: the real bookworm indexes (set %s to their directory)", err, dataEnv)
		}
	}
	srcs := readSources(t, sourcesFile)
	tmp := t.TempDir()
	archiveBinaries := filepath.Join(tmp, "Packages-"+arch+"-without-chosen")
	readPackages(t, packagesFile, arch, srcs, archiveBinaries)

	m := machinetest.New(t)
	served := 0
	for _, c := range chosen {
		s := srcs[c.name]
		probe(t, m.Mirror, s)
		if s.served() {
			served++
			t.Logf("%s: served by the mirror; Debian built %s", s.pkgv(), mapString(s.want))
		} else {
			t.Logf("%s: the mirror does not serve %s: expecting a give-back at fetch-src", s.pkgv(), strings.Join(s.missing, ", "))
		}
	}
	if served < minBuilt {
		t.Fatalf("the mirror serves only %d of the %d chosen sources, fewer than %d: choose others", served, len(chosen), minBuilt)
	}

	home := filepath.Join(tmp, "home")
	conf := filepath.Join(tmp, "buildd.conf")
	var names []string
	for _, c := range chosen {
		names = append(names, regexp.QuoteMeta(c.name))
	}
	writeFile(t, conf, fmt.Sprintf(`home = %q
machines_dir = %q
wanna_build_db = %q
builder_name = %q
admin_mail = "admin@example.org"
mail_from = "buildd@example.org"
outbox = %q
max_build = 2
idle_sleep_time = 5
# A mirror that serves few of the sources must not pause the run.
max_sbuild_fails = 100
should_build_msgs = false

[[dist]]
dist_name = %q
built_architecture = %q
machine = %q
build_regex = '^[^/]*/(%s)_'
`, home, m.Dir, filepath.Join(home, "wanna-build.db"), builder, filepath.Join(home, "outbox"),
		dist, arch, m.Machine, strings.Join(names, "|")))
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	wb := func(args ...string) string {
		t.Helper()
		return run(t, 2*time.Minute, bins["wanna-build"], append([]string{"--config", conf, "--dist=" + dist, "-A", arch}, args...)...)
	}

	// The merge: the archive's binaries without the chosen sources' own,
	// the real Sources, the real Packages for build dependencies.
	t0 := time.Now()
	out := wb("-v", "--merge-v3", archiveBinaries, ".", sourcesFile, ".", packagesFile)
	t.Logf("merge (%.1f s): %s", time.Since(t0).Seconds(), lastLine(out))
	for _, c := range chosen {
		s := srcs[c.name]
		info := wbInfo(t, wb, c.name)[c.name]
		if info["State"] != "Needs-Build" || info["Version"] != s.version {
			t.Fatalf("%s after the merge: %s %s, want Needs-Build %s", c.name, info["State"], info["Version"], s.version)
		}
	}

	// The daemon, until every chosen source is done with.
	t0 = time.Now()
	daemon := startDaemon(t, bins["buildd"], conf, filepath.Join(tmp, "buildd.stderr"))
	waitDone(t, daemon, home, srcs, wb)
	daemon.stop(t)
	t.Logf("buildd --no-detach ran %.0f s", time.Since(t0).Seconds())

	states := wbInfo(t, wb, chosenNames()...)
	logs := jobLogs(t, home)
	built := 0
	for _, c := range chosen {
		s := srcs[c.name]
		t.Run(c.name, func(t *testing.T) {
			check(t, s, arch, home, states[c.name], logs[c.name], wb)
		})
		if states[c.name]["State"] == "Built" {
			built++
		}
	}
	for name := range logs {
		if !slices.Contains(chosenNames(), name) {
			t.Errorf("buildd built %s, which build_regex leaves out", name)
		}
	}
	if built < minBuilt {
		t.Errorf("%d sources built, want at least %d", built, minBuilt)
	}
	if left, _ := filepath.Glob(filepath.Join(m.Dir, m.Machine, "work-*")); len(left) > 0 {
		t.Errorf("working snapshots left behind: %v", left)
	}
	t.Logf("%d of %d sources built, whole test %.0f s", built, len(chosen), time.Since(start).Seconds())
}

// check holds one source's outcome to its rule: built and equal to
// Debian's binaries when the mirror serves it, else given back at
// fetch-src. Every job that failed at fetch-src must have been given back.
func check(t *testing.T, s *src, arch, home string, state map[string]string, logs []string, wb func(...string) string) {
	if len(logs) == 0 {
		t.Fatalf("%s: no job log: buildd never built it (state %s)", s.pkgv(), state["State"])
	}
	var last map[string]string
	for _, l := range logs {
		kv := summary(t, l)
		t.Logf("%s: %s%s, job %s s, build %s s", filepath.Base(l), kv["Status"], prefixed(" at ", kv["Fail-Stage"]), kv["Job-Time"], kv["Build-Time"])
		if kv["Fail-Stage"] == "fetch-src" && kv["Status"] != "given-back" {
			t.Errorf("%s: failed at fetch-src with status %s, want given-back", l, kv["Status"])
		}
		last = kv
	}
	if !s.served() {
		if last["Status"] != "given-back" || last["Fail-Stage"] != "fetch-src" {
			t.Errorf("%s (the mirror lacks %s): %s at %q (%s), want given-back at fetch-src",
				s.pkgv(), strings.Join(s.missing, ", "), last["Status"], last["Fail-Stage"], last["Fail-Reason"])
		}
		if state["State"] != "Needs-Build" {
			t.Errorf("%s: state %s after a give-back, want Needs-Build", s.pkgv(), state["State"])
		}
		if gb := readFile(t, filepath.Join(home, "build", "SBUILD-GIVEN-BACK")); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(s.pkgv()) + ` `).MatchString(gb) {
			t.Errorf("%s: not in build/SBUILD-GIVEN-BACK:\n%s", s.pkgv(), gb)
		}
		for _, l := range strings.Split(wb("--history", s.name), "\n") {
			if strings.Contains(l, "to Build-Attempted") || strings.Contains(l, "to Failed") {
				t.Errorf("%s: %s", s.pkgv(), l)
			}
		}
		return
	}
	if last["Status"] != "successful" || state["State"] != "Built" {
		t.Fatalf("%s: %s at %q (%s), state %s; want successful and Built (log %s)",
			s.pkgv(), last["Status"], last["Fail-Stage"], last["Fail-Reason"], state["State"], logs[len(logs)-1])
	}
	checkChanges(t, s, arch, filepath.Join(home, "build", debversion.PkgVersion{Name: s.name, Version: s.version}.NoEpoch().String()+"_"+arch+".changes"))
}

// checkChanges checks that the .changes ch holds exactly the binaries
// Debian built of s for arch (s.want), each NAME_VERSION_ARCH.deb, and
// the debug packages of those.
func checkChanges(t testing.TB, s *src, arch, ch string) {
	t.Helper()
	name := filepath.Base(ch)
	data, err := os.ReadFile(ch)
	if err != nil {
		t.Fatal(err)
	}
	c, err := control.ParseChanges(ch, data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var dbgsym []string
	for _, f := range c.Files {
		if !strings.HasSuffix(f.Name, ".deb") {
			continue
		}
		parts := strings.Split(strings.TrimSuffix(f.Name, ".deb"), "_")
		if len(parts) != 3 {
			t.Errorf("%s: %s is not NAME_VERSION_ARCH.deb", name, f.Name)
			continue
		}
		if parts[2] != arch {
			t.Errorf("%s: %s is not for %s (dpkg-buildpackage -B)", name, f.Name, arch)
		}
		if strings.HasSuffix(parts[0], "-dbgsym") {
			dbgsym = append(dbgsym, parts[0])
			continue
		}
		got[parts[0]] = parts[1]
	}
	for _, d := range dbgsym {
		if _, ok := got[strings.TrimSuffix(d, "-dbgsym")]; !ok {
			t.Errorf("%s: %s is the debug package of no binary built", name, d)
		}
	}
	for bin, want := range s.want {
		switch g, ok := got[bin]; {
		case !ok:
			t.Errorf("%s: lacks %s %s, which Debian built for %s", name, bin, want, arch)
		case g != want:
			t.Errorf("%s: %s %s, Debian built %s", name, bin, g, want)
		}
	}
	for bin, g := range got {
		if _, ok := s.want[bin]; !ok {
			t.Errorf("%s: %s %s, which Debian did not build for %s", name, bin, g, arch)
		}
	}
	t.Logf("%s: %s (and %d -dbgsym) as Debian built them", name, mapString(got), len(dbgsym))
}

func chosenNames() []string {
	var out []string
	for _, c := range chosen {
		out = append(out, c.name)
	}
	return out
}

// readSources reads the chosen sources' newest versions from Sources.
func readSources(t testing.TB, path string) map[string]*src {
	t.Helper()
	out := map[string]*src{}
	each(t, path, []string{"Package", "Version", "Directory", "Files"}, func(p *control.Paragraph) {
		name := p.Get("Package")
		if !slices.Contains(chosenNames(), name) {
			return
		}
		if old := out[name]; old != nil && debversion.Compare(old.version, p.Get("Version")) >= 0 {
			return
		}
		s := &src{name: name, version: p.Get("Version"), dir: p.Get("Directory"), want: map[string]string{}}
		for _, l := range strings.Split(p.Get("Files"), "\n") {
			if f := strings.Fields(l); len(f) == 3 {
				s.files = append(s.files, f[2])
			}
		}
		out[name] = s
	})
	for _, n := range chosenNames() {
		if s := out[n]; s == nil || s.dir == "" || len(s.files) == 0 {
			t.Fatalf("%s: no source %s with Directory and Files", path, n)
		}
	}
	return out
}

// readPackages fills each chosen source's want from Packages and writes
// the archive's binaries without the chosen sources' arch:any ones (the
// fields the merge reads) to archive.
func readPackages(t testing.TB, path, arch string, srcs map[string]*src, archive string) {
	t.Helper()
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	each(t, path, []string{"Package", "Version", "Architecture", "Source"}, func(p *control.Paragraph) {
		pkg, ver, pkgArch, source := p.Get("Package"), p.Get("Version"), p.Get("Architecture"), p.Get("Source")
		srcName, srcVer := pkg, ver
		if source != "" {
			n, v, ok := control.SplitSource(source)
			if !ok {
				t.Fatalf("%s:%d: Source %q", path, p.Line, source)
			}
			srcName = n
			if v != "" {
				srcVer = v
			}
		}
		if s := srcs[srcName]; s != nil && pkgArch != "all" {
			if srcVer == s.version {
				if pkgArch != arch {
					t.Fatalf("%s:%d: %s is for %s", path, p.Line, pkg, pkgArch)
				}
				s.want[pkg] = ourVersion(ver, srcVer)
			}
			return
		}
		fmt.Fprintf(w, "Package: %s\nVersion: %s\nArchitecture: %s\n", pkg, ver, pkgArch)
		if source != "" {
			fmt.Fprintf(w, "Source: %s\n", source)
		}
		w.WriteString("\n")
	})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		if len(s.want) == 0 {
			t.Fatalf("%s: Debian built no %s binaries of %s: choose another source", path, arch, s.pkgv())
		}
	}
}

// ourVersion is the version our build gives a binary Debian has as ver,
// without epoch (as in .deb file names): a binNMU's "+bN" comes off, since
// the queue schedules no binNMU.
func ourVersion(ver, srcVer string) string {
	if rest, ok := strings.CutPrefix(ver, srcVer+"+b"); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
		ver = srcVer
	}
	if _, v, ok := strings.Cut(ver, ":"); ok {
		return v
	}
	return ver
}

func each(t testing.TB, path string, keep []string, fn func(*control.Paragraph)) {
	t.Helper()
	rc, err := control.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := control.NewReader(rc, path).Keep(keep...)
	for {
		p, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(p)
	}
}

// probe asks the mirror for each of the source's files and records those
// it does not serve.
func probe(t *testing.T, mirror string, s *src) {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	for _, f := range s.files {
		url := strings.TrimSuffix(mirror, "/") + "/" + s.dir + "/" + f
		resp, err := client.Head(url)
		if err != nil {
			t.Fatalf("%s: probing the mirror: %v", s.pkgv(), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			s.missing = append(s.missing, fmt.Sprintf("%s: %d", f, resp.StatusCode))
		}
	}
}

// daemon is a running buildd --no-detach.
type daemon struct {
	cmd    *exec.Cmd
	done   chan error
	stderr string
}

func startDaemon(t *testing.T, bin, conf, stderr string) *daemon {
	t.Helper()
	f, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: exec.Command(bin, "--config", conf, "--no-detach"), done: make(chan error, 1), stderr: stderr}
	d.cmd.Stdout, d.cmd.Stderr = f, f
	d.cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(3 * time.Minute):
				d.cmd.Process.Kill()
				<-d.done
			}
		}
	})
	return d
}

func (d *daemon) tail() string {
	data, _ := os.ReadFile(d.stderr)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-60):], "\n")
}

// stop sends SIGTERM and waits for exit status 0.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("buildd: %v\n%s", err, d.tail())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("buildd did not stop within 3 min of SIGTERM\n%s", d.tail())
	}
}

// waitDone waits until every chosen source is built, failed or given back
// and no job runs.
func waitDone(t *testing.T, d *daemon, home string, srcs map[string]*src, wb func(...string) string) {
	t.Helper()
	deadline := time.Now().Add(runTimeout)
	report := time.Now()
	for {
		select {
		case err := <-d.done:
			t.Fatalf("buildd exited early: %v\n%s", err, d.tail())
		case <-time.After(5 * time.Second):
		}
		states := wbInfo(t, wb, chosenNames()...)
		givenBack := readFile(t, filepath.Join(home, "build", "SBUILD-GIVEN-BACK"))
		running := strings.TrimSpace(readFile(t, filepath.Join(home, "build", "BUILDING")))
		var waiting []string
		for _, n := range chosenNames() {
			st := states[n]["State"]
			switch {
			case st == "Built", st == "Build-Attempted", st == "Failed", st == "Dep-Wait":
			case st == "Needs-Build" && strings.Contains("\n"+givenBack, "\n"+srcs[n].pkgv()+" "):
			default:
				waiting = append(waiting, n+" "+st)
			}
		}
		if len(waiting) == 0 && running == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v still waiting for %s\n%s", runTimeout, strings.Join(waiting, ", "), d.tail())
		}
		if time.Since(report) > time.Minute {
			t.Logf("waiting for %s", strings.Join(waiting, ", "))
			report = time.Now()
		}
	}
}

// wbInfo is wanna-build --info of the names: name → field → value.
func wbInfo(t *testing.T, wb func(...string) string, names ...string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, l := range strings.Split(wb(append([]string{"--info"}, names...)...), "\n") {
		if l != "" && l[0] != ' ' && strings.HasSuffix(l, ":") {
			cur = map[string]string{}
			out[strings.TrimSuffix(l, ":")] = cur
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok && cur != nil {
			cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// jobLogs returns home's job logs by source name, oldest first.
func jobLogs(t *testing.T, home string) map[string][]string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(home, "logs", "*.build"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths) // the names end in the UTC time of the job
	out := map[string][]string{}
	for _, p := range paths {
		name, _, _ := strings.Cut(filepath.Base(p), "_")
		out[name] = append(out[name], p)
	}
	return out
}

// summary is the Summary block at the end of a job log.
func summary(t testing.TB, log string) map[string]string {
	t.Helper()
	text := readFile(t, log)
	i := strings.LastIndex(text, "| Summary ")
	if i < 0 {
		t.Fatalf("%s: no Summary section", log)
	}
	kv := map[string]string{}
	lines := strings.Split(text[i:], "\n")
	for _, l := range lines[min(2, len(lines)):] {
		if l == "" && len(kv) > 0 {
			break
		}
		if k, v, ok := strings.Cut(l, ": "); ok {
			kv[k] = v
		}
	}
	return kv
}

func run(t *testing.T, timeout time.Duration, prog string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, prog, args...)
	c.Env = append(os.Environ(), "BUILDD_CONF=")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func mapString(m map[string]string) string {
	var out []string
	for k, v := range m {
		out = append(out, k+" "+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

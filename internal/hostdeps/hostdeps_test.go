package hostdeps

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"buildd/internal/debiandata"
)

// notRun are words the sources hold that name a program on a full host
// but are not run as one: each with the reason.
var notRun = map[string]string{
	"buildd":          "our program (bin/), also the classic suite's package name",
	"buildd-mail":     "our program; the classic one is only benchmarked when installed",
	"buildd-uploader": "our program",
	"buildd-watcher":  "our program",
	"wanna-build":     "our program",
}

// TestEveryProgramIsInstalled finds every external program the code, the
// tests and the scripts run and fails when the Debian package that ships
// it is neither on the base machine image nor installed by `make deps`
// (DEB_DEPS and what they depend on): such a program is there on the
// machine that wrote the test and missing on a fresh one.
func TestEveryProgramIsInstalled(t *testing.T) {
	root := debiandata.ModuleRoot(t)
	base := readList(t, "testdata/base-image-packages.txt")
	deps := debDeps(t, filepath.Join(root, "Makefile"))
	installed := dependencyClosure(t, deps)
	used, required, selfInstalled := programs(t, root)
	files := owners(t)
	if len(used) < 20 {
		t.Fatalf("found only %d programs in %s: the scan is broken", len(used), root)
	}
	var missing []string
	for prog, where := range used {
		if _, ok := notRun[prog]; ok {
			continue
		}
		path, err := exec.LookPath(prog)
		if err != nil {
			if where, ok := required[prog]; ok {
				// make test installs DEB_DEPS before the tests run: a
				// program Go code runs that is still missing would make
				// its test skip or fail on every fresh host.
				missing = append(missing, prog+" (not installed; run in "+where+")")
			}
			continue // not a program on this host either: a word, not a command
		}
		pkg, ok := owner(files, path)
		switch {
		case !ok && (strings.HasPrefix(path, "/usr/local/") || strings.HasPrefix(path, root)):
			// The base image's Go and PostgreSQL wrappers, or our own bin/.
		case !ok:
			missing = append(missing, prog+" ("+path+", in no package; used in "+where+")")
		case base[pkg] || installed[pkg]:
		case selfInstalled[prog][pkg]:
			// Run only by scripts that install its package themselves.
		default:
			missing = append(missing, prog+" (package "+pkg+", used in "+where+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not on a fresh host: %s: add its package to DEB_DEPS in the Makefile (or, in a script that installs it itself, to its `# hostdeps: installs` line)", m)
	}
	t.Logf("%d program names checked; %d packages installed by make deps", len(used), len(installed))
}

// TestInstallsDeclaration: a script's `# hostdeps: installs PKG...` line
// excuses the programs of those packages in that script only; a program
// also run elsewhere, or by a script that does not install its package,
// is checked as usual.
func TestInstallsDeclaration(t *testing.T) {
	// Made-up names: a real one in a string literal here would count as run
	// by this file.
	root := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("a.sh", "#!/bin/sh\n# hostdeps: installs pkg-one pkg-two\nprog-one -v\nprog-two -l\nmount\n")
	write("b.sh", "#!/bin/sh\n# hostdeps: installs pkg-one\nprog-one -v\nprog-two -l\n")
	write("c.sh", "#!/bin/sh\nmount\n")
	found, _, self := programs(t, root)
	for _, p := range []string{"prog-one", "prog-two", "mount"} {
		if _, ok := found[p]; !ok {
			t.Errorf("%s not found at all", p)
		}
	}
	if !self["prog-one"]["pkg-one"] || self["prog-one"]["pkg-two"] {
		t.Errorf("prog-one: self-installed by %v, want pkg-one only (what both scripts install)", self["prog-one"])
	}
	if self["prog-two"]["pkg-two"] {
		t.Errorf("prog-two is excused, but b.sh runs it without installing pkg-two")
	}
	if _, ok := self["mount"]; ok {
		t.Errorf("mount is excused, but c.sh runs it without a declaration")
	}
}

func readList(t *testing.T, path string) map[string]bool {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out[l] = true
		}
	}
	return out
}

// debDeps reads DEB_DEPS (with its continuation lines) from the Makefile.
func debDeps(t *testing.T, makefile string) []string {
	data, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^DEB_DEPS\s*:=((?:[^\n]*\\\n)*[^\n]*)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s: no DEB_DEPS", makefile)
	}
	return strings.Fields(strings.ReplaceAll(string(m[1]), "\\", " "))
}

// dependencyClosure is pkgs and every installed package they depend on
// (Depends and Pre-Depends, as apt-get install --no-install-recommends
// installs them), from dpkg's database.
func dependencyClosure(t *testing.T, pkgs []string) map[string]bool {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package}\t${Provides}\t${Depends}, ${Pre-Depends}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	depends := map[string][]string{}
	provider := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.SplitN(l, "\t", 3)
		if len(f) != 3 {
			continue
		}
		depends[f[0]] = strings.Split(f[2], ",")
		for _, p := range strings.Split(f[1], ",") {
			if p = firstWord(p); p != "" {
				provider[p] = f[0]
			}
		}
	}
	seen := map[string]bool{}
	queue := append([]string{}, pkgs...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		for _, dep := range depends[p] {
			// Of alternatives, the installed one.
			for _, alt := range strings.Split(dep, "|") {
				name := strings.SplitN(firstWord(alt), ":", 2)[0]
				if _, ok := depends[name]; ok {
					queue = append(queue, name)
					break
				}
				if prov, ok := provider[name]; ok {
					queue = append(queue, prov)
					break
				}
			}
		}
	}
	return seen
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// owners maps each file dpkg installed to its package, from dpkg's file
// lists.
func owners(t *testing.T) map[string]string {
	lists, err := filepath.Glob("/var/lib/dpkg/info/*.list")
	if err != nil || len(lists) == 0 {
		t.Fatalf("no dpkg file lists in /var/lib/dpkg/info (%v)", err)
	}
	out := map[string]string{}
	for _, l := range lists {
		pkg := strings.SplitN(strings.TrimSuffix(filepath.Base(l), ".list"), ":", 2)[0]
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Split(string(data), "\n") {
			if strings.Contains(f, "bin/") {
				out[f] = pkg
			}
		}
	}
	return out
}

// owner is the package that ships the program found at path: the path
// itself, its target, or the same name in a system bin directory (dpkg
// lists /bin/cp for what a merged /usr shows as /usr/bin/cp; a shim such
// as pyenv's stands before the system's program).
func owner(files map[string]string, path string) (string, bool) {
	cands := []string{path, resolve(path)}
	for _, dir := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"} {
		cands = append(cands, filepath.Join(dir, filepath.Base(path)))
	}
	for _, c := range cands {
		if pkg, ok := files[c]; ok {
			return pkg, true
		}
	}
	return "", false
}

func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

var (
	// A string literal that may name a program (Go, Emacs Lisp).
	literalRE = regexp.MustCompile(`"([a-z][a-z0-9.+_-]*)"`)
	// A program Go code runs or looks up by name: the first argument of
	// exec.Command, exec.CommandContext and exec.LookPath, and every
	// argument of a test's need(t, ...).
	runRE  = regexp.MustCompile(`exec\.(?:Command|LookPath)\(\s*"([a-z][a-z0-9.+_-]*)"|exec\.CommandContext\(\s*\w+,\s*"([a-z][a-z0-9.+_-]*)"`)
	needRE = regexp.MustCompile(`\bneed\(t,((?:\s*"[a-z][a-z0-9.+_-]*",?)+)\)`)
	// A word in command position of a shell or make recipe line.
	commandRE = regexp.MustCompile(`(?:^|[|;&(]|\$\(|\bthen\b|\bdo\b|\bexec\b|\btimeout \d+\b|\bif\b|!)\s*([a-z][a-z0-9.+_-]*)`)
	// A shell script's declaration of the Debian packages it installs
	// itself when they are missing (apt-get install): the programs of
	// these packages it runs need not be on a fresh host.
	installsRE = regexp.MustCompile(`^#\s*hostdeps:\s*installs\s+(.*)$`)
)

// programs returns every name the sources may run, with one place that
// names it, and (required) those Go code certainly runs by name.
// selfInstalled maps a name that only scripts with a `# hostdeps: installs
// PKG...` line run to the packages every one of them installs.
func programs(t *testing.T, root string) (found, required map[string]string, selfInstalled map[string]map[string]bool) {
	found, required, selfInstalled = map[string]string{}, map[string]string{}, map[string]map[string]bool{}
	plain := map[string]bool{} // run somewhere without a declaration
	add := func(name, where string, installs map[string]bool) {
		if _, ok := found[name]; !ok {
			found[name] = where
		}
		if installs == nil {
			plain[name] = true
			return
		}
		if prev, ok := selfInstalled[name]; ok {
			both := map[string]bool{}
			for p := range prev {
				both[p] = installs[p]
			}
			installs = both
		}
		selfInstalled[name] = installs
	}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if name == ".git" || name == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		var re *regexp.Regexp
		switch {
		case strings.HasSuffix(name, ".go"), strings.HasSuffix(name, ".el"):
			re = literalRE
		case strings.HasSuffix(name, ".sh"), name == "Makefile", name == "run" && strings.HasPrefix(rel, ".ci"),
			strings.HasSuffix(name, ".service"), strings.HasSuffix(name, ".cron"):
			re = commandRE
		default:
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var installs map[string]bool // this script's declaration
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Bytes()
			if m := installsRE.FindSubmatch(bytes.TrimSpace(line)); m != nil && strings.HasSuffix(name, ".sh") {
				if installs == nil {
					installs = map[string]bool{}
				}
				for _, p := range strings.Fields(string(m[1])) {
					installs[p] = true
				}
			}
			if i := bytes.Index(line, []byte("//")); re == literalRE && i >= 0 && bytes.Count(line[:i], []byte(`"`))%2 == 0 {
				line = line[:i]
			}
			if trimmed := bytes.TrimSpace(line); bytes.HasPrefix(trimmed, []byte("#")) || bytes.HasPrefix(trimmed, []byte(";")) {
				continue
			}
			where := fmt.Sprintf("%s:%d", rel, n)
			for _, m := range re.FindAllSubmatch(line, -1) {
				add(string(m[1]), where, installs)
			}
			if re == literalRE && strings.HasSuffix(name, ".go") {
				for _, m := range runRE.FindAllSubmatch(line, -1) {
					required[string(m[1])+string(m[2])] = where
				}
				for _, m := range needRE.FindAllSubmatch(line, -1) {
					for _, l := range literalRE.FindAllSubmatch(m[1], -1) {
						required[string(l[1])] = where
					}
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range plain {
		delete(selfInstalled, name)
	}
	return found, required, selfInstalled
}

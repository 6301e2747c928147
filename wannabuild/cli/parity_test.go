package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"buildd/internal/control"
	"buildd/internal/debiandata"
	"buildd/internal/queue"
	"buildd/internal/queue/store/storetest"
)

// classicDifferences are the sources where our merge deliberately differs
// from the classic wanna-build's on the bookworm data, by "ARCH/SOURCE",
// each with the README's reason (Deliberate differences).
var classicDifferences = map[string]string{
	// Its own binaries at 11.3.0-12 are in Packages, but libhwasan0 (on the
	// first line of its Binary field, the only line the classic merge
	// reads) is now built by gcc-12: the classic merge skips it as
	// outdated, we register it Installed.
	"arm64/gcc-11": "installed, though one binary is built by a newer source",
}

// classicRow is one line of testdata/parity/classic-ARCH.tsv.xz: what the
// classic --merge-v3 made of a source in an empty database.
type classicRow struct {
	version, status, state, notes, binnmu string
}

// TestMergeParityWithClassic merges the real bookworm indexes for amd64 and
// arm64 into an empty queue and checks, source by source, that every
// source is registered as the classic wanna-build registers it (state,
// version, notes, binNMU) and that what the classic one skips we skip. The
// oracle is the classic code's own output, recorded by
// testdata/parity/make-classic.sh; the sources covering the tricky cases
// (several stanzas, Extra-Source-Only, "any all", linux-any, any-ARCH,
// binNMUs, epochs) are counted and must be there.
func TestMergeParityWithClassic(t *testing.T) {
	t.Setenv(EnvNow, now)
	data := debiandata.Path(t, "debian-bookworm-main")
	sources := filepath.Join(data, "Sources.xz")
	cases := caseSources(t, sources)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			packages := filepath.Join(data, "Packages-"+arch+".xz")
			fixture := filepath.Join("testdata", "parity", "classic-"+arch+".tsv.xz")
			pas := filepath.Join("testdata", "parity", "Packages-arch-specific")
			classic := readClassic(t, fixture, sources, packages, pas)
			ours := mergeExport(t, arch, packages, sources, pas)
			binNMUs := binNMUSources(t, packages)

			var diffs []string
			for _, name := range unionNames(classic, ours) {
				c, haveC := classic[name]
				r, haveR := ours[name]
				if !haveC {
					diffs = append(diffs, fmt.Sprintf("%s: not in the classic output; ours: %s", name, describe(r)))
					continue
				}
				want := expectedRecord(c)
				got := "not registered"
				if haveR {
					got = describe(r)
				}
				if got == want {
					continue
				}
				if reason, ok := classicDifferences[arch+"/"+name]; ok {
					t.Logf("%s/%s: deliberate difference (%s): classic %s, ours %s", arch, name, reason, want, got)
					continue
				}
				diffs = append(diffs, fmt.Sprintf("%s_%s: classic (%s) %s; ours %s", name, c.version, c.status, want, got))
			}
			if len(diffs) > 0 {
				t.Errorf("%d sources differ from the classic wanna-build on %s:\n%s", len(diffs), arch, strings.Join(firstN(diffs, 40), "\n"))
			}

			// The tricky cases must be in the data, and so compared.
			cases["binNMU in Packages"] = binNMUs
			for c, names := range pasCases(t, pas) {
				cases[c] = names
			}
			for _, c := range sortedCaseNames(cases) {
				names := cases[c]
				if len(names) == 0 {
					t.Errorf("no source in the data covers %q", c)
					continue
				}
				t.Logf("%s: %d sources compared (e.g. %s)", c, len(names), strings.Join(firstN(names, 3), ", "))
			}
			for key := range classicDifferences {
				if a, name, _ := strings.Cut(key, "/"); a == arch {
					if _, ok := classic[name]; !ok {
						t.Errorf("classicDifferences names %s, which is not in the data", key)
					}
				}
			}
		})
	}
}

// expectedRecord is what our queue should hold for a classic row: the same
// state, version, notes and binNMU; an arch-all-only source, which the
// classic merge skips, is Auto-Not-For-Us (README: Deliberate differences).
func expectedRecord(c classicRow) string {
	switch {
	case c.state == "-" && c.status == queue.StatusArchAllOnly:
		return describe(&queue.Record{Version: c.version, State: queue.AutoNotForUs, Notes: c.status})
	case c.state == "-":
		return "not registered"
	}
	r := &queue.Record{Version: c.version, State: queue.State(c.state), Notes: c.notes}
	if c.binnmu != "" && c.binnmu != "0" {
		fmt.Sscan(c.binnmu, &r.BinNMU)
	}
	return describe(r)
}

func describe(r *queue.Record) string {
	s := fmt.Sprintf("%s %s", r.Version, r.State)
	if r.Notes != "" {
		s += " notes=" + r.Notes
	}
	if r.BinNMU != 0 {
		s += fmt.Sprintf(" binnmu=%d", r.BinNMU)
	}
	return s
}

// readClassic reads a fixture, checking that it was made from these inputs.
func readClassic(t *testing.T, fixture string, inputs ...string) map[string]classicRow {
	t.Helper()
	out, err := exec.Command("xz", "-dc", fixture).Output()
	if err != nil {
		t.Fatalf("xz -dc %s: %v", fixture, err)
	}
	sums := map[string]string{}
	for _, in := range inputs {
		sums[filepath.Base(in)] = sha256File(t, in)
	}
	rows := map[string]classicRow{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# sha256 "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || sums[f[1]] != f[0] {
				t.Fatalf("%s:%d: made from another %s than %s (sha256 %s): run testdata/parity/make-classic.sh again", fixture, n, f[len(f)-1], filepath.Dir(inputs[0]), sums[f[len(f)-1]])
			}
			delete(sums, f[1])
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 6 {
			t.Fatalf("%s:%d: want 6 tab-separated fields, got %q", fixture, n, line)
		}
		rows[f[0]] = classicRow{version: f[1], status: f[2], state: f[3], notes: f[4], binnmu: f[5]}
	}
	if len(sums) > 0 {
		t.Fatalf("%s: no sha256 line for %v", fixture, sums)
	}
	return rows
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// mergeExport runs our --merge-v3 into an empty queue and reads it back
// through --export.
func mergeExport(t *testing.T, arch, packages, sources, pas string) map[string]*queue.Record {
	t.Helper()
	db := storetest.New(t)
	var out, errb bytes.Buffer
	args := []string{"--db", db, "--dist=bookworm", "--arch=" + arch}
	if code := Main(append(args, "--merge-v3", packages, ".", sources, ".", packages, ".", pas), strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("merge-v3 %s: exit %d: %s", arch, code, errb.String())
	}
	export := filepath.Join(t.TempDir(), "parity.export")
	if code := Main(append(args, "--export", export), strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("export %s: exit %d: %s", arch, code, errb.String())
	}
	f, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := queue.ReadExport(f, export)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]*queue.Record, len(recs))
	for _, r := range recs {
		m[r.Package] = r
	}
	return m
}

// caseSources finds, in Sources, the sources of each tricky case.
func caseSources(t *testing.T, sources string) map[string][]string {
	t.Helper()
	cases := map[string][]string{}
	stanzas := map[string]int{}
	add := func(c, name string) {
		if l := cases[c]; len(l) == 0 || l[len(l)-1] != name {
			cases[c] = append(l, name)
		}
	}
	eachStanza(t, sources, func(p *control.Paragraph) {
		name := p.Get("Package")
		stanzas[name]++
		if stanzas[name] == 2 {
			add("several stanzas", name)
		}
		if p.Get("Extra-Source-Only") == "yes" {
			add("Extra-Source-Only stanza", name)
		}
		arch := " " + p.Get("Architecture") + " "
		if strings.Contains(arch, " all ") && strings.Contains(arch, " any ") {
			add(`Architecture: any all`, name)
		}
		if strings.Contains(arch, " linux-any ") {
			add("linux-any", name)
		}
		if strings.Contains(arch, " any-arm64 ") || strings.Contains(arch, " any-amd64 ") {
			add("any-ARCH", name)
		}
		if strings.Contains(p.Get("Version"), ":") {
			add("epoch", name)
		}
	})
	for c := range cases {
		sort.Strings(cases[c])
	}
	return cases
}

// pasCases are the entries of the Packages-arch-specific file by kind.
func pasCases(t *testing.T, pas string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(pas)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		name, list, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kind := "binary"
		if strings.HasPrefix(name, "%") {
			kind = "source"
		}
		if strings.HasPrefix(strings.TrimSpace(list), "!") {
			kind = "Packages-arch-specific negated " + kind + " list"
		} else {
			kind = "Packages-arch-specific " + kind + " list"
		}
		cases[kind] = append(cases[kind], strings.TrimPrefix(name, "%"))
	}
	return cases
}

// binNMUSources are the sources with a binNMU (+bN) binary in Packages.
func binNMUSources(t *testing.T, packages string) []string {
	t.Helper()
	seen := map[string]bool{}
	eachStanza(t, packages, func(p *control.Paragraph) {
		if src, ver, ok := strings.Cut(p.Get("Source"), " ("); ok && strings.Contains(ver, ")") && strings.Contains(p.Get("Version"), "+b") {
			seen[src] = true
		}
	})
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func eachStanza(t *testing.T, path string, fn func(*control.Paragraph)) {
	t.Helper()
	rc, err := control.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rd := control.NewReader(rc, path)
	for {
		p, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(p)
	}
}

func unionNames(a map[string]classicRow, b map[string]*queue.Record) []string {
	names := make([]string, 0, len(a))
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func sortedCaseNames(m map[string][]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("... and %d more", len(s)-n))
	}
	return s
}

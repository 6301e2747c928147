package debversion_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/control"
	"buildd/internal/debiandata"
	. "buildd/internal/debversion"
)

// hardCases are pairs chosen for the corners of dpkg's ordering; want is
// the expected Compare(a, b), and every pair is also checked with dpkg.
var hardCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.0-0", 0},
	{"1.0-0", "1.0-", 0}, // "1.0-" is refused by dpkg; Compare still orders it
	{"0:1.0", "1.0", 0},
	{"0:1", "1", 0},
	{"00:1", "1", 0},
	{"1:1.0", "1.0", 1},
	{"1:0.1", "2.0", 1},
	{"2:1.0", "10:0.5", -1},
	{"01:1.0", "1:1.0", 0},
	{"1.0~rc1", "1.0", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0~~a", "1.0~~", 1},
	{"1.0~", "1.0", -1},
	{"1.0~", "1.0-1", -1},
	{"1.0-1~bpo1", "1.0-1", -1},
	{"1.0+dfsg", "1.0", 1},
	{"1.0+dfsg", "1.0.1", -1},
	{"1.0+b1", "1.0", 1},
	{"1.0-1+b1", "1.0-1", 1},
	{"1.0-1+b1", "1.0-1.1", -1},
	{"1.0.", "1.0", 1},
	{"1.0a", "1.0", 1},
	{"1.0a", "1.0+", -1},
	{"1.0a", "1.0.", -1},
	{"1.0A", "1.0a", -1},
	{"1.0Z", "1.0a", -1},
	{"1.0z", "1.0+", -1},
	{"1.01", "1.1", 0},
	{"1.001", "1.1", 0},
	{"1.0010", "1.10", 0},
	{"1.00", "1.0", 0},
	{"1.0", "1", 1},
	{"1.0", "1.", 0},
	{"1.", "1", 1},
	{"1.2.3", "1.2.10", -1},
	{"1.10", "1.9", 1},
	{"10", "9", 1},
	{"0010", "9", 1},
	{"1.0-1", "1.0-01", 0},
	{"1.0-a", "1.0-1", 1},
	{"1.0-1-1", "1.0-1", 1},
	{"1.0-1-1", "1.0-2", 1}, // the revision follows the last "-"
	{"1:1.0-1", "1:1.0-1", 0},
	{"1.0-1ubuntu1", "1.0-1", 1},
	{"1.0-1ubuntu1", "1.0-2", -1},
	{"2.30-7", "2.30-7+deb12u1", -1},
	{"7.6.p2-4", "7.6.0-4", 1},
	{"1.2a", "1.2b", -1},
	{"1.2a1", "1.2a", 1},
	{"a", "1", 1},
	{"a", "b", -1},
	{"1:a", "1:1", 1},
	{"4.2.0~rc1+git20220101", "4.2.0~rc1", 1},
	{"0.0~git20230101.abcdef-1", "0.0~git20221231.fedcba-3", 1},
	{"1.0~beta~1", "1.0~beta", -1},
	{"9999999999999999999", "1", 1},
	{"1.99999999999999999999", "1.100000000000000000000", -1},
	{" 1.0 ", "1.0", 0},
	{"1.0_", "1.0+", 1},     // invalid characters: dpkg warns, still orders
	{"1.0\xc3", "1.0+", -1}, // bytes >= 0x80 are signed chars in dpkg
	{"1.0\xc3", "1.0a", 1},
}

func TestCompareHardCases(t *testing.T) {
	pairs := make([][2]string, len(hardCases))
	for i, c := range hardCases {
		pairs[i] = [2]string{c.a, c.b}
		if got := Compare(c.a, c.b); got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Compare(c.b, c.a); got != -c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
	for i, d := range dpkgCompare(t, pairs) {
		if d == dpkgRefused {
			continue // nothing to agree with
		}
		if d != hardCases[i].want {
			t.Errorf("dpkg --compare-versions %q %q gives %d, the table says %d", pairs[i][0], pairs[i][1], d, hardCases[i].want)
		}
	}
}

// TestCompareAgainstDpkgSources compares Compare with dpkg on version pairs
// drawn from the real bookworm Sources: neighbours in sorted order (the
// closest, hardest pairs), versions of the same source, variants of real
// versions (binNMU, backport, ~ and + suffixes, epochs) and random pairs.
func TestCompareAgainstDpkgSources(t *testing.T) {
	versions, byName := sourcesVersions(t)
	rng := rand.New(rand.NewSource(20240601))
	var pairs [][2]string
	for _, vs := range byName {
		for i := 1; i < len(vs); i++ {
			pairs = append(pairs, [2]string{vs[i-1], vs[i]})
		}
	}
	sameName := len(pairs)

	sorted := append([]string(nil), versions...)
	sort.Slice(sorted, func(i, j int) bool { return Compare(sorted[i], sorted[j]) < 0 })
	for i := 1; i < len(sorted); i += 2 {
		pairs = append(pairs, [2]string{sorted[i-1], sorted[i]})
	}
	neighbours := len(pairs) - sameName

	suffixes := []string{"~", "~~", "+b1", "~bpo12+1", "+deb12u1", "+", ".", "a", "-0", "-1", ".0", "0"}
	for i := 0; i < 4000; i++ {
		v := versions[rng.Intn(len(versions))]
		w := v + suffixes[rng.Intn(len(suffixes))]
		if rng.Intn(4) == 0 && !strings.Contains(v, ":") {
			w = "1:" + v
		}
		if _, err := Parse(w); err == nil {
			pairs = append(pairs, [2]string{v, w})
		}
	}
	variants := len(pairs) - sameName - neighbours

	for i := 0; i < 10000; i++ {
		pairs = append(pairs, [2]string{versions[rng.Intn(len(versions))], versions[rng.Intn(len(versions))]})
	}
	t.Logf("%d distinct versions", len(versions))
	if len(pairs) < 20000 {
		t.Fatalf("only %d pairs drawn from Sources", len(pairs))
	}
	t.Logf("%d pairs: %d same-source, %d sorted neighbours, %d variants, %d random",
		len(pairs), sameName, neighbours, variants, len(pairs)-sameName-neighbours-variants)

	bad := 0
	for i, d := range dpkgCompare(t, pairs) {
		if got := Compare(pairs[i][0], pairs[i][1]); got != d {
			bad++
			if bad <= 20 {
				t.Errorf("Compare(%q, %q) = %d, dpkg says %d", pairs[i][0], pairs[i][1], got, d)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d disagreements with dpkg out of %d pairs", bad, len(pairs))
	}
}

// sourcesVersions returns every Version of the real Sources (distinct) and
// the versions of each source that has several.
func sourcesVersions(t *testing.T) ([]string, map[string][]string) {
	path := debiandata.Path(t, "debian-bookworm-main/Sources.xz")
	rc, err := control.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := control.NewReader(rc, path).Keep("Package", "Version")
	seen := map[string]bool{}
	all := map[string][]string{}
	var versions []string
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		v := p.Get("Version")
		all[p.Get("Package")] = append(all[p.Get("Package")], v)
		if !seen[v] {
			seen[v] = true
			versions = append(versions, v)
		}
	}
	byName := map[string][]string{}
	for n, vs := range all {
		if len(vs) > 1 {
			byName[n] = vs
		}
	}
	return versions, byName
}

// dpkgRefused is dpkgCompare's answer when dpkg refuses a version.
const dpkgRefused = 2

// dpkgScript reads pairs of lines and prints dpkg's verdict for each.
const dpkgScript = `while IFS= read -r a && IFS= read -r b; do
	dpkg --compare-versions "$a" lt "$b" 2>/dev/null; s=$?
	if [ $s = 0 ]; then echo lt
	elif [ $s != 1 ]; then echo error
	elif dpkg --compare-versions "$a" eq "$b" 2>/dev/null; then echo eq
	else echo gt
	fi
done`

// dpkgCompare returns dpkg's ordering of each pair (-1, 0, 1), asking a few
// shell loops running `dpkg --compare-versions` in parallel.
func dpkgCompare(t *testing.T, pairs [][2]string) []int {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skipf("SKIPPING: dpkg is not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const workers = 4
	out := make([]int, len(pairs))
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		lo, hi := w*len(pairs)/workers, (w+1)*len(pairs)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- dpkgWorker(ctx, pairs[lo:hi], out[lo:hi])
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func dpkgWorker(ctx context.Context, pairs [][2]string, out []int) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", dpkgScript)
	var in strings.Builder
	for _, p := range pairs {
		if strings.ContainsAny(p[0]+p[1], "\n") {
			return fmt.Errorf("version pair %q contains a newline", p)
		}
		fmt.Fprintf(&in, "%s\n%s\n", p[0], p[1])
	}
	cmd.Stdin = strings.NewReader(in.String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(stdout)
	i := 0
	for sc.Scan() {
		if i >= len(pairs) {
			return fmt.Errorf("dpkg loop printed more answers than pairs")
		}
		switch sc.Text() {
		case "lt":
			out[i] = -1
		case "eq":
			out[i] = 0
		case "gt":
			out[i] = 1
		default:
			out[i] = dpkgRefused
		}
		i++
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg --compare-versions loop: %v", err)
	}
	if i != len(pairs) {
		return fmt.Errorf("dpkg loop answered %d of %d pairs", i, len(pairs))
	}
	return nil
}

package control

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/debiandata"
)

func TestArchMatches(t *testing.T) {
	tests := []struct {
		pattern, arch string
		want          bool
	}{
		{"any", "amd64", true},
		{"any", "all", true},
		{"all", "all", true},
		{"all", "amd64", false},
		{"amd64", "amd64", true},
		{"amd64", "arm64", false},
		{"linux-any", "arm64", true},
		{"linux-any", "hurd-i386", false},
		{"linux-any", "kfreebsd-amd64", false},
		{"any-amd64", "amd64", true},
		{"any-amd64", "kfreebsd-amd64", true},
		{"any-amd64", "x32", true},
		{"any-i386", "hurd-i386", true},
		{"any-arm", "armhf", true},
		{"any-arm", "armel", true},
		{"any-arm", "arm64", false},
		{"kfreebsd-any", "kfreebsd-i386", true},
		{"kfreebsd-any", "i386", false},
		{"hurd-any", "hurd-i386", true},
		{"linux-amd64", "amd64", true},
		{"gnu-any-any", "hurd-i386", true},
		{"musl-linux-any", "amd64", false},
		{"any-gnu-linux-any", "s390x", true},
		{"amd64 arm64 i386", "arm64", true},
		{"amd64 arm64 i386", "armhf", false},
		{"  linux-any\tkfreebsd-any ", "ppc64el", true},
		{"bogus", "amd64", false},
		{"any-bogus", "amd64", false},
		{"", "amd64", false},
	}
	for _, tt := range tests {
		if got := ArchMatches(tt.pattern, tt.arch); got != tt.want {
			t.Errorf("ArchMatches(%q, %q) = %v, want %v", tt.pattern, tt.arch, got, tt.want)
		}
	}
}

// TestArchMatchesDpkg checks every architecture pattern in the real Sources'
// Architecture fields, and some extra wildcards, against
// `dpkg-architecture -a ARCH -i PATTERN`, and every whole Architecture field
// against "some entry matches".
func TestArchMatchesDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg-architecture"); err != nil {
		t.Skipf("SKIPPING: dpkg-architecture (dpkg-dev) is not installed: %v", err)
	}
	path := debiandata.Path(t, "debian-bookworm-main/Sources.xz")
	rc, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := NewReader(rc, path).Keep("Architecture")
	fields := map[string]bool{}
	patterns := map[string]bool{}
	for _, p := range []string{"any-arm", "any-i386", "gnu-any-any", "musl-linux-any", "any-linux-any", "linux-amd64", "hurd-any", "any-gnu-any-any", "bogus", "any-bogus", "all"} {
		patterns[p] = true
	}
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a := p.Get("Architecture")
		fields[a] = true
		for _, w := range strings.Fields(a) {
			patterns[w] = true
		}
	}
	var list []string
	for p := range patterns {
		list = append(list, p)
	}
	sort.Strings(list)
	arches := []string{"amd64", "arm64", "hurd-i386", "kfreebsd-amd64"}
	var queries [][2]string
	for _, a := range arches {
		for _, p := range list {
			queries = append(queries, [2]string{a, p})
		}
	}
	answers := dpkgArchIs(t, queries)
	dpkg := map[[2]string]bool{}
	for i, q := range queries {
		dpkg[q] = answers[i]
		if got := ArchMatches(q[1], q[0]); got != answers[i] {
			t.Errorf("ArchMatches(%q, %q) = %v; dpkg-architecture -a %s -i %s says %v", q[1], q[0], got, q[0], q[1], answers[i])
		}
	}
	for f := range fields {
		for _, a := range arches {
			want := false
			for _, w := range strings.Fields(f) {
				want = want || dpkg[[2]string{a, w}]
			}
			if got := ArchMatches(f, a); got != want {
				t.Errorf("ArchMatches(%q, %q) = %v, want %v", f, a, got, want)
			}
		}
	}
	t.Logf("%d patterns × %d architectures checked with dpkg-architecture; %d distinct Architecture fields", len(list), len(arches), len(fields))
}

// dpkgArchIs answers each (arch, pattern) query with the exit status of
// `dpkg-architecture -a ARCH -i PATTERN`, from a few shell loops.
func dpkgArchIs(t *testing.T, queries [][2]string) []bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const script = `while read -r a p; do
	if dpkg-architecture -a "$a" -i "$p" 2>/dev/null; then echo yes; else echo no; fi
done`
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DEB_") {
			env = append(env, e)
		}
	}
	const workers = 4
	out := make([]bool, len(queries))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(queries)/workers, (w+1)*len(queries)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			var in strings.Builder
			for _, q := range queries[lo:hi] {
				fmt.Fprintf(&in, "%s %s\n", q[0], q[1])
			}
			cmd := exec.CommandContext(ctx, "sh", "-c", script)
			cmd.Env = env
			cmd.Stdin = strings.NewReader(in.String())
			res, err := cmd.Output()
			if err != nil {
				errs[w] = fmt.Errorf("dpkg-architecture loop: %v", err)
				return
			}
			sc := bufio.NewScanner(strings.NewReader(string(res)))
			i := lo
			for sc.Scan() && i < hi {
				out[i] = sc.Text() == "yes"
				i++
			}
			if i != hi {
				errs[w] = fmt.Errorf("dpkg-architecture loop answered %d of %d queries", i-lo, hi-lo)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestArchMatchesDoesNotAllocate(t *testing.T) {
	ArchMatches("any", "amd64") // load the tables
	n := testing.AllocsPerRun(100, func() {
		ArchMatches("amd64 arm64 armhf i386 kfreebsd-amd64 kfreebsd-i386", "s390x")
		ArchMatches("linux-any any-i386 any-gnu-linux-any", "hurd-i386")
	})
	if n != 0 {
		t.Errorf("ArchMatches allocates %v times per run", n)
	}
}

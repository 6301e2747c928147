package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"buildd/internal/queue/store/storetest"
)

// bin is the wanna-build binary built for the tests of whole processes.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wanna-build-test-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "wanna-build")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := storetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary on db for bookworm/arm64 and returns stdout.
func run(t testing.TB, db string, args ...string) string {
	t.Helper()
	out, _ := runCmd(t, "", db, args...)
	return out
}

// runRSS is run measuring the peak RSS in KiB with /usr/bin/time (the
// rusage of wait4 would include the RSS the child inherited from this
// process at fork).
func runRSS(t testing.TB, db string, args ...string) (string, int64) {
	t.Helper()
	return runCmd(t, "/usr/bin/time", db, args...)
}

func runCmd(t testing.TB, timer, db string, args ...string) (string, int64) {
	t.Helper()
	argv := append([]string{bin, "--db", db, "--dist=bookworm", "--arch=arm64"}, args...)
	if timer != "" {
		argv = append([]string{timer, "-f", "WBRSS %M"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("wanna-build %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	var rss int64
	if i := strings.LastIndex(errb.String(), "WBRSS "); i >= 0 {
		rss, _ = strconv.ParseInt(strings.TrimSpace(errb.String()[i+6:]), 10, 64)
	}
	return out.String(), rss
}

// queueOf writes an export with n packages in Needs-Build and imports it
// into a fresh queue.
func queueOf(t testing.TB, n int) (db string, pkgs []string) {
	return queueIn(t, storetest.New(t), n)
}

// queueIn imports n packages in Needs-Build into the empty queue db.
func queueIn(t testing.TB, db string, n int) (string, []string) {
	var pkgs []string
	dir := t.TempDir()
	var b strings.Builder
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("pkg%03d", i)
		pkgs = append(pkgs, p+"_1.0-1")
		fmt.Fprintf(&b, "package: %s\nversion: 1.0-1\nstate: Needs-Build\nsection: misc\npriority: optional\nstate_change: 1700000000\n\n", p)
	}
	exp := filepath.Join(dir, "queue.export")
	os.WriteFile(exp, []byte(b.String()), 0o644)
	run(t, db, "--import", exp)
	return db, pkgs
}

// takeRace has procs builders race, each taking every package once, one
// wanna-build process per take. It returns per package the winners and the
// refusals seen, and the wall time.
func takeRace(t testing.TB, db string, pkgs []string, procs int) (map[string][]string, map[string][]string, time.Duration) {
	var mu sync.Mutex
	winners, refusals := map[string][]string{}, map[string][]string{}
	var wg sync.WaitGroup
	start := time.Now()
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			user := fmt.Sprintf("buildd_%d", p)
			for i := range pkgs {
				pv := pkgs[(i+p*len(pkgs)/procs)%len(pkgs)]
				out := run(t, db, "-v", "--take", "-U", user, pv)
				name := strings.SplitN(pv, "_", 2)[0]
				mu.Lock()
				switch {
				case strings.Contains(out, name+": ok\n"):
					winners[name] = append(winners[name], user)
				case strings.Contains(out, name+": NOT OK!\n  already taken by "):
					i := strings.Index(out, "already taken by ")
					refusals[name] = append(refusals[name], strings.TrimSpace(out[i+len("already taken by "):]))
				default:
					t.Errorf("%s take %s: unexpected output %q", user, pv, out)
				}
				mu.Unlock()
			}
		}(p)
	}
	wg.Wait()
	return winners, refusals, time.Since(start)
}

// TestConcurrentTakes: 8 processes × 200 takes of the same 200 packages:
// exactly one winner per package, every other take is refused with
// "already taken by WINNER", and no update is lost.
func TestConcurrentTakes(t *testing.T) {
	db, pkgs := queueOf(t, 200)
	winners, refusals, wall := takeRace(t, db, pkgs, 8)
	t.Logf("%d takes by 8 processes in %s: %.0f takes/s", 8*len(pkgs), wall.Round(time.Millisecond), float64(8*len(pkgs))/wall.Seconds())
	for _, pv := range pkgs {
		name := strings.SplitN(pv, "_", 2)[0]
		w := winners[name]
		if len(w) != 1 {
			t.Errorf("%s: winners %v, want exactly one", name, w)
			continue
		}
		if len(refusals[name]) != 7 {
			t.Errorf("%s: %d refusals, want 7", name, len(refusals[name]))
		}
		for _, r := range refusals[name] {
			if r != w[0] {
				t.Errorf("%s: refused as taken by %s, but %s won", name, r, w[0])
			}
		}
		info := run(t, db, "--info", name)
		if !strings.Contains(info, "State               : Building\n") || !strings.Contains(info, "Builder             : "+w[0]+"\n") {
			t.Errorf("%s: lost update, won by %s:\n%s", name, w[0], info)
		}
	}
	hist := run(t, db, "--history")
	if n := strings.Count(hist, "--take(bookworm)"); n != len(pkgs) {
		t.Errorf("%d takes in the history, want %d", n, len(pkgs))
	}
}

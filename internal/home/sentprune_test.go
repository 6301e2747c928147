package home

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSentPrune(t *testing.T) {
	h := New(t.TempDir())
	now := time.Unix(1_800_000_000, 0)
	day := 24 * time.Hour
	lines := []string{
		fmt.Sprintf("old@h %d bookworm a_1 log", now.Add(-61*day).Unix()),
		fmt.Sprintf("new@h %d bookworm b_1 log", now.Add(-59*day).Unix()),
		"garbage line",
		fmt.Sprintf("edge@h %d bookworm c_1 should-build", now.Add(-60*day).Unix()),
		fmt.Sprintf("older@h %d trixie d_1 log", now.Add(-400*day).Unix()),
	}
	path := h.Path("sent-mails")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := h.Sent().Prune(now.Add(-60 * day))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2 dropped", n, err)
	}
	b, _ := os.ReadFile(path)
	want := lines[1] + "\n" + lines[2] + "\n" + lines[3] + "\n"
	if string(b) != want {
		t.Errorf("after prune:\n%s\nwant:\n%s", b, want)
	}
	if _, ok, _ := h.Sent().Lookup("old@h"); ok {
		t.Error("old mail still found")
	}
	if _, ok, _ := h.Sent().Lookup("new@h"); !ok {
		t.Error("recent mail lost")
	}
}

// TestSentPruneConcurrentAdd: records added while prunes run are never lost.
func TestSentPruneConcurrentAdd(t *testing.T) {
	h := New(t.TempDir())
	now := time.Now()
	for i := 0; i < 50; i++ {
		if err := h.Sent().Add(SentMail{MessageID: fmt.Sprintf("old%d@h", i), Time: now.Add(-100 * 24 * time.Hour), Dist: "bookworm", Arch: "amd64", PkgVersion: "p_1", Kind: "log"}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 200
	_, prunes := pruneWhile(t, func() (int, error) { return h.Sent().Prune(now.Add(-time.Hour)) }, func() {
		for i := 0; i < n; i++ {
			if err := h.Sent().Add(SentMail{MessageID: fmt.Sprintf("new%d@h", i), Time: now, Dist: "bookworm", Arch: "amd64", PkgVersion: "p_1", Kind: "log"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	lines, err := lineFile{path: h.Path("sent-mails")}.read()
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != n {
		t.Errorf("%d lines after %d prunes, want the %d new ones", len(lines), prunes, n)
	}
	for i := 0; i < n; i++ {
		if _, ok, _ := h.Sent().Lookup(fmt.Sprintf("new%d@h", i)); !ok {
			t.Errorf("new%d lost", i)
		}
	}
}

// pruneWhile runs the writers, each in its own goroutine, and calls prune
// over and over until they are done (and once more after); it returns the
// lines prune dropped in all and how often it ran.
func pruneWhile(t *testing.T, prune func() (int, error), writers ...func()) (dropped, prunes int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Add(1)
		go func() { defer wg.Done(); w() }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		n, err := prune()
		if err != nil {
			t.Fatal(err)
		}
		dropped += n
		prunes++
	}
	return dropped, prunes
}

package home

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSignatures(t *testing.T) {
	h := New(t.TempDir())
	path := h.Path("mail-signatures")
	m, _ := h.Signatures()
	if err := m.Remember("abc", time.Now(), "F", "mail1"); err != nil {
		t.Fatal(err)
	}
	m2, err := h.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	if first, ok := m2.Seen("abc"); !ok || first != "mail1" {
		t.Errorf("seen %q %v", first, ok)
	}
	if b, _ := os.ReadFile(path); strings.Count(string(b), "\n") != 1 {
		t.Errorf("%q", b)
	}
}

func TestPruneSignatures(t *testing.T) {
	h := New(t.TempDir())
	path := h.Path("mail-signatures")
	now := time.Unix(1_800_000_000, 0)
	day := 24 * time.Hour
	lines := []string{
		fmt.Sprintf("old %d F mail1", now.Add(-61*day).Unix()),
		fmt.Sprintf("new %d F mail2", now.Add(-59*day).Unix()),
		"torn line",
		fmt.Sprintf("edge %d F mail3", now.Add(-60*day).Unix()),
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := h.PruneSignatures(now.Add(-60 * day))
	if err != nil || n != 1 {
		t.Fatalf("PruneSignatures = %d, %v; want 1", n, err)
	}
	b, _ := os.ReadFile(path)
	if want := strings.Join(lines[1:], "\n") + "\n"; string(b) != want {
		t.Errorf("after prune:\n%s\nwant:\n%s", b, want)
	}
	m, _ := h.Signatures()
	if _, ok := m.Seen("old"); ok {
		t.Error("old signature still remembered")
	}
	if first, ok := m.Seen("new"); !ok || first != "mail2" {
		t.Error("recent signature lost")
	}
	if n, err := New(t.TempDir()).PruneSignatures(now); err != nil || n != 0 {
		t.Errorf("missing file: %d, %v", n, err)
	}
}

// TestPruneSignaturesConcurrentRemember: signatures remembered (by other Signatures
// values, as other buildd-mail processes do) while prunes rewrite the file
// are never lost.
func TestPruneSignaturesConcurrentRemember(t *testing.T) {
	h := New(t.TempDir())
	path := h.Path("mail-signatures")
	old := time.Now().Add(-100 * 24 * time.Hour)
	var b strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "old%d %d F mail%d\n", i, old.Unix(), i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	const writers, each = 3, 60
	var write []func()
	for w := 0; w < writers; w++ {
		write = append(write, func() {
			m, err := h.Signatures()
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < each; i++ {
				if err := m.Remember(fmt.Sprintf("w%d-%d", w, i), time.Now(), "F", fmt.Sprintf("m%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	dropped, _ := pruneWhile(t, func() (int, error) { return h.PruneSignatures(time.Now().Add(-time.Hour)) }, write...)
	if dropped != 100 {
		t.Errorf("dropped %d, want the 100 old lines", dropped)
	}
	m, err := h.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if _, ok := m.Seen(fmt.Sprintf("w%d-%d", w, i)); !ok {
				t.Errorf("signature w%d-%d lost", w, i)
			}
		}
	}
	if data, _ := os.ReadFile(path); strings.Count(string(data), "\n") != writers*each {
		t.Errorf("%d lines, want %d", strings.Count(string(data), "\n"), writers*each)
	}
}

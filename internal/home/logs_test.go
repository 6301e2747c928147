package home

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogName(t *testing.T) {
	at := time.Date(2025, 11, 21, 7, 30, 12, 0, time.UTC)
	for _, c := range []struct{ pkgv, arch, want string }{
		{"hello_1.0-1", "amd64", "hello_1.0-1_amd64-20251121-073012"},
		{"dpkg_1:1.21.22", "arm64", "dpkg_1.21.22_arm64-20251121-073012"},
		{"foo_2.0+b1", "all", "foo_2.0+b1_all-20251121-073012"},
		{"libc++_2:1.0-rc1-3+b2", "amd64", "libc++_1.0-rc1-3+b2_amd64-20251121-073012"},
		{"python3.11_3.11.2-6+deb12u1", "i386", "python3.11_3.11.2-6+deb12u1_i386-20251121-073012"},
	} {
		if got := LogName(c.pkgv, c.arch, at); got != c.want {
			t.Errorf("LogName(%q, %q) = %q, want %q", c.pkgv, c.arch, got, c.want)
		}
		if got := LogName(c.pkgv, c.arch, at.In(time.FixedZone("CET", 3600))); got != c.want {
			t.Errorf("LogName(%q, %q) in CET = %q, want %q (UTC)", c.pkgv, c.arch, got, c.want)
		}
	}
}

func TestCreateLogExclusive(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2025, 11, 21, 7, 30, 12, 0, time.UTC)
	first, err := CreateLog(dir, "hello_1.0-1", "amd64", at)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(first, "first job's log")
	first.Close()

	const n = 20
	names := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := CreateLog(dir, "hello_1.0-1", "amd64", at)
			if err != nil {
				t.Error(err)
				return
			}
			names <- f.Name()
			f.Close()
		}()
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for nm := range names {
		if seen[nm] {
			t.Errorf("log %s handed out twice", nm)
		}
		seen[nm] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct logs for %d jobs", len(seen), n)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "hello_1.0-1_amd64-20251121-073012.build"))
	if string(b) != "first job's log\n" {
		t.Fatalf("first log overwritten: %q", b)
	}
	if _, err := CreateLog(dir, "../evil_1", "amd64", at); err == nil {
		t.Fatal("a package name with a slash made a log")
	}
}

func TestTail(t *testing.T) {
	var long strings.Builder
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&long, "line %d of a long build log\n", i)
	}
	for _, c := range []struct {
		name, text string
		n          int
		want       string
		trimmed    bool
	}{
		{"empty", "", 3, "", false},
		{"short", "a\nb\n", 3, "a\nb\n", false},
		{"exact", "a\nb\nc\n", 3, "a\nb\nc\n", false},
		{"trim", "a\nb\nc\nd\n", 2, "c\nd\n", true},
		{"no final newline", "a\nb\nc", 2, "b\nc", true},
		{"long", long.String(), 2, "line 4999 of a long build log\nline 5000 of a long build log\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "log")
			os.WriteFile(p, []byte(c.text), 0o644)
			got, trimmed, err := Tail(p, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || trimmed != c.trimmed {
				t.Fatalf("Tail = %q, %v; want %q, %v", got, trimmed, c.want, c.trimmed)
			}
		})
	}
}

package daemonlog

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.log")
	l, err := Open(path, "buildd-watcher")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Printf("one %d\ntwo", 1)
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	l.Printf("still old")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Printf("new")
	old, _ := os.ReadFile(path + ".old")
	cur, _ := os.ReadFile(path)
	line := regexp.MustCompile(`^[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d buildd-watcher\[\d+\]: `)
	lines := strings.Split(strings.TrimSuffix(string(old), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], ": one 1") || !strings.HasSuffix(lines[1], ": two") || !strings.HasSuffix(lines[2], ": still old") {
		t.Errorf("old log %q", old)
	}
	for _, l := range append(lines, strings.TrimSuffix(string(cur), "\n")) {
		if !line.MatchString(l) {
			t.Errorf("not in the classic format: %q", l)
		}
		if !FromProg(l, "buildd-watcher") || FromProg(l, "buildd") {
			t.Errorf("FromProg(%q)", l)
		}
	}
	if !strings.HasSuffix(string(cur), ": new\n") || strings.Count(string(cur), "\n") != 1 {
		t.Errorf("new log %q", cur)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
}

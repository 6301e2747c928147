package daemonlog

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
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
	if len(lines) != 2 || !strings.HasSuffix(lines[0], `: one 1\ntwo`) || !strings.HasSuffix(lines[1], ": still old") {
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

// TestOneLinePerMessage: whatever a message holds (a mail subject with a
// CRLF and a fake entry, terminal escapes, invalid UTF-8), Printf writes
// exactly one line, with those bytes escaped and other UTF-8 text kept,
// to the file and to Echo alike.
func TestOneLinePerMessage(t *testing.T) {
	for _, tt := range []struct {
		name, msg, want string
	}{
		{"plain", "Nothing to do -- sleeping 300 seconds", "Nothing to do -- sleeping 300 seconds"},
		{"utf-8", "naïve façade — 日本語 ✓ \ufffd", "naïve façade — 日本語 ✓ \ufffd"},
		{"fake entry", "mail from x, subject \"hi\r\nFAKE: entry\"", `mail from x, subject "hi\r\nFAKE: entry"`},
		{"fake daemon line", "a\nDec  1 00:00:00 buildd[1]: Repeated mess with sbuild", `a\nDec  1 00:00:00 buildd[1]: Repeated mess with sbuild`},
		{"escape sequences", "\x1b[2J\x1b[31mred\x1b[0m \x1b]0;title\x07", `\x1b[2J\x1b[31mred\x1b[0m \x1b]0;title\x07`},
		{"other controls", "nul\x00 tab\t bs\x08 del\x7f", `nul\x00 tab\t bs\x08 del\x7f`},
		{"C1 and separators", "csi\u009b1m nel\u0085 ls\u2028ps\u2029", `csi\u009b1m nel\u0085 ls\u2028ps\u2029`},
		{"invalid UTF-8", "latin1 caf\xe9 \xff\xfe cut \xe6\x97", `latin1 caf\xe9 \xff\xfe cut \xe6\x97`},
		{"trailing newlines", "done\r\n\n", "done"},
		{"empty", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "daemon.log")
			l, err := Open(path, "buildd-mail")
			if err != nil {
				t.Fatal(err)
			}
			var echo strings.Builder
			l.Echo = &echo
			l.Printf("%s", tt.msg)
			l.Close()
			b, _ := os.ReadFile(path)
			if string(b) != echo.String() {
				t.Errorf("file %q, echo %q", b, echo.String())
			}
			got := string(b)
			if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") || strings.ContainsAny(got[:len(got)-1], "\r\x1b\x00\x7f") || !utf8.ValidString(got) {
				t.Fatalf("not one clean line: %q", got)
			}
			if i := strings.Index(got, "]: "); i < 0 || got[i+3:len(got)-1] != tt.want {
				t.Errorf("logged %q, want the message %q", got, tt.want)
			}
		})
	}
}

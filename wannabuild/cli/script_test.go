package cli

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"buildd/internal/queue/store/storetest"
)

// now is the fixed "current time" of the scripts (2023 Nov 14 22:13:20 UTC).
const now = "1700000000"

// TestScripts runs the transcripts in testdata/*.txt against a fresh
// database each: "$ ARGS" runs wanna-build (with --db, --dist=sid and
// --arch=amd64 added; "<<< TEXT" at the end gives TEXT as stdin), the lines
// up to the next "$" are its exact stdout, "[exit N]" its status when not 0.
// "## " lines are comments. The real user name prints as REALUSER.
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type step struct {
	line     int
	raw      string // the command line as written
	comments string // the "## " lines before it
	args     []string
	stdin    string
	want     string
	exit     int
}

func parseScript(t *testing.T, path string) []step {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []step
	comments := ""
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "## "):
			comments += l + "\n"
		case strings.HasPrefix(l, "$ "):
			cmd := l[2:]
			st := step{line: i + 1, raw: cmd, comments: comments}
			comments = ""
			if c, in, ok := strings.Cut(cmd, " <<< "); ok {
				cmd, st.stdin = c, in+"\n"
			}
			st.args = splitWords(t, cmd)
			if len(st.args) > 0 && st.args[0] == "wanna-build" {
				st.args = st.args[1:]
			}
			steps = append(steps, st)
		case len(steps) == 0:
			t.Fatalf("%s:%d: output before the first command", path, i+1)
		case strings.HasPrefix(l, "[exit ") && strings.HasSuffix(l, "]"):
			n, err := strconv.Atoi(l[6 : len(l)-1])
			if err != nil {
				t.Fatalf("%s:%d: %v", path, i+1, err)
			}
			steps[len(steps)-1].exit = n
		default:
			steps[len(steps)-1].want += l + "\n"
		}
	}
	return steps
}

// splitWords splits a command line at blanks; '...' quotes.
func splitWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, has := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			in, has = !in, true
		case r == ' ' && !in:
			if has {
				words = append(words, cur.String())
			}
			cur.Reset()
			has = false
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if in {
		t.Fatalf("unterminated quote in %q", s)
	}
	if has {
		words = append(words, cur.String())
	}
	return words
}

// updateEnv, set to 1, rewrites the expected outputs of the scripts with
// what wanna-build prints (review the diff before keeping it).
const updateEnv = "WB_UPDATE_SCRIPTS"

func runScript(t *testing.T, path string) {
	update := os.Getenv(updateEnv) == "1"
	var rewritten strings.Builder
	t.Setenv(EnvNow, now)
	t.Setenv("BUILDD_CONF", "")
	db := storetest.New(t)
	realUser := "unknown"
	if u, err := user.Current(); err == nil {
		realUser = u.Username
	}
	for _, st := range parseScript(t, path) {
		args := append([]string{"--db", db, "--dist=sid", "--arch=amd64"}, st.args...)
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(st.stdin), &out, &errb)
		got := strings.ReplaceAll(out.String(), " by "+realUser+" as ", " by REALUSER as ")
		got = strings.ReplaceAll(got, " as "+realUser+"\n", " as REALUSER\n")
		if update {
			rewritten.WriteString(st.comments + "$ " + st.raw + "\n" + got)
			if code != 0 {
				rewritten.WriteString("[exit " + strconv.Itoa(code) + "]\n")
			}
			continue
		}
		if got != st.want || code != st.exit {
			t.Errorf("%s:%d: wanna-build %s\nexit %d (want %d), stderr %q\n--- got\n%s--- want\n%s",
				path, st.line, strings.Join(st.args, " "), code, st.exit, errb.String(), got, st.want)
		}
	}
	if update {
		if err := os.WriteFile(path, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

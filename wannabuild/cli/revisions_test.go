package cli

import (
	"fmt"
	"os/user"
	"regexp"
	"strings"
	"testing"

	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/store/storetest"
)

// revUUID is the test's UUID number n.
func revUUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// timeRE is a time as the listings write it.
var timeRE = regexp.MustCompile(`\d{4} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}`)

// realUserName is the login the queue records as the user acting when
// no -U is given.
func realUserName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// TestRevisionOptions: --report-revisions, --require-revision and
// --revisions, step by step on one queue ($BUILDD_TEST_STORE's kind),
// with their output (times as TIME) and their errors, which name the bad
// input and change nothing.
func TestRevisionOptions(t *testing.T) {
	t.Setenv("BUILDD_CONF", "")
	db := storetest.New(t)
	u1, u2, abc := revUUID(1), revUUID(2), revUUID(0xabc)
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"nothing yet", "", []string{"--revisions"}, 0,
			"sid/amd64 requires no revision.\nNo builder reported revisions of sid/amd64.\n", ""},
		{"a report", "bookworm-amd64 bookworm-amd64-2 " + u2 + " current\n\nbookworm-amd64 bookworm-amd64-1 " + u1 + "\n",
			[]string{"-U", "buildd_a", "--report-revisions"}, 0,
			"sid/amd64: 2 revision(s) of buildd_a reported; the queue requires no revision\n", ""},
		{"another builder's", "bookworm-amd64 bookworm-amd64-1 " + u1 + " current\n", []string{"-U", "buildd_b", "--report-revisions"}, 0,
			"sid/amd64: 1 revision(s) of buildd_b reported; the queue requires no revision\n", ""},
		{"require, in upper case", "", []string{"--require-revision=" + strings.ToUpper(abc)}, 0,
			"sid/amd64 requires revision " + abc + ": a builder whose machine is on another takes nothing from it until it has this one\n", ""},
		{"a builder on it", "bookworm-amd64 bookworm-amd64-3 " + abc + " current\nbookworm-amd64 bookworm-amd64-2 " + u2 + "\n",
			[]string{"-U", "buildd_a", "--report-revisions"}, 0,
			"sid/amd64: 2 revision(s) of buildd_a reported; the queue requires revision " + abc + ", the current one\n", ""},
		{"a builder behind", "bookworm-amd64 bookworm-amd64-1 " + u1 + " current\n", []string{"-U", "buildd_b", "--report-revisions"}, 0,
			"sid/amd64: 1 revision(s) of buildd_b reported; the queue requires revision " + abc + ", not the current bookworm-amd64-1 (" + u1 +
				"): it takes nothing from sid/amd64 until it has it\n", ""},
		{"a builder with none current", "bookworm-amd64 bookworm-amd64-1 " + u1 + "\n", []string{"-U", "buildd_c", "--report-revisions"}, 0,
			"sid/amd64: 1 revision(s) of buildd_c reported; the queue requires revision " + abc + ", and none is current: it takes nothing from sid/amd64 until it has it\n", ""},
		{"the list", "", []string{"--revisions"}, 0,
			"sid/amd64 requires revision " + abc + " (set by REALUSER at TIME UTC).\n" +
				"builder   machine         revision          UUID                                  current  reported (UTC)\n" +
				"buildd_a  bookworm-amd64  bookworm-amd64-3  " + abc + "  yes      TIME\n" +
				"buildd_a  bookworm-amd64  bookworm-amd64-2  " + u2 + "           TIME\n" +
				"buildd_b  bookworm-amd64  bookworm-amd64-1  " + u1 + "  yes      TIME\n" +
				"buildd_c  bookworm-amd64  bookworm-amd64-1  " + u1 + "           TIME\n" +
				"Behind, taking nothing from sid/amd64 until their machine is on " + abc + ": buildd_b, buildd_c\n", ""},
		{"the wire", "bookworm-amd64 bookworm-amd64-1 " + u1 + " current\n", []string{"--json=1", "-U", "buildd_b", "--report-revisions"}, 0,
			`{"v":1,"required":"` + abc + `"}` + "\n", ""},
		{"the wire, a bad report", "bookworm-amd64 bookworm-amd64-1 " + u1 + " current\nm m-2 " + u2 + " current\n", []string{"--json=1", "-U", "buildd_b", "--report-revisions"}, 0,
			`{"v":1,"error":"revisions of buildd_b in sid/amd64: revision 2: m-2 is current, and so is bookworm-amd64-1"}` + "\n", ""},
		{"the wire, not a call", "", []string{"--json=1", "--revisions"}, 1, "",
			"wanna-build: --json: --revisions is not a call of the protocol\n"},
		{"not a UUID", "", []string{"--require-revision=0d4c"}, 1, "usage",
			`Value "0d4c" invalid for option require-revision: not a UUID (want 8-4-4-4-12 hex digits, as btrfs subvolume show prints it; empty to require none)` + "\n"},
		{"a bad line", "bookworm-amd64 bookworm-amd64-1 " + u1 + " current\nbookworm-amd64 ../etc x\n", []string{"-U", "buildd_a", "--report-revisions"}, 1, "",
			`wanna-build: --report-revisions: stdin:2: invalid revision name "../etc" (nothing reported)` + "\n"},
		{"a short line", "bookworm-amd64 " + u1 + "\n", []string{"-U", "buildd_a", "--report-revisions"}, 1, "",
			`wanna-build: --report-revisions: stdin:1: "bookworm-amd64 ` + u1 + `": want MACHINE REVISION UUID [current] (nothing reported)` + "\n"},
		{"two current", "m m-1 " + u1 + " current\nm m-2 " + u2 + " current\n", []string{"-U", "buildd_a", "--report-revisions"}, 1, "",
			"wanna-build: --report-revisions: revisions of buildd_a in sid/amd64: revision 2: m-2 is current, and so is m-1 (nothing reported)\n"},
		{"too large", strings.Repeat("m m-1 "+u1+"\n", 400), []string{"-U", "buildd_a", "--report-revisions"}, 1, "",
			"wanna-build: --report-revisions: stdin: revision report too large: more than 16384 bytes (nothing reported)\n"},
		{"an argument", "", []string{"--revisions", "hello_1.0"}, 1, "", "wanna-build: --revisions takes no arguments, not \"hello_1.0\"\n"},
		{"two modes", "", []string{"--revisions", "--require-revision="}, 1, "usage", "conflicting operations: revisions and require-revision\n"},
		{"unchanged by the errors", "", []string{"--revisions"}, 0,
			"sid/amd64 requires revision " + abc + " (set by REALUSER at TIME UTC).\n" +
				"builder   machine         revision          UUID                                  current  reported (UTC)\n" +
				"buildd_a  bookworm-amd64  bookworm-amd64-3  " + abc + "  yes      TIME\n" +
				"buildd_a  bookworm-amd64  bookworm-amd64-2  " + u2 + "           TIME\n" +
				"buildd_b  bookworm-amd64  bookworm-amd64-1  " + u1 + "  yes      TIME\n" +
				"buildd_c  bookworm-amd64  bookworm-amd64-1  " + u1 + "           TIME\n" +
				"Behind, taking nothing from sid/amd64 until their machine is on " + abc + ": buildd_b, buildd_c\n", ""},
		{"lifted", "", []string{"--require-revision="}, 0, "sid/amd64 requires no revision\n", ""},
		{"none required", "", []string{"-U", "buildd_b", "--revisions"}, 0,
			"sid/amd64 requires no revision.\n" +
				"builder   machine         revision          UUID                                  current  reported (UTC)\n" +
				"buildd_a  bookworm-amd64  bookworm-amd64-3  " + abc + "  yes      TIME\n" +
				"buildd_a  bookworm-amd64  bookworm-amd64-2  " + u2 + "           TIME\n" +
				"buildd_b  bookworm-amd64  bookworm-amd64-1  " + u1 + "  yes      TIME\n" +
				"buildd_c  bookworm-amd64  bookworm-amd64-1  " + u1 + "           TIME\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := wb(t, db, tc.stdin, tc.args...)
			stdout = timeRE.ReplaceAllString(stdout, "TIME")
			if u := realUserName(); u != "" {
				stdout = strings.ReplaceAll(stdout, " by "+u+" at ", " by REALUSER at ")
			}
			if tc.stdout == "usage" && strings.HasPrefix(stdout, "Usage: wanna-build") {
				stdout = "usage"
			}
			if code != tc.code || stdout != tc.stdout || stderr != tc.stderr {
				t.Errorf("wanna-build %s: exit %d, stdout\n%s\nstderr %q;\nwant %d, stdout\n%s\nstderr %q", strings.Join(tc.args, " "), code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestRevisionOptionsAsBuilder: on PostgreSQL, a builder role reports its
// own revisions; the database refuses its report in another builder's
// name and its requirement (exit 2, nothing changed).
func TestRevisionOptionsAsBuilder(t *testing.T) {
	t.Setenv("BUILDD_CONF", "")
	pdb := pgtest.New(t)
	pdb.Grant(t, "buildd_a", queue.Pair{Dist: "sid", Arch: "amd64"})
	db := pdb.URL("buildd_a")
	line := "m m-1 " + revUUID(1) + " current\n"
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		err   string
	}{
		{"its own", line, []string{"-U", "buildd_a", "--report-revisions"}, 0, ""},
		{"another builder's", line, []string{"-U", "buildd_b", "--report-revisions"}, 2, "builder buildd_a may not report the revisions of builder buildd_b"},
		{"a requirement", "", []string{"-U", "buildd_a", "--require-revision=" + revUUID(1)}, 2, "permission denied for table wb_required_revisions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := wb(t, db, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.err) || tc.code != 0 && !strings.Contains(stderr, "refused by the database") {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr, tc.code, tc.err)
			}
		})
	}
	stdout, _, _ := wb(t, pdb.URL(pgtest.Admin), "", "--revisions")
	if stdout = timeRE.ReplaceAllString(stdout, "TIME"); stdout != "sid/amd64 requires no revision.\n"+
		"builder   machine  revision  UUID                                  current  reported (UTC)\n"+
		"buildd_a  m        m-1       "+revUUID(1)+"  yes      TIME\n" {
		t.Errorf("after the refusals:\n%s", stdout)
	}
}

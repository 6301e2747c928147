package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

// zeros is an endless stream of NUL bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestPutLog: --put-log stores the gzip stream on stdin as the -U user's
// build; bad input is exit 1 naming stdin, with nothing stored.
func TestPutLog(t *testing.T) {
	t.Setenv("BUILDD_CONF", "")
	var gz bytes.Buffer
	text := "build log\n"
	if err := queue.CompressLog(&gz, strings.NewReader(text), int64(len(text))); err != nil {
		t.Fatal(err)
	}
	db := storetest.New(t)
	for _, tc := range []struct {
		name   string
		stdin  io.Reader
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"stored", bytes.NewReader(gz.Bytes()), []string{"-U", "buildd_a", "--put-log", "--log-time=1795000000", "--log-status=attempted", "hello_1.0-1"},
			0, fmt.Sprintf("hello_1.0-1: log of the build by buildd_a that ended 2026 Nov 18 11:06:40 stored (10 bytes, %d compressed)\n", gz.Len()), ""},
		{"not gzip", strings.NewReader("plain"), []string{"-U", "buildd_a", "--put-log", "--log-time=1795000001", "--log-status=attempted", "hello_1.0-1"},
			1, "", "wanna-build: --put-log hello_1.0-1: stdin: not a gzip stream: unexpected EOF (nothing stored)\n"},
		{"too large", io.LimitReader(zeros{}, queue.MaxLogGzip+1), []string{"-U", "buildd_a", "--put-log", "--log-time=1795000001", "--log-status=attempted", "hello_1.0-1"},
			1, "", "wanna-build: --put-log hello_1.0-1: stdin: log too large: more than 104857600 bytes compressed (nothing stored)\n"},
		{"no time", bytes.NewReader(gz.Bytes()), []string{"--put-log", "--log-status=attempted", "hello_1.0-1"},
			1, "", "wanna-build: --put-log needs --log-time=UNIX and --log-status=STATUS\n"},
		{"bad status", bytes.NewReader(gz.Bytes()), []string{"--put-log", "--log-time=1795000001", "--log-status=<b>", "hello_1.0-1"},
			1, "", "wanna-build: --put-log: log hello_1.0-1: invalid status \"<b>\" (want successful, attempted or given-back)\n"},
		{"bad name", bytes.NewReader(gz.Bytes()), []string{"--put-log", "--log-time=1795000001", "--log-status=attempted", "../x_1"},
			1, "", "wanna-build: --put-log: package name \"../x\": '.' is not allowed there (policy 5.6.1)\n"},
		{"two packages", bytes.NewReader(gz.Bytes()), []string{"--put-log", "--log-time=1795000001", "--log-status=attempted", "a_1", "b_1"},
			1, "", "wanna-build: --put-log takes one PKG_VERSION\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(append([]string{"--db", db, "--dist=sid", "--arch=amd64"}, tc.args...), tc.stdin, &out, &errb)
			if code != tc.code || out.String() != tc.stdout || errb.String() != tc.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q;\nwant %d, %q, %q", code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
	s, err := store.Open(db, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logs, err := s.Logs("hello")
	if err != nil || len(logs) != 1 || logs[0].Builder != "buildd_a" || logs[0].Expires != 1795000000+90*86400 {
		t.Errorf("stored: %+v, %v; want the one log, kept the default 90 days", logs, err)
	}
}

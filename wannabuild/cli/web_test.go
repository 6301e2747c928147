package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/queue/store/storetest"
)

// TestWeb: --web needs neither --dist nor -A, serves on a unix socket and
// stops on SIGINT with status 0.
func TestWeb(t *testing.T) {
	t.Setenv(EnvNow, now)
	t.Setenv(config.EnvVar, "")
	db := storetest.New(t)
	wb(t, db, "", "--import", "testdata/merge/before.export")
	sock := filepath.Join(t.TempDir(), "web.sock")
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- Main([]string{"--db", db, "--web", sock}, strings.NewReader(""), &stdout, &stderr) }()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	var body []byte
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		select {
		case code := <-done:
			t.Fatalf("wanna-build --web exited %d: %s", code, stderr.String())
		default:
		}
		resp, err := c.Get("http://wanna-build/metrics")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no answer on %s: %v", sock, err)
		}
	}
	if !strings.Contains(string(body), `wanna_build_packages{dist="sid",arch="amd64",state="Needs-Build"}`) {
		t.Errorf("/metrics:\n%s", body)
	}
	// The server is up, so its SIGINT handler is in place.
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stdout.String(), "wanna-build: serving") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--web did not stop on SIGINT")
	}
}

func TestWebErrors(t *testing.T) {
	t.Setenv(config.EnvVar, "")
	db := storetest.New(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"arguments", []string{"--db", db, "--web", "127.0.0.1:0", "hello"}, 1, "--web takes no package arguments"},
		{"bad-address", []string{"--db", db, "--web", "256.0.0.1:80"}, 1, "listen on 256.0.0.1:80"},
		{"no-socket-dir", []string{"--db", db, "--web", filepath.Join(t.TempDir(), "no", "web.sock")}, 1, "listen on"},
		{"no-database-dir", []string{"--db", filepath.Join(t.TempDir(), "no", "wb.db"), "--web", "127.0.0.1:0"}, 2, "cannot open database"},
		{"two-modes", []string{"--db", db, "--web", "127.0.0.1:0", "--list=all"}, 1, "conflicting operations: web and list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "no-database-dir" && storetest.Postgres() {
				t.Skip("a bbolt path")
			}
			var stdout, stderr bytes.Buffer
			code := Main(tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

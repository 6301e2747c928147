package web

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

var discard = log.New(io.Discard, "", 0)

// TestUnixSocket: an ADDR with a '/' is a unix socket; a socket file left
// behind is replaced, one in use is refused; Serve stops with its context.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "web.sock")
	// A socket file left behind by a server that is gone.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	l, err := Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "a server is answering") {
		t.Errorf("second Listen: %v, want refused", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s := &Server{DB: fixture(t)}
	go func() { done <- Serve(ctx, l, s.Handler()) }()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://wanna-build/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "wanna_build_packages{") {
		t.Errorf("status %d, body %.200q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestListenTCPError(t *testing.T) {
	if _, err := Listen("256.0.0.1:http"); err == nil || !strings.Contains(err.Error(), "listen on 256.0.0.1:http") {
		t.Errorf("Listen: %v, want an error naming the address", err)
	}
}

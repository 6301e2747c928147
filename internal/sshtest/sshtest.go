// Package sshtest runs a real /usr/sbin/sshd on 127.0.0.1 for the tests
// of the queue over ssh: a host key and a client key of its own, root let
// in with that key only, and the caller's sshd_config lines (SetEnv,
// AcceptEnv, ...) added. It is stopped when the test ends.
package sshtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Program is the sshd the tests run.
const Program = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Port string
	Key  string // the client's private key
}

// Start starts sshd with config's lines added to its sshd_config. It
// skips the test, loudly, without root, sshd or ssh.
func Start(t testing.TB, config string) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: the real-ssh tests need root to run sshd and log in as root")
	}
	if _, err := os.Stat(Program); err != nil {
		t.Skipf("SKIPPED: %s missing (apt-get install openssh-server): %v", Program, err)
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skipf("SKIPPED: ssh missing (apt-get install openssh-client): %v", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{Key: filepath.Join(dir, "client_key")}
	for _, k := range []string{s.Key, filepath.Join(dir, "host_key")} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ssh-keygen %s: %v\n%s", k, err, out)
		}
	}
	pub, err := os.ReadFile(s.Key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, s.Port, _ = net.SplitHostPort(addr)
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
%s
`, s.Port, filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"),
		strings.TrimSpace(config))), 0o600); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command(Program, "-D", "-e", "-f", conf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("sshd exited: %v\n%s", err, log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd not listening on %s after 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Options are the ssh options for this server (wanna_build_ssh_options),
// without the key.
func (s *Server) Options() []string {
	return []string{"-p", s.Port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"buildd/buildd-mail/intake"
)

// TestServeRecipientFlood pipelines 100,000 RCPTs into the real
// `buildd-mail --serve --lmtp` (issue 22, item 4: they took the server from
// 11 MB to 349 MB): the listener takes intake.MaxRecipients, refuses the
// rest until its command bound ends the session with 421, and its resident
// memory (/proc/PID/status VmRSS, logged) stays flat; a mail delivered
// afterwards is taken (250: stored).
func TestServeRecipientFlood(t *testing.T) {
	const rcpts = 100000
	dir := t.TempDir()
	bin := filepath.Join(dir, "buildd-mail")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conf, cfg, _ := writeHome(t, dir, filepath.Join(hostileDir, "admin_keyring.asc"), "", "bookworm")
	cmd := exec.Command(bin, "--config", conf, "--serve", "127.0.0.1:0", "--lmtp")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	addr := listeningOn(t, cfg.DaemonLogFile)

	before := rssKB(t, cmd.Process.Pid)
	got, err := rcptFlood(addr, rcpts)
	if err != nil {
		t.Fatal(err)
	}
	after := rssKB(t, cmd.Process.Pid)
	t.Logf("buildd-mail --serve --lmtp, %d RCPTs pipelined in one session: replies %v; VmRSS %d kB before, %d kB after", rcpts, got, before, after)
	want := map[string]int{"250": 2 + intake.MaxRecipients, "452": intake.MaxCommands - 3 - intake.MaxRecipients, "421": 1}
	for code, n := range want {
		if got[code] != n {
			t.Errorf("%d replies %s, want %d (all: %v)", got[code], code, n, got)
		}
	}
	// Not a timing figure: the unbounded listener grew by 338 MB.
	if after-before > 64<<10 {
		t.Errorf("VmRSS grew by %d kB during the flood", after-before)
	}

	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"buildd@example.org"}, strings.NewReader("From: a@example.org\r\nSubject: after the flood\r\n\r\nhello\r\n")); err != nil {
		t.Fatalf("a mail after the flood: %v", err)
	}
}

var listeningRE = regexp.MustCompile(`listening on (\S+) \(LMTP\)`)

// listeningOn waits for the daemon log line that names the address the
// server listens on.
func listeningOn(t *testing.T, logFile string) string {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if m := listeningRE.FindSubmatch(b); m != nil {
			return string(m[1])
		}
		if time.Now().After(end) {
			t.Fatalf("buildd-mail --serve did not log its address:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rssKB is process pid's resident memory in kB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("/proc/%d/status: VmRSS %q: %v", pid, v, err)
			}
			return kb
		}
	}
	t.Fatalf("/proc/%d/status has no VmRSS", pid)
	return 0
}

// rcptFlood sends LHLO, MAIL and n RCPTs as a pipelining client does,
// without waiting for replies, and counts the final replies by code until
// the server closes the connection.
func rcptFlood(addr string, n int) (map[string]int, error) {
	conn, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	written := make(chan struct{})
	defer func() { conn.Close(); <-written }()
	go func() {
		defer close(written)
		// Each address close to go-smtp's 2,000-byte line limit, as an
		// attacker's would be: 100,000 of them are 190 MB.
		pad := strings.Repeat("x", 1900)
		w := bufio.NewWriterSize(conn, 64<<10)
		fmt.Fprintf(w, "LHLO flood.example.org\r\nMAIL FROM:<f@example.org>\r\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "RCPT TO:<r%d%s@example.org>\r\n", i, pad)
		}
		w.Flush() // fails if the server has closed the session
	}()
	got := map[string]int{}
	r := bufio.NewReader(conn)
	for {
		l, err := r.ReadString('\n')
		if len(l) >= 4 && l[3] == ' ' {
			got[l[:3]]++
		}
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
}

package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store/storetest"
)

// Clients that read an answer slowly or not at all, over real TCP
// connections to the server as wanna-build --web runs it (Listen, Serve).
// The server's sockets send through small buffers and a non-reader's
// receive through a small one, so a log answer of megabytes leaves the
// server's writes blocked for as long as the client does not read: the
// tests know where the server is because its clients peek at what
// arrived, never because of how long something took. The timeouts are
// only guards against a broken server.

// guard is how long a test waits for what must come.
const guard = time.Minute

// sockBuf is the size asked for the server's send buffers and a
// non-reader's receive buffer (the kernel doubles it).
const sockBuf = 8 << 10

// slowLogQueue is a queue with one big log (bigLog, 5 MiB: its page is
// 2 MiB, its raw form 5 MiB) and returns the queue and the log's page.
func slowLogQueue(tb testing.TB) (spec, page string) {
	tb.Helper()
	spec = storetest.New(tb)
	db := openQueue(tb, spec)
	defer db.Close()
	if err := db.Update("sid", "amd64", func(tx queue.Tx) error {
		return tx.Put(&queue.Record{Package: "gcc", Version: "13-1", State: queue.Installed, StateChange: now - 3600})
	}); err != nil {
		tb.Fatal(err)
	}
	var gz bytes.Buffer
	if err := queue.CompressLog(&gz, strings.NewReader(bigLog), int64(len(bigLog))); err != nil {
		tb.Fatal(err)
	}
	l := &queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "gcc", Version: "13-1", Time: logEnd, Builder: "buildd_amd64",
		Status: "successful", Size: int64(len(bigLog)), Expires: time.Now().Unix() + 365*86400}
	if err := db.PutLog(l, gz.Bytes()); err != nil {
		tb.Fatal(err)
	}
	return spec, "/log/sid/amd64/gcc_13-1"
}

// smallSendBuffers gives every connection it accepts a send buffer of
// sockBuf.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetWriteBuffer(sockBuf); err != nil {
		c.Close()
		return nil, fmt.Errorf("send buffer of %s: %w", c.RemoteAddr(), err)
	}
	return c, nil
}

// serveTest serves h as wanna-build --web does (Listen, Serve) on a
// loopback port until the test ends, its connections' send buffers small
// when small is set; it returns the server's address.
func serveTest(tb testing.TB, h http.Handler, small bool) string {
	tb.Helper()
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sl := l
	if small {
		sl = smallSendBuffers{l}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sl, h) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// twoServers serves h on two ports until the test ends: slow, whose
// connections' send buffers are small, for the clients that do not read,
// and normal for the others.
func twoServers(tb testing.TB, h http.Handler) (slow, normal string) {
	tb.Helper()
	return serveTest(tb, h, true), serveTest(tb, h, false)
}

// nonReader sends GET path to addr from a socket with a receive buffer of
// sockBuf, reads nothing of the answer, and returns the connection and
// the answer's status code once the status line has arrived (peeked at,
// left unread). The connection is closed when the test ends.
func nonReader(tb testing.TB, addr, path string) (net.Conn, int) {
	tb.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, sockBuf)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		tb.Fatal(err)
	}
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	end := time.Now().Add(guard)
	c.SetReadDeadline(end)
	status := make([]byte, len("HTTP/1.1 200"))
	for {
		var n int
		var perr error
		if err := raw.Read(func(fd uintptr) bool {
			n, _, perr = syscall.Recvfrom(int(fd), status, syscall.MSG_PEEK)
			return perr != syscall.EAGAIN
		}); err != nil {
			tb.Fatalf("GET %s: waiting for the status line: %v", path, err)
		}
		switch {
		case perr != nil:
			tb.Fatalf("GET %s: peek: %v", path, perr)
		case n == 0:
			tb.Fatalf("GET %s: connection closed before the status line", path)
		case n == len(status):
			code, err := strconv.Atoi(string(status[len("HTTP/1.1 "):]))
			if err != nil {
				tb.Fatalf("GET %s: status line %q", path, status)
			}
			return c, code
		case time.Now().After(end):
			tb.Fatalf("GET %s: only %q of the status line after %v", path, status[:n], guard)
		}
		time.Sleep(time.Millisecond) // a part of the status line came
	}
}

// normalGet is an ordinary client's GET path from addr: its status and
// how long it took.
func normalGet(tb testing.TB, c *http.Client, addr, path string) (int, time.Duration) {
	tb.Helper()
	start := time.Now()
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, time.Since(start)
}

// inUse is the bytes taken.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// settle waits until the log answers being written hold want bytes: the
// server lets go of an answer just after its client has read the end.
func settle(tb testing.TB, want int64) {
	tb.Helper()
	for end := time.Now().Add(guard); logHeld.inUse() != want; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			tb.Fatalf("after %v, the log answers hold %d bytes, want %d", guard, logHeld.inUse(), want)
		}
	}
}

// setStall sets logStall until the test ends.
func setStall(tb testing.TB, d time.Duration) {
	old := logStall
	logStall = d
	tb.Cleanup(func() { logStall = old })
}

// TestSlowLogClients (issue 22, item 5): 4, then 100 clients that ask for
// a big log's page or raw form and never read the answer keep neither an
// ordinary page nor another client's log page from answering at once
// with 200. Each of them holds its answer (the server is blocked writing
// it) all along; what they hold leaves room for the other client.
func TestSlowLogClients(t *testing.T) {
	setStall(t, 10*guard) // the non-readers are not dropped during the test
	spec, page := slowLogQueue(t)
	s := &Server{DB: spec, Timeout: 5 * time.Second}
	t.Cleanup(func() { s.Close() })
	slow, normal := twoServers(t, s.Handler())
	client := &http.Client{Timeout: guard}
	paths := []string{page, page + "/raw"}
	held := map[string]int64{} // what the answer to a path holds
	var sum int64              // what the non-readers' answers hold
	n := 0
	for _, want := range []int{4, 100} {
		for ; n < want; n++ {
			path := paths[n%len(paths)]
			if _, code := nonReader(t, slow, path); code != 200 {
				t.Fatalf("non-reader %d, GET %s: %d", n, path, code)
			}
			// The answer is held from before its status line until its
			// last byte is written.
			got := logHeld.inUse() - sum
			if held[path] == 0 {
				held[path] = got
			}
			if got <= 0 || got != held[path] {
				t.Fatalf("non-reader %d, GET %s: its answer holds %d bytes, want %d (an earlier one was written?)", n, path, got, held[path])
			}
			sum += got
		}
		t.Logf("%d non-readers hold %d bytes of answers (%d at most)", n, sum, logHeld.max)
		for _, path := range []string{page, "/", page + "/raw"} {
			code, took := normalGet(t, client, normal, path)
			if code != 200 {
				t.Errorf("%d non-readers: GET %s: %d, want 200", n, path, code)
			}
			t.Logf("%d non-readers: GET %s: %d in %v", n, path, code, took)
		}
		settle(t, sum)
	}
}

// TestLogBusy: a log request that finds every slot taken or no room for
// its answer is a 503 with Retry-After, the other pages answering; when
// they are free again, it is answered.
func TestLogBusy(t *testing.T) {
	spec, page := slowLogQueue(t)
	ts := newServer(t, spec)
	takeSlots := func() func() {
		for range cap(logSlots) {
			logSlots <- struct{}{}
		}
		return func() {
			for range cap(logSlots) {
				<-logSlots
			}
		}
	}
	takeRoom := func() func() {
		settle(t, 0)
		if !logHeld.take(logHeld.max) {
			t.Fatal("cannot take all the room")
		}
		return func() { logHeld.give(logHeld.max) }
	}
	for _, tc := range []struct {
		name, path string
		take       func() func()
		want       string
	}{
		{"slots/page", page, takeSlots, "the 4 log readers are busy"},
		{"room/page", page, takeRoom, "no room for its"},
		{"room/api", "/api" + page, takeRoom, `"code": 503`},
		{"room/raw", page + "/raw", takeRoom, "no room for its"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := tc.take()
			resp, body := get(t, ts, "GET", tc.path)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != retryAfter || !strings.Contains(body, tc.want) {
				t.Errorf("GET %s: %d, Retry-After %q, body %.300q; want 503, Retry-After %s and %q",
					tc.path, resp.StatusCode, resp.Header.Get("Retry-After"), body, retryAfter, tc.want)
			}
			if resp, _ := get(t, ts, "GET", "/"); resp.StatusCode != 200 {
				t.Errorf("GET / while busy: %d", resp.StatusCode)
			}
			release()
			if resp, _ := get(t, ts, "GET", tc.path); resp.StatusCode != 200 {
				t.Errorf("GET %s when free: %d", tc.path, resp.StatusCode)
			}
		})
	}
	settle(t, 0)
}

// TestLogStall: a client that takes nothing of its log answer for
// logStall is dropped, its answer cut short (not ended as if whole), and
// what the answer held is free again.
func TestLogStall(t *testing.T) {
	setStall(t, 100*time.Millisecond)
	spec, page := slowLogQueue(t)
	s := &Server{DB: spec, Timeout: 5 * time.Second}
	t.Cleanup(func() { s.Close() })
	addr := serveTest(t, s.Handler(), true)
	for _, path := range []string{page, page + "/raw"} {
		t.Run(path, func(t *testing.T) {
			c, code := nonReader(t, addr, path)
			if code != 200 {
				t.Fatalf("GET %s: %d", path, code)
			}
			// Its answer is held from before the status line; nothing is
			// read until the server has let go of it.
			settle(t, 0)
			c.SetReadDeadline(time.Now().Add(guard))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("code %d, %d bytes of %d, %v; want 200 and the answer cut short", resp.StatusCode, len(body), resp.ContentLength, err)
			}
		})
	}
}

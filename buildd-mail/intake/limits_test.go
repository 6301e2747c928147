package intake

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"buildd/buildd-mail/mqueue"
)

// guard bounds how long a test waits for the server before it fails: far
// more than any bound under test, so that no case races the machine.
const guard = 30 * time.Second

// serveWith starts a listener on 127.0.0.1:0 with DefaultLimits changed by
// set; it stops when the test ends.
func serveWith(t *testing.T, lmtp bool, set func(*Limits)) (*Server, *mqueue.Queue) {
	t.Helper()
	q := mqueue.New(filepath.Join(t.TempDir(), "mqueue"))
	srv, err := Listen("127.0.0.1:0", lmtp, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set != nil {
		set(&srv.Limits)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, q
}

// dial connects a go-smtp client (LMTP or SMTP) and says hello.
func dial(t *testing.T, srv *Server, lmtp bool) (*smtp.Client, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(guard))
	c := smtp.NewClient(conn)
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.org"); err != nil {
		t.Fatalf("hello: %v", err)
	}
	return c, conn
}

// wantCode checks that err is the server's reply code/enhanced code.
func wantCode(t *testing.T, what string, err error, code int, ec smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != code || se.EnhancedCode != ec {
		t.Fatalf("%s: %v, want %d %d.%d.%d", what, err, code, ec[0], ec[1], ec[2])
	}
}

// wantClosed checks that the server closed the connection under c: the
// next command gets no reply.
func wantClosed(t *testing.T, c *smtp.Client) {
	t.Helper()
	if err := c.Noop(); err == nil || errors.As(err, new(*smtp.SMTPError)) {
		t.Errorf("the session is still open: NOOP answered %v", err)
	}
}

// TestRecipientBound: a mail takes Limits.Recipients RCPTs (advertised as
// LIMITS RCPTMAX); one more is refused 452 4.5.3, and the mail still goes
// to those taken.
func TestRecipientBound(t *testing.T) {
	for _, lmtp := range []bool{true, false} {
		t.Run(map[bool]string{true: "LMTP", false: "SMTP"}[lmtp], func(t *testing.T) {
			srv, q := serveWith(t, lmtp, nil)
			c, _ := dial(t, srv, lmtp)
			if ok, v := c.Extension("LIMITS"); !ok || v != "RCPTMAX="+strconv.Itoa(MaxRecipients) {
				t.Errorf("EHLO advertises LIMITS %v %q, want RCPTMAX=%d", ok, v, MaxRecipients)
			}
			if err := c.Mail("a@example.org", nil); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < MaxRecipients; i++ {
				if err := c.Rcpt(fmt.Sprintf("r%d@example.org", i), nil); err != nil {
					t.Fatalf("RCPT %d: %v", i+1, err)
				}
			}
			wantCode(t, fmt.Sprintf("RCPT %d", MaxRecipients+1), c.Rcpt("one-too-many@example.org", nil), 452, smtp.EnhancedCode{4, 5, 3})
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n")
			if err := w.Close(); err != nil {
				t.Fatalf("DATA after the refused RCPT: %v", err)
			}
			if names, _ := q.List(); len(names) != 1 {
				t.Errorf("%d mails stored, want 1", len(names))
			}
		})
	}
}

// TestSessionBounds: the bounds that end a session, each answered 421 and
// the connection closed; and the sessions beyond Limits.Sessions, answered
// 421 at once.
func TestSessionBounds(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Limits)
		// flood sends commands until one fails, and returns that error
		// and how many were answered before it.
		flood func(c *smtp.Client, conn net.Conn) (int, error)
		want  smtp.EnhancedCode
		// answered is how many commands of the flood must be answered
		// (-1: any number).
		answered int
	}{
		{name: "NOOP flood (answered by go-smtp alone)",
			set:   func(l *Limits) { l.Commands = 50 },
			flood: repeat(func(c *smtp.Client) error { return c.Noop() }),
			// The greeting and EHLO are 2 of the 50 replies.
			want: smtp.EnhancedCode{4, 7, 0}, answered: 48},
		{name: "RCPT flood past the recipient bound",
			set: func(l *Limits) { l.Commands = 300 },
			flood: func(c *smtp.Client, _ net.Conn) (int, error) {
				if err := c.Mail("a@example.org", nil); err != nil {
					return 0, err
				}
				n := 1
				for i := 0; ; i++ {
					err := c.Rcpt(fmt.Sprintf("r%d@example.org", i), nil)
					var se *smtp.SMTPError
					if err != nil && (!errors.As(err, &se) || se.Code != 452 || i < MaxRecipients) {
						return n, err
					}
					n++
				}
			},
			want: smtp.EnhancedCode{4, 7, 0}, answered: 298},
		{name: "slow session cut at the session's end",
			set: func(l *Limits) { l.SessionTime = 300 * time.Millisecond },
			flood: repeat(func(c *smtp.Client) error {
				time.Sleep(20 * time.Millisecond)
				return c.Noop()
			}),
			want: smtp.EnhancedCode{4, 4, 2}, answered: -1},
		{name: "idle session cut at the session's end",
			set:   func(l *Limits) { l.SessionTime = 300 * time.Millisecond },
			flood: idle,
			want:  smtp.EnhancedCode{4, 4, 2}, answered: 0},
		{name: "idle session cut by the read timeout",
			set:   func(l *Limits) { l.ReadTimeout = 300 * time.Millisecond },
			flood: idle,
			want:  smtp.EnhancedCode{4, 4, 2}, answered: 0},
	}
	for _, c := range cases {
		for _, lmtp := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/lmtp=%v", c.name, lmtp), func(t *testing.T) {
				srv, _ := serveWith(t, lmtp, c.set)
				cl, conn := dial(t, srv, lmtp)
				n, err := c.flood(cl, conn)
				wantCode(t, "the command ending the flood", err, 421, c.want)
				if c.answered >= 0 && n != c.answered {
					t.Errorf("%d commands answered before 421, want %d", n, c.answered)
				}
				wantClosed(t, cl)
			})
		}
	}
}

// repeat sends cmd until it fails.
func repeat(cmd func(c *smtp.Client) error) func(c *smtp.Client, conn net.Conn) (int, error) {
	return func(c *smtp.Client, _ net.Conn) (int, error) {
		for n := 0; ; n++ {
			if err := cmd(c); err != nil {
				return n, err
			}
		}
	}
}

// idle sends nothing after the greeting: it waits for the server to
// speak, and returns what it says (the reply that ends the session) as an
// error.
func idle(_ *smtp.Client, conn net.Conn) (int, error) {
	code, msg, err := textproto.NewReader(bufio.NewReader(conn)).ReadResponse(0)
	if err != nil && code == 0 {
		return 0, err
	}
	se := &smtp.SMTPError{Code: code, Message: msg}
	if _, err := fmt.Sscanf(msg, "%d.%d.%d ", &se.EnhancedCode[0], &se.EnhancedCode[1], &se.EnhancedCode[2]); err != nil {
		return 0, fmt.Errorf("reply %d %q: no enhanced code", code, msg)
	}
	return 0, se
}

// TestSessionsAtOnce: with Limits.Sessions open, one more connection is
// answered 421 4.3.2 and closed; once one ends, a new one is served.
func TestSessionsAtOnce(t *testing.T) {
	const n = 3
	srv, _ := serveWith(t, false, func(l *Limits) { l.Sessions = n })
	var open []*textproto.Conn
	for i := 0; i < n; i++ {
		tc := connect(t, srv)
		if _, _, err := tc.ReadResponse(220); err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		open = append(open, tc)
	}
	tc := connect(t, srv)
	if code, msg, err := tc.ReadResponse(421); err != nil || !strings.HasPrefix(msg, "4.3.2 ") {
		t.Fatalf("session %d: %d %q %v, want 421 4.3.2", n+1, code, msg, err)
	}
	if _, err := tc.ReadLine(); !errors.Is(err, io.EOF) {
		t.Errorf("the busy connection is not closed: %v", err)
	}
	open[0].PrintfLine("QUIT")
	if _, _, err := open[0].ReadResponse(221); err != nil {
		t.Fatal(err)
	}
	// The slot is freed when the server has closed the session: a new
	// connection may still find it taken for a moment.
	end := time.Now().Add(guard)
	for {
		tc := connect(t, srv)
		code, msg, err := tc.ReadResponse(220)
		if err == nil {
			break
		}
		if code != 421 || time.Now().After(end) {
			t.Fatalf("after one session ended: %d %q %v, want 220", code, msg, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connect(t *testing.T, srv *Server) *textproto.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(guard))
	t.Cleanup(func() { conn.Close() })
	return textproto.NewConn(conn)
}

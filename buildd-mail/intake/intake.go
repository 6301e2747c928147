// Package intake owns how mail enters buildd-mail: the .forward pipe (one
// mail on stdin) and the LMTP/SMTP listener (go-smtp). Both acknowledge a
// mail only after mqueue has stored it durably, and both refuse, for good,
// a mail over MaxSize without storing any of it. The listener bounds its
// sessions: how many at once, recipients, replies and time (see Limits).
package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"buildd/buildd-mail/mqueue"
	"buildd/internal/mailer"
)

// The exit statuses of pipe mode, sendmail's (sysexits.h).
const (
	// ExDataErr is EX_DATAERR: the mail is refused for good (over MaxSize);
	// the MTA bounces it.
	ExDataErr = 65
	// ExTempFail is EX_TEMPFAIL: the MTA keeps the mail and retries.
	ExTempFail = 75
)

// MaxSize is the largest mail taken in, on either path: mqueue's.
const MaxSize = mqueue.MaxSize

// Pipe stores the mail on r. The returned exit status is 0 once the mail is
// stored, ExDataErr when it is over MaxSize (nothing is stored; the rest of
// r is read and dropped, so that the MTA sees the exit status rather than a
// broken pipe), ExTempFail when it could not be stored.
func Pipe(q *mqueue.Queue, r io.Reader) (string, int, error) {
	n, err := q.Store(r)
	if errors.Is(err, mqueue.ErrTooBig) {
		io.Copy(io.Discard, r)
		return "", ExDataErr, err
	}
	if err != nil {
		return "", ExTempFail, err
	}
	return n, 0, nil
}

// The listener's bounds: what one client, or many, can take of it. They are
// constants, not config keys: a buildd gets a few mails an hour, from its
// own MTA, and these leave that MTA ample room; a test sets its own
// through Server.Limits.
const (
	// MaxSessions is how many sessions are served at once; a connection
	// beyond it is answered 421 (busy) and closed, and the MTA retries.
	MaxSessions = 20
	// MaxRecipients is how many RCPTs one mail takes; more are answered 452
	// (RFC 5321 4.5.3.1.10: the client sends them in another transaction).
	MaxRecipients = 100
	// MaxCommands is how many replies a session gets (the greeting, one to
	// each command, one per recipient to an LMTP DATA): then it gets 421
	// and is closed. Replies, not calls into the backend, are counted, so
	// that the commands go-smtp answers alone (NOOP, VRFY, RCPT past
	// MaxRecipients) are bounded too.
	MaxCommands = 1000
	// MaxSessionTime is how long a session may last, however busy: its
	// reads fail when it has passed, and the session is closed with 421.
	MaxSessionTime = 10 * time.Minute
	// ReadTimeout is how long the listener waits for a command, and for
	// the whole of a mail's data after DATA; WriteTimeout for a reply.
	ReadTimeout  = 5 * time.Minute
	WriteTimeout = time.Minute
)

// Limits are a listener's bounds (see the constants).
type Limits struct {
	Sessions     int
	Recipients   int
	Commands     int
	SessionTime  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// DefaultLimits are the constants above.
var DefaultLimits = Limits{
	Sessions:     MaxSessions,
	Recipients:   MaxRecipients,
	Commands:     MaxCommands,
	SessionTime:  MaxSessionTime,
	ReadTimeout:  ReadTimeout,
	WriteTimeout: WriteTimeout,
}

// Server is the LMTP/SMTP listener.
type Server struct {
	// Limits bound the sessions Serve serves (DefaultLimits from Listen).
	Limits Limits

	srv *smtp.Server
	l   net.Listener
}

// Listen opens addr ("host:port", or a path for a unix socket) and serves
// LMTP when lmtp is set, else SMTP. Each mail is stored before 250 is
// answered; stored is then called with its name.
func Listen(addr string, lmtp bool, q *mqueue.Queue, stored func(name string)) (*Server, error) {
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
		os.Remove(addr)
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := smtp.NewServer(backend{q: q, stored: stored})
	srv.LMTP = lmtp
	srv.Domain = mailer.Hostname()
	// go-smtp refuses a mail of exactly MaxMessageBytes (its reader fails
	// before it sees the end of the data), so it stops one byte later and
	// Store refuses that byte: a mail of MaxSize bytes is taken, as in pipe
	// mode, and a larger one gets 552 from either.
	srv.MaxMessageBytes = MaxSize + 1
	return &Server{Limits: DefaultLimits, srv: srv, l: l}, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Serve runs until ctx ends, within s.Limits.
func (s *Server) Serve(ctx context.Context) error {
	if l := s.Limits; l.Sessions < 1 || l.Recipients < 1 || l.Commands < 1 || l.SessionTime <= 0 || l.ReadTimeout <= 0 || l.WriteTimeout <= 0 {
		return fmt.Errorf("serve %s: limits %+v: every bound must be positive", s.l.Addr(), l)
	}
	s.srv.MaxRecipients = s.Limits.Recipients
	s.srv.ReadTimeout = s.Limits.ReadTimeout
	s.srv.WriteTimeout = s.Limits.WriteTimeout
	go func() {
		<-ctx.Done()
		s.srv.Close()
	}()
	err := s.srv.Serve(&limitListener{Listener: s.l, lim: s.Limits, slots: make(chan struct{}, s.Limits.Sessions)})
	if errors.Is(err, smtp.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
}

// limitListener hands go-smtp at most lim.Sessions connections at once,
// each a limitConn; one beyond is answered 421 and closed here.
type limitListener struct {
	net.Listener
	lim   Limits
	slots chan struct{}
}

// busy is the answer to a connection beyond Limits.Sessions.
const busy = "421 4.3.2 Too many sessions at once, try again later\r\n"

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			lc := &limitConn{Conn: c, lim: l.lim, end: time.Now().Add(l.lim.SessionTime), free: func() { <-l.slots }}
			lc.SetReadDeadline(lc.end)
			return lc, nil
		default:
			// A fresh socket's send buffer takes the line at once; the
			// deadline is only a guard.
			c.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c, busy)
			c.Close()
		}
	}
}

// The replies that end a session: after Limits.Commands replies, and when
// its Limits.SessionTime has passed.
const (
	tooMany  = "421 4.7.0 Too many commands in one session, closing it\r\n"
	timeOver = "421 4.4.2 Session time is over, closing it\r\n"
)

// A session ended by the listener's bounds lingers before go-smtp closes
// it (Apache's lingering close): its end is sent (FIN) after the last
// reply, and the input the client had already sent is read and dropped, up
// to lingerBytes or for lingerTime, so that the close does not reset the
// connection and take the last replies with it.
const (
	lingerBytes = 4 << 20
	lingerTime  = 2 * time.Second
)

// limitConn is one session's connection. It counts the final reply lines
// go-smtp writes, and no read waits past the session's end. After
// lim.Commands replies, or at the end, it writes the reply that ends the
// session and lingers; it drops every later reply (to commands the client
// had already sent) and reads nothing more, so that go-smtp sees the end
// of the input and closes the session.
type limitConn struct {
	net.Conn
	lim  Limits
	end  time.Time
	free func()

	mu      sync.Mutex
	replies int
	head    []byte // the start of the reply line being written
	over    bool   // the session is over, its last reply written
	drained bool   // and what the client sent after it dropped
	closed  bool
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.ended() {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(c.end) {
		c.mu.Lock()
		c.finish(timeOver)
		c.mu.Unlock()
		c.ended()
		return n, io.EOF
	}
	return n, err
}

// ended reports whether the session is over, lingering the first time.
func (c *limitConn) ended() bool {
	c.mu.Lock()
	over, linger := c.over, c.over && !c.drained
	c.drained = c.over
	c.mu.Unlock()
	if linger {
		c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, c.Conn, lingerBytes)
	}
	return over
}

func (c *limitConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	for _, b := range p[:n] {
		if b == '\n' {
			// "DDD text" ends a reply ("DDD-text" continues it); a 3xx
			// (354 to DATA) asks for more of the same command.
			if len(c.head) == 4 && c.head[3] == ' ' && (c.head[0] == '2' || c.head[0] == '4' || c.head[0] == '5') {
				c.replies++
			}
			c.head = c.head[:0]
		} else if len(c.head) < 4 {
			c.head = append(c.head, b)
		}
	}
	if err == nil && c.replies >= c.lim.Commands {
		err = c.finish(tooMany)
	}
	return n, err
}

// finish writes the session's last reply and sends its end, once; c.mu is
// held.
func (c *limitConn) finish(reply string) error {
	if c.over {
		return nil
	}
	c.over = true
	c.Conn.SetWriteDeadline(time.Now().Add(c.lim.WriteTimeout))
	_, err := io.WriteString(c.Conn, reply)
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	return err
}

// SetReadDeadline keeps every read within the session's time.
func (c *limitConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() || t.After(c.end) {
		t = c.end
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is SetReadDeadline (within the session's time) and
// SetWriteDeadline.
func (c *limitConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// Close closes the connection and frees its session's slot, once.
func (c *limitConn) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	if first {
		defer c.free()
	}
	return c.Conn.Close()
}

type backend struct {
	q      *mqueue.Queue
	stored func(string)
}

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{b: b}, nil }

type session struct{ b backend }

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Reset()                               {}
func (s *session) Logout() error                        { return nil }

// errTooBig is the answer to a mail over MaxSize, go-smtp's own for one
// over MaxMessageBytes with the limit in the text: permanent, so the sending
// MTA bounces the mail instead of retrying it.
var errTooBig = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
	Message: fmt.Sprintf("message too big: the limit is %d bytes", MaxSize)}

func (s *session) Data(r io.Reader) error {
	n, err := s.b.q.Store(r)
	if errors.Is(err, mqueue.ErrTooBig) {
		return errTooBig
	}
	if err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the mail now, try again later"}
	}
	if s.b.stored != nil {
		s.b.stored(n)
	}
	return nil
}

// Package intake owns how mail enters buildd-mail: the .forward pipe (one
// mail on stdin) and the LMTP/SMTP listener (go-smtp). Both acknowledge a
// mail only after mqueue has stored it durably, and both refuse, for good,
// a mail over MaxSize without storing any of it.
package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"buildd/buildd-mail/mqueue"
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

// Server is the LMTP/SMTP listener.
type Server struct {
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
	srv.Domain, _ = os.Hostname()
	// go-smtp refuses a mail of exactly MaxMessageBytes (its reader fails
	// before it sees the end of the data), so it stops one byte later and
	// Store refuses that byte: a mail of MaxSize bytes is taken, as in pipe
	// mode, and a larger one gets 552 from either.
	srv.MaxMessageBytes = MaxSize + 1
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	return &Server{srv: srv, l: l}, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Serve runs until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.srv.Close()
	}()
	err := s.srv.Serve(s.l)
	if errors.Is(err, smtp.ErrServerClosed) || ctx.Err() != nil {
		return nil
	}
	return err
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

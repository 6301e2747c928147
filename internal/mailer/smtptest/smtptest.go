// Package smtptest runs a real go-smtp server on 127.0.0.1:0 for tests, in
// the manner of net/http/httptest: every mail it accepts is kept, whole, for
// the test to read, and every recipient it is given is noted; it can be told
// to refuse recipients with a 4xx or 5xx reply.
package smtptest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one accepted message with its envelope.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// Server is a running SMTP server.
type Server struct {
	Addr string // host:port to give the client

	srv    *smtp.Server
	mu     sync.Mutex
	mail   []Mail
	rcpts  []string
	code   int
	refuse func(to string) bool
	cond   *sync.Cond
}

// NewServer starts a server on 127.0.0.1:0. Close it when done.
func NewServer() (*Server, error) {
	s := &Server{}
	s.cond = sync.NewCond(&s.mu)
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	go s.srv.Serve(l)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Mails returns a copy of what was accepted so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

// Refuse makes the server answer RCPT TO with code (a 4xx or 5xx reply)
// for every address that match accepts (nil: every address), until it is
// called again; Refuse(0, nil) accepts every address again. Addresses the
// server's own syntax check refuses (501) are refused as before.
func (s *Server) Refuse(code int, match func(to string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.code, s.refuse = code, match
}

// Rcpts returns every address the server was given in an RCPT TO that it
// could parse so far, the refused ones included.
func (s *Server) Rcpts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rcpts...)
}

// Wait blocks until at least n mails arrived or timeout passed, and returns
// what arrived.
func (s *Server) Wait(n int, timeout time.Duration) []Mail {
	deadline := time.Now().Add(timeout)
	go func() {
		time.Sleep(timeout)
		s.cond.Broadcast()
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.mail) < n && time.Now().Before(deadline) {
		s.cond.Wait()
	}
	return append([]Mail(nil), s.mail...)
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s  *Server
	mf Mail
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.mf = Mail{From: from}
	return nil
}
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	s.rcpts = append(s.rcpts, to)
	code, refuse := s.code, s.code != 0 && (s.refuse == nil || s.refuse(to))
	s.mu.Unlock()
	if refuse {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: fmt.Sprintf("smtptest refuses <%s>", to)}
	}
	ss.mf.To = append(ss.mf.To, to)
	return nil
}
func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.mf.Data = b
	ss.s.mu.Lock()
	ss.s.mail = append(ss.s.mail, ss.mf)
	ss.s.mu.Unlock()
	ss.s.cond.Broadcast()
	return nil
}
func (ss *session) Reset()        { ss.mf = Mail{} }
func (ss *session) Logout() error { return nil }

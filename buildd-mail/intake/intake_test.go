package intake

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"buildd/buildd-mail/mqueue"
)

// TestServe sends a mail over LMTP and SMTP with go-smtp's client: when the
// server has answered 250 the mail is in mqueue/new.
func TestServe(t *testing.T) {
	for _, lmtp := range []bool{true, false} {
		q := mqueue.New(filepath.Join(t.TempDir(), "mqueue"))
		stored := make(chan string, 1)
		srv, err := Listen("127.0.0.1:0", lmtp, q, func(n string) { stored <- n })
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go srv.Serve(ctx)
		conn, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		var c *smtp.Client
		if lmtp {
			c = smtp.NewClientLMTP(conn)
		} else {
			c = smtp.NewClient(conn)
		}
		msg := "From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n"
		if err := c.SendMail("a@example.org", []string{"buildd@example.org"}, strings.NewReader(msg)); err != nil {
			t.Fatalf("lmtp=%v: %v", lmtp, err)
		}
		names, _ := q.List()
		if len(names) != 1 {
			t.Fatalf("lmtp=%v: %d mails stored after 250", lmtp, len(names))
		}
		if b, _ := q.Read(names[0]); !strings.Contains(string(b), "hello") {
			t.Errorf("stored %q", b)
		}
		if n := <-stored; n != names[0] {
			t.Errorf("callback %q, want %q", n, names[0])
		}
		c.Close()
		cancel()
	}
}

// mailOf generates a mail of exactly size bytes (at least 64), its body in
// CRLF lines of at most 81 bytes, without holding it; read counts the bytes
// read so far.
type mailOf struct {
	size, read int64
}

const mailHead = "From: big@example.org\r\nTo: buildd@example.org\r\nSubject: big\r\n\r\n"

func (m *mailOf) Read(p []byte) (int, error) {
	if m.read == m.size {
		return 0, io.EOF
	}
	n := 0
	for ; n < len(p) && m.read < m.size; n, m.read = n+1, m.read+1 {
		p[n] = m.byteAt(m.read)
	}
	return n, nil
}

// byteAt is the mail's byte i: the header, then a first line as long as
// makes the others 80 bytes each.
func (m *mailOf) byteAt(i int64) byte {
	if i < int64(len(mailHead)) {
		return mailHead[i]
	}
	i -= int64(len(mailHead))
	line := (m.size - int64(len(mailHead))) % 80
	if line < 2 {
		line += 80
	}
	if i >= line {
		i, line = (i-line)%80, 80
	}
	switch i {
	case line - 2:
		return '\r'
	case line - 1:
		return '\n'
	}
	return 'x'
}

// TestPipe is the .forward path: a mail up to MaxSize is stored, a larger
// one is refused with ExDataErr after writing at most MaxSize+1 bytes of it
// to the queue's tmp/ (removed) and none to memory, the rest drained; a
// queue that cannot be written is ExTempFail.
func TestPipe(t *testing.T) {
	for _, c := range []struct {
		name       string
		size       int64
		brokenDir  bool
		code       int
		err        error
		stored     int
		maxAllocMB uint64
	}{
		{"small mail", 200, false, 0, nil, 1, 1},
		{"MaxSize", MaxSize, false, 0, nil, 1, 1},
		{"MaxSize+1", MaxSize + 1, false, ExDataErr, mqueue.ErrTooBig, 0, 1},
		{"50 MB", 50 << 20, false, ExDataErr, mqueue.ErrTooBig, 0, 1},
		{"queue is a file", 200, true, ExTempFail, nil, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mqueue")
			if c.brokenDir {
				if err := os.WriteFile(dir, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			q := mqueue.New(dir)
			src := &mailOf{size: c.size}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			name, code, err := Pipe(q, src)
			runtime.ReadMemStats(&after)
			if code != c.code || (err == nil) != (code == 0) || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("Pipe = %q, %d, %v; want code %d, error %v", name, code, err, c.code, c.err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > c.maxAllocMB<<20 {
				t.Errorf("Pipe allocated %d bytes for a mail of %d", alloc, c.size)
			}
			if code != ExTempFail && src.read != c.size {
				t.Errorf("read %d bytes of %d: the MTA would see a broken pipe", src.read, c.size)
			}
			if c.brokenDir {
				return
			}
			names, _ := q.List()
			if len(names) != c.stored {
				t.Fatalf("%d mails stored, want %d", len(names), c.stored)
			}
			if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
				t.Errorf("left in tmp/: %v", tmp)
			}
			if c.stored == 1 {
				if st, err := os.Stat(filepath.Join(dir, "new", names[0])); err != nil || st.Size() != c.size || name != names[0] {
					t.Errorf("stored %q (%v), want %q of %d bytes", names[0], err, name, c.size)
				}
			}
		})
	}
}

// TestServeSizeCap sends mails of MaxSize and MaxSize+1 bytes over LMTP and
// SMTP with go-smtp's client (DATA), and over SMTP with BDAT: the first is
// stored, the second refused with a permanent 552 5.3.4 and not stored.
func TestServeSizeCap(t *testing.T) {
	for _, lmtp := range []bool{true, false} {
		q := mqueue.New(filepath.Join(t.TempDir(), "mqueue"))
		srv, err := Listen("127.0.0.1:0", lmtp, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go srv.Serve(ctx)
		for _, c := range []struct {
			size   int64
			bdat   bool
			stored bool
		}{
			{MaxSize, false, true},
			{MaxSize + 1, false, false},
			{MaxSize + 1, true, false},
			{MaxSize + 64<<10, true, false},
		} {
			if c.bdat && lmtp {
				continue
			}
			t.Run(fmt.Sprintf("lmtp=%v/bdat=%v/%d", lmtp, c.bdat, c.size), func(t *testing.T) {
				before, _ := q.List()
				var err error
				if c.bdat {
					err = sendBDAT(srv.Addr().String(), &mailOf{size: c.size}, c.size)
				} else {
					err = sendDATA(srv.Addr().String(), lmtp, &mailOf{size: c.size})
				}
				after, _ := q.List()
				if c.stored {
					if err != nil || len(after) != len(before)+1 {
						t.Fatalf("%v; %d mails stored, want 1", err, len(after)-len(before))
					}
					if b, err := q.Read(after[len(after)-1]); err != nil || int64(len(b)) != c.size {
						t.Errorf("stored %d bytes (%v), want %d", len(b), err, c.size)
					}
					return
				}
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != 552 || se.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
					t.Errorf("answer %v, want 552 5.3.4", err)
				}
				if len(after) != len(before) {
					t.Errorf("%d mails stored", len(after)-len(before))
				}
				if tmp, _ := os.ReadDir(filepath.Join(q.Dir, "tmp")); len(tmp) != 0 {
					t.Errorf("left in tmp/: %v", tmp)
				}
			})
		}
	}
}

func sendDATA(addr string, lmtp bool, r io.Reader) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	}
	defer c.Close()
	return c.SendMail("big@example.org", []string{"buildd@example.org"}, r)
}

// sendBDAT sends the mail in one BDAT chunk (RFC 3030), which go-smtp's
// client does not do, and returns the answer to it.
func sendBDAT(addr string, r io.Reader, size int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	tc := textproto.NewConn(conn)
	for _, step := range []struct {
		cmd  string
		code int
	}{{"", 220}, {"EHLO test", 250}, {"MAIL FROM:<big@example.org>", 250}, {"RCPT TO:<buildd@example.org>", 250}} {
		if step.cmd != "" {
			if err := tc.PrintfLine("%s", step.cmd); err != nil {
				return err
			}
		}
		if _, _, err := tc.ReadResponse(step.code); err != nil {
			return fmt.Errorf("%q: %w", step.cmd, err)
		}
	}
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "BDAT %d LAST\r\n", size)
	if _, err := io.Copy(w, r); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	code, msg, err := tc.ReadResponse(250)
	if err == nil {
		return nil
	}
	var ec smtp.EnhancedCode
	if _, serr := fmt.Sscanf(msg, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); serr != nil {
		return err
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}

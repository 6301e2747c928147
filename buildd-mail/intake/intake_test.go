package intake

import (
	"context"
	"net"
	"path/filepath"
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

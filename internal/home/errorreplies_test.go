package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestErrorReplyRate takes error replies in turn from mail-error-replies
// (a fixture of testdata/error-replies, or none): each step is sent, over
// the rate, or an error; the file at the end is want.
func TestErrorReplyRate(t *testing.T) {
	now := time.Unix(1780272000, 0)
	type step struct {
		addr string
		at   time.Duration // after now
		rate int
		want string // "": sent; else a substring of the error
	}
	over := ErrOverRate.Error()
	tests := []struct {
		name    string
		fixture string
		steps   []step
		want    string
	}{
		{"per address", "", []step{
			{"a@example.org", 0, 3, ""},
			{"a@example.org", time.Second, 3, ""},
			{"b@example.org", time.Second, 3, ""},
			{"a@example.org", 2 * time.Second, 3, ""},
			{"a@example.org", 3 * time.Second, 3, over + ": 3 error replies went to a@example.org within 1h0m0s (error_reply_rate = 3)"},
			{"A@Example.ORG", 4 * time.Second, 3, over},
		}, "a@example.org 1780272000 1780272001 1780272002\nb@example.org 1780272001\n"},
		{"window slides", "", []step{
			{"a@example.org", 0, 2, ""},
			{"a@example.org", 10 * time.Minute, 2, ""},
			{"a@example.org", 20 * time.Minute, 2, over},
			{"a@example.org", 60 * time.Minute, 2, ""}, // the first is an hour old
			{"a@example.org", 65 * time.Minute, 2, over},
		}, "a@example.org 1780272600 1780275600\n"},
		{"rate 0", "", []step{
			{"a@example.org", 0, 0, over + ": error_reply_rate is 0"},
		}, ""},
		{"old replies forgotten", "good", []step{
			{"admin@example.org", 0, 1, over},
			{"mallory@example.net", 0, 3, over},
			{"mallory@example.net", 34 * time.Minute, 3, ""},
		}, "admin@example.org 1780271400\nmallory@example.net 1780271000 1780271900 1780274040\n"},
		{"one-field line", "one-field", []step{
			{"a@example.org", 0, 5, `mail-error-replies:2: not "address unixtime ...": "garbage"`},
		}, "admin@example.org 1780271400\ngarbage\n"},
		{"bad time", "bad-time", []step{
			{"a@example.org", 0, 5, `mail-error-replies:1: bad time "yesterday" in`},
		}, "admin@example.org 1780271400 yesterday\n"},
		{"bad address", "", []step{
			{"a@example.org b@example.org", 0, 5, "bad address"},
			{"", 0, 5, "bad address"},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			path := h.Path("mail-error-replies")
			if tt.fixture != "" {
				b, err := os.ReadFile(filepath.Join("testdata", "error-replies", tt.fixture))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(path, b, 0o644)
			}
			for i, s := range tt.steps {
				err := h.ErrorReplies().Take(s.addr, now.Add(s.at), s.rate)
				switch {
				case s.want == "" && err != nil:
					t.Errorf("step %d: Take(%q) = %v, want it sent", i, s.addr, err)
				case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
					t.Errorf("step %d: Take(%q) = %v, want %q", i, s.addr, err, s.want)
				case s.want != "" && strings.HasPrefix(s.want, over) != errors.Is(err, ErrOverRate):
					t.Errorf("step %d: Take(%q) = %v: ErrOverRate wrapped: %v", i, s.addr, err, errors.Is(err, ErrOverRate))
				}
			}
			b, _ := os.ReadFile(path)
			if string(b) != tt.want {
				t.Errorf("mail-error-replies:\n%s\nwant:\n%s", b, tt.want)
			}
		})
	}
}

// TestErrorReplyAddressBound: while MaxErrorReplyAddrs addresses were
// answered within the hour a new one gets nothing (the ones tracked still
// get their rate); an hour later the file is down to the new reply.
func TestErrorReplyAddressBound(t *testing.T) {
	h := New(t.TempDir())
	now := time.Unix(1780272000, 0)
	var b strings.Builder
	for i := range MaxErrorReplyAddrs {
		fmt.Fprintf(&b, "a%d@example.org %d\n", i, now.Add(-10*time.Minute).Unix())
	}
	path := h.Path("mail-error-replies")
	os.WriteFile(path, []byte(b.String()), 0o644)
	if err := h.ErrorReplies().Take("new@example.org", now, 5); !errors.Is(err, ErrOverRate) || !strings.Contains(err.Error(), "1000 addresses") {
		t.Errorf("a new address beyond the bound: %v, want over the rate", err)
	}
	if err := h.ErrorReplies().Take("a7@example.org", now, 5); err != nil {
		t.Errorf("a tracked address: %v", err)
	}
	if err := h.ErrorReplies().Take("new@example.org", now.Add(51*time.Minute), 5); err != nil {
		t.Errorf("an hour later: %v", err)
	}
	got, _ := os.ReadFile(path)
	if want := fmt.Sprintf("a7@example.org %d\nnew@example.org %d\n", now.Unix(), now.Add(51*time.Minute).Unix()); string(got) != want {
		t.Errorf("mail-error-replies:\n%.300s\nwant:\n%s", got, want)
	}
}

// TestErrorReplyConcurrent: takers in parallel (each its own open of the
// lock, as separate processes) never send more than the rate.
func TestErrorReplyConcurrent(t *testing.T) {
	h := New(t.TempDir())
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range 40 {
		wg.Go(func() {
			err := h.ErrorReplies().Take("a@example.org", now, 5)
			if err != nil && !errors.Is(err, ErrOverRate) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sent != 5 {
		t.Errorf("%d replies taken in parallel at rate 5", sent)
	}
}

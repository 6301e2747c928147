package watch

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPruneReplies: a watcher run drops the sent-mails records and the
// mail-signatures lines older than reply_window (here 10 days) and keeps
// the rest.
func TestPruneReplies(t *testing.T) {
	h, w := newWatcher(t, "reply_window = 10\n")
	day := 24 * time.Hour
	now := time.Now()
	at := func(age time.Duration) int64 { return now.Add(-age).Unix() }
	sent := []string{
		fmt.Sprintf("old@h %d bookworm a_1 log", at(11*day)),
		fmt.Sprintf("new@h %d bookworm b_1 log", at(9*day)),
		fmt.Sprintf("q@h %d bookworm c_1 should-build", at(time.Hour)),
	}
	sigs := []string{
		fmt.Sprintf("s1 %d F 1.1.1", at(30*day)),
		fmt.Sprintf("s2 %d F 1.1.2", at(11*day)),
		fmt.Sprintf("s3 %d F 1.1.3", at(day)),
	}
	h.Write(t, "sent-mails", strings.Join(sent, "\n")+"\n", 0)
	h.Write(t, "mail-signatures", strings.Join(sigs, "\n")+"\n", 0)
	r, err := w.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	if r.PrunedSent != 1 || r.PrunedSignatures != 2 {
		t.Errorf("pruned %d sent, %d signatures; want 1, 2", r.PrunedSent, r.PrunedSignatures)
	}
	for _, c := range []struct{ file, want string }{
		{"sent-mails", strings.Join(sent[1:], "\n") + "\n"},
		{"mail-signatures", sigs[2] + "\n"},
	} {
		b, err := os.ReadFile(h.Home.Path(c.file))
		if err != nil || string(b) != c.want {
			t.Errorf("%s = %q (%v), want %q", c.file, b, err, c.want)
		}
	}
	if b, _ := os.ReadFile(h.Cfg.DaemonLogFile); !strings.Contains(string(b), "reply_window 10 days: forgot 1 sent mail(s) and 2 signature(s)") {
		t.Errorf("not logged:\n%s", b)
	}
	// Nothing old left: a second run changes nothing.
	r, err = w.Run(context.Background())
	if err != nil || r.PrunedSent+r.PrunedSignatures != 0 {
		t.Errorf("second run pruned %d+%d (%v)", r.PrunedSent, r.PrunedSignatures, err)
	}
}

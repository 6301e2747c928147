package verify

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Memory is the append-only record of every accepted signature,
// ~/mail-signatures: "SIGNATURE-ID unixtime FINGERPRINT MAIL" a line, MAIL
// being the mqueue name of the mail that carried it. A signature seen
// before with another mail is a replay; seen with the same mail, the
// processing of that mail was interrupted and is being resumed.
type Memory struct {
	path string
	seen map[string]string // signature ID -> mail
}

// OpenMemory reads the record at path (missing: empty).
func OpenMemory(path string) (*Memory, error) {
	m := &Memory{path: path, seen: map[string]string{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 {
			m.seen[f[0]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("signature memory %s: %w", path, err)
	}
	return m, nil
}

// Seen returns the mail that first carried signature id.
func (m *Memory) Seen(id string) (mail string, ok bool) {
	mail, ok = m.seen[id]
	return
}

// Remember records r as used by mail, durably, before the mail acts.
func (m *Memory) Remember(r *Result, mail string) error {
	if prev, ok := m.seen[r.ID]; ok && prev == mail {
		return nil
	}
	f, err := os.OpenFile(m.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("signature memory: %w", err)
	}
	if _, err := fmt.Fprintf(f, "%s %d %s %s\n", r.ID, r.Created.Unix(), r.Fingerprint, mail); err != nil {
		f.Close()
		return fmt.Errorf("signature memory %s: %w", m.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("signature memory %s: %w", m.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("signature memory %s: %w", m.path, err)
	}
	m.seen[r.ID] = mail
	return nil
}

// Replay is a signature used before by another mail.
func Replay(r *Result, firstMail string) error {
	when := strings.SplitN(firstMail, ".", 2)[0]
	var t time.Time
	if ns, err := strconv.ParseInt(when, 10, 64); err == nil {
		t = time.Unix(0, ns)
	}
	return &Error{"replay", fmt.Sprintf("this signature (made %s by %s) was already used by a mail\nreceived %s. Each signed answer acts once; sign a new one.",
		r.Created.UTC().Format(time.RFC3339), r.Fingerprint, t.UTC().Format(time.RFC3339))}
}

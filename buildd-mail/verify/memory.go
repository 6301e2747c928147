package verify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"buildd/buildd/home"
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
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature memory: %w", err)
	}
	// Lines of any length are read (a damaged or foreign line must not
	// stop every signed reply); those not in the format are passed over.
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			m.seen[f[0]] = f[3]
		}
	}
	return m, nil
}

// Seen returns the mail that first carried signature id.
func (m *Memory) Seen(id string) (mail string, ok bool) {
	mail, ok = m.seen[id]
	return
}

// Remember records r as used by mail, durably, before the mail acts. The
// line is appended under mail-signatures.lock, the lock PruneMemory takes
// to rewrite the file, so no line is lost to a concurrent prune.
func (m *Memory) Remember(r *Result, mail string) error {
	if prev, ok := m.seen[r.ID]; ok && prev == mail {
		return nil
	}
	l, err := home.LockFile(m.path, home.LockTimeout)
	if err != nil {
		return fmt.Errorf("signature memory: %w", err)
	}
	defer l.Unlock()
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
	return &Error{CheckReplay, fmt.Sprintf("this signature (made %s by %s) was already used by a mail\nreceived %s. Each signed answer acts once; sign a new one.",
		r.Created.UTC().Format(time.RFC3339), r.Fingerprint, t.UTC().Format(time.RFC3339))}
}

// PruneMemory drops from the record at path the signatures created before
// cutoff, rewriting the file (temp + rename) under the lock Remember takes.
// Forgetting them is safe as long as cutoff is the reply window: such a
// signature predates every mail still answerable, so it is refused anyway.
// Lines it cannot read are kept. It returns how many lines it dropped.
func PruneMemory(path string, cutoff time.Time) (int, error) {
	l, err := home.LockFile(path, home.LockTimeout)
	if err != nil {
		return 0, fmt.Errorf("signature memory: prune: %w", err)
	}
	defer l.Unlock()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("signature memory: prune: %w", err)
	}
	var keep strings.Builder
	dropped := 0
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil && time.Unix(sec, 0).Before(cutoff) {
				dropped++
				continue
			}
		}
		keep.WriteString(line)
	}
	if dropped == 0 {
		return 0, nil
	}
	if err := home.WriteFileAtomic(path, []byte(keep.String()), 0o600); err != nil {
		return 0, fmt.Errorf("signature memory: prune: %w", err)
	}
	return dropped, nil
}

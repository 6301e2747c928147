package home

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Signatures is buildd-mail's record of every signature a reply acted
// with, mail-signatures: "SIGNATURE-ID unixtime FINGERPRINT MAIL" a line,
// MAIL being the mqueue name of the mail that carried it. A signature seen
// before with another mail is a replay; seen with the same mail, the
// processing of that mail was interrupted and is being resumed.
type Signatures struct {
	path string
	seen map[string]string // signature ID -> mail
}

// Signatures reads mail-signatures (missing: empty).
func (h Home) Signatures() (*Signatures, error) {
	m := &Signatures{path: h.Path("mail-signatures"), seen: map[string]string{}}
	lines, err := m.file().read()
	if err != nil {
		return nil, fmt.Errorf("mail-signatures: %w", err)
	}
	// Lines of any length are read (a damaged or foreign line must not
	// stop every signed reply); those not in the format are passed over.
	for _, line := range lines {
		if f := strings.Fields(line); len(f) == 4 {
			m.seen[f[0]] = f[3]
		}
	}
	return m, nil
}

func (m *Signatures) file() lineFile { return lineFile{path: m.path, perm: 0o600} }

// Seen returns the mail that first carried signature id.
func (m *Signatures) Seen(id string) (mail string, ok bool) {
	mail, ok = m.seen[id]
	return
}

// Remember records the signature id (made at created by the key
// fingerprint) as used by mail, durably, before the mail acts. The line is
// appended under mail-signatures.lock, the lock PruneSignatures takes to
// rewrite the file, so no line is lost to a concurrent prune.
func (m *Signatures) Remember(id string, created time.Time, fingerprint, mail string) error {
	if prev, ok := m.seen[id]; ok && prev == mail {
		return nil
	}
	l, err := LockFile(m.path, LockTimeout)
	if err != nil {
		return fmt.Errorf("mail-signatures: %w", err)
	}
	defer l.Unlock()
	f, err := os.OpenFile(m.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("mail-signatures: %w", err)
	}
	if _, err := fmt.Fprintf(f, "%s %d %s %s\n", id, created.Unix(), fingerprint, mail); err != nil {
		f.Close()
		return fmt.Errorf("mail-signatures %s: %w", m.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("mail-signatures %s: %w", m.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("mail-signatures %s: %w", m.path, err)
	}
	m.seen[id] = mail
	return nil
}

// PruneSignatures drops from mail-signatures the signatures created before
// cutoff, rewriting the file (temp + rename) under the lock Remember takes.
// Forgetting them is safe as long as cutoff is the reply window: such a
// signature predates every mail still answerable, so it is refused anyway.
// Lines it cannot read are kept. It returns how many lines it dropped.
func (h Home) PruneSignatures(cutoff time.Time) (int, error) {
	m := &Signatures{path: h.Path("mail-signatures")}
	dropped := 0
	err := m.file().update(func(lines []string) ([]string, error) {
		keep := lines[:0]
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 4 {
				if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil && time.Unix(sec, 0).Before(cutoff) {
					dropped++
					continue
				}
			}
			keep = append(keep, l)
		}
		return keep, nil
	})
	if err != nil {
		return 0, fmt.Errorf("mail-signatures: prune: %w", err)
	}
	return dropped, nil
}

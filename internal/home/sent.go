package home

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SentMail is one mail buildd sent that an admin may answer: a build log or
// a "Should I build" question. buildd-mail matches a reply's In-Reply-To
// against these to know which package, version, dist and architecture it
// answers, and refuses a signature made before the mail it answers was
// sent.
type SentMail struct {
	MessageID  string // without <>
	Time       time.Time
	Dist       string
	Arch       string // "": a record written before records carried it (see Means)
	PkgVersion string
	Kind       string // "log" or "should-build"
}

// Sent is sent-mails in the home: "message-id unixtime dist/arch
// pkg_version kind" (a record written before records carried the
// architecture names the dist alone).
func (h Home) Sent() *SentFile { return &SentFile{path: h.Path("sent-mails")} }

// SentFile is the record of sent mails.
type SentFile struct{ path string }

// Add records a sent mail.
func (s *SentFile) Add(m SentMail) error {
	if strings.ContainsAny(m.MessageID+m.Dist+m.Arch+m.PkgVersion+m.Kind, " \t\n/") || m.MessageID == "" || m.Dist == "" || m.Arch == "" {
		return fmt.Errorf("sent-mails: bad record %+v", m)
	}
	return lineFile{path: s.path}.update(func(lines []string) ([]string, error) {
		return append(lines, fmt.Sprintf("%s %d %s %s %s", strings.Trim(m.MessageID, "<>"), m.Time.Unix(), JoinDistArch(m.Dist, m.Arch), m.PkgVersion, m.Kind)), nil
	})
}

// Lookup finds the sent mail with this Message-ID (with or without <>).
func (s *SentFile) Lookup(messageID string) (SentMail, bool, error) {
	id := strings.Trim(strings.TrimSpace(messageID), "<>")
	return s.newest(func(l string) bool { return strings.Contains(l, id) },
		func(m SentMail) bool { return m.MessageID == id })
}

// Latest finds the newest sent mail of kind for pkgv in the dist and
// arch means stands for, for replies that lost their In-Reply-To and for
// the newest mail a signature must not predate. A record naming only a
// dist that the host builds for several architectures may be about any
// of them: it counts.
func (s *SentFile) Latest(pkgv, kind string, means Means) (SentMail, bool, error) {
	return s.newest(func(l string) bool { return strings.Contains(l, pkgv) },
		func(m SentMail) bool {
			ok, err := means(m.Dist, m.Arch)
			return (ok || err != nil) && m.PkgVersion == pkgv && m.Kind == kind
		})
}

// newest returns the last record that match accepts; unreadable lines are
// passed over. Only lines that quick accepts are parsed (it must accept
// every line of a record that match accepts).
func (s *SentFile) newest(quick func(string) bool, match func(SentMail) bool) (SentMail, bool, error) {
	lines, err := lineFile{path: s.path}.read()
	if err != nil {
		return SentMail{}, false, err
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if !quick(lines[i]) {
			continue
		}
		if m, ok := parseSent(lines[i]); ok && match(m) {
			return m, true, nil
		}
	}
	return SentMail{}, false, nil
}

// parseSent reads one record: "message-id unixtime dist/arch pkg_version
// kind" (or dist alone).
func parseSent(line string) (SentMail, bool) {
	f := strings.Fields(line)
	if len(f) != 5 {
		return SentMail{}, false
	}
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return SentMail{}, false
	}
	dist, arch, err := SplitDistArch(f[2])
	if err != nil {
		return SentMail{}, false
	}
	return SentMail{MessageID: f[0], Time: time.Unix(sec, 0), Dist: dist, Arch: arch, PkgVersion: f[3], Kind: f[4]}, true
}

// Prune drops the records of mails sent before cutoff, under the lock Add
// takes, and returns how many it dropped. Lines it cannot read are kept.
func (s *SentFile) Prune(cutoff time.Time) (int, error) {
	dropped := 0
	err := lineFile{path: s.path}.update(func(lines []string) ([]string, error) {
		var keep []string
		for _, l := range lines {
			if m, ok := parseSent(l); ok && m.Time.Before(cutoff) {
				dropped++
				continue
			}
			keep = append(keep, l)
		}
		return keep, nil
	})
	if err != nil {
		return 0, fmt.Errorf("sent-mails: prune: %w", err)
	}
	return dropped, nil
}

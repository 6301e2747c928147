// Package logmail composes and sends the mail buildd writes about builds:
// the log mail of every build (the classic subject, the log as its body
// with head and tail when it is long, the .changes at the end) and the
// "Should I build" question, and records each mail's Message-ID in
// home.Sent() so buildd-mail can tell which package, dist and
// architecture a reply answers. Both subjects name the architecture, as
// classic sbuild's do ("... of PKG_VERSION on ARCH (dist=DIST)"): a host
// may build one dist for several.
package logmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer"
)

// Kinds recorded in home.Sent().
const (
	KindLog         = "log"
	KindShouldBuild = "should-build"
)

// Build is a finished build to mail the log of; its dist and architecture
// are the [[dist]] table's it was built for.
type Build struct {
	PkgVersion  string // as the subject names it: a binNMU carries its +bN
	Successful  bool
	LogPath     string
	ChangesPath string // "" when the build made no .changes
}

// Subject is the log mail subject, classic sbuild's: "Log for successful
// build of PKG_VERSION on ARCH (dist=DIST)" (or "failed").
func Subject(successful bool, pkgv, arch, dist string) string {
	how := "failed"
	if successful {
		how = "successful"
	}
	return fmt.Sprintf("Log for %s build of %s on %s (dist=%s)", how, pkgv, arch, dist)
}

// Recipients are the dist's logs_mailed_to (comma-separated addresses),
// else admin_mail, and logs_mail_also.
func Recipients(c *config.Config, d *config.Dist) []string {
	to := splitAddrs(d.LogsMailedTo)
	if len(to) == 0 {
		to = splitAddrs(c.AdminMail)
	}
	return append(to, splitAddrs(d.LogsMailAlso)...)
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Message composes the log mail of b, built for d.
func Message(c *config.Config, d *config.Dist, b Build) (*mailer.Message, error) {
	body, err := Body(b.LogPath, c.MailLogLimit, b.ChangesPath)
	if err != nil {
		return nil, err
	}
	status := "failed"
	if b.Successful {
		status = "successful"
	}
	return &mailer.Message{
		From:    c.MailFrom,
		To:      Recipients(c, d),
		Subject: Subject(b.Successful, b.PkgVersion, d.BuiltArchitecture, d.DistName),
		Header: map[string]string{
			"X-Buildd-Package": b.PkgVersion,
			"X-Buildd-Dist":    d.DistName,
			"X-Buildd-Arch":    d.BuiltArchitecture,
			"X-Buildd-Status":  status,
			"X-Buildd-Log":     b.LogPath,
		},
		Body: body,
	}, nil
}

// ChangesHeading is the line that introduces the .changes in a log, as
// sbuild prints it: "PKG_VERSION_ARCH.changes:".
func ChangesHeading(changesPath string) string {
	return filepath.Base(changesPath) + ":"
}

// Body is the text of a log mail: the log whole when it is at most limit
// bytes, else its first quarter and its end with a line between them saying
// what was left out and where the full log is; then the .changes under its
// heading, unless the text already holds it (the build log ends with it).
func Body(logPath string, limit int, changesPath string) (string, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return "", fmt.Errorf("log mail: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("log mail: %w", err)
	}
	var text []byte
	if limit <= 0 || st.Size() <= int64(limit) {
		if text, err = io.ReadAll(f); err != nil {
			return "", fmt.Errorf("log mail: %s: %w", logPath, err)
		}
	} else if text, err = headTail(f, st.Size(), limit, logPath); err != nil {
		return "", err
	}
	if changesPath != "" && !bytes.Contains(text, []byte("\n"+ChangesHeading(changesPath)+"\n")) {
		ch, err := os.ReadFile(changesPath)
		if err != nil {
			return "", fmt.Errorf("log mail: %w", err)
		}
		if len(text) > 0 && text[len(text)-1] != '\n' {
			text = append(text, '\n')
		}
		h := ChangesHeading(changesPath)
		text = fmt.Appendf(text, "\n%s\n%s\n\n%s", h, strings.Repeat("-", len(h)), ch)
	}
	return string(text), nil
}

// headTail reads the first quarter of limit and the last three quarters,
// both cut at line boundaries.
func headTail(f *os.File, size int64, limit int, logPath string) ([]byte, error) {
	headLen := limit / 4
	tailLen := limit - headLen
	head := make([]byte, headLen)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, fmt.Errorf("log mail: %s: %w", logPath, err)
	}
	if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
		head = head[:i+1]
	}
	tail := make([]byte, tailLen)
	if _, err := f.ReadAt(tail, size-int64(tailLen)); err != nil && err != io.EOF {
		return nil, fmt.Errorf("log mail: %s: %w", logPath, err)
	}
	if i := bytes.IndexByte(tail, '\n'); i >= 0 {
		tail = tail[i+1:]
	}
	left := size - int64(len(head)) - int64(len(tail))
	var out bytes.Buffer
	out.Write(head)
	fmt.Fprintf(&out, "\n[... %d bytes of the log left out here; the full log is %s on %s ...]\n\n", left, logPath, mailer.Hostname())
	out.Write(tail)
	return out.Bytes(), nil
}

// ErrNotSent marks a Send that sent nothing: the mail's Message-ID could
// not be recorded. The caller may try again.
var ErrNotSent = errors.New("not sent")

// Send records msg's Message-ID in the home's sent-mails as kind for pkgv
// in d's dist and architecture, then sends it through m: a mail that went out is always
// recorded, so that every answer to it can be matched. When the record
// cannot be written nothing is sent and the error wraps ErrNotSent. A mail
// the mailer could not deliver now is in its spool and goes out with a
// later Flush; the delivery error is returned for the log.
func Send(m *mailer.Mailer, h home.Home, msg *mailer.Message, d *config.Dist, pkgv, kind string) error {
	if msg.MessageID == "" {
		id, err := mailer.NewMessageID()
		if err != nil {
			return fmt.Errorf("mail %q: %w: %w", msg.Subject, ErrNotSent, err)
		}
		msg.MessageID = id
	}
	if err := h.Sent().Add(home.SentMail{MessageID: msg.MessageID, Time: time.Now(), Dist: d.DistName, Arch: d.BuiltArchitecture, PkgVersion: pkgv, Kind: kind}); err != nil {
		return fmt.Errorf("mail %q: %w: record Message-ID: %w", msg.Subject, ErrNotSent, err)
	}
	if err := m.Send(msg); err != nil {
		return fmt.Errorf("mail %q: %w", msg.Subject, err)
	}
	return nil
}

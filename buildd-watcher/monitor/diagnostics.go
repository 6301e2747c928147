package monitor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"

	"buildd/internal/daemonlog"
)

// Cursor is how far daemon.log was read: the file (by inode) and the
// offset after the last complete line.
type Cursor struct {
	Inode  uint64 `json:"inode"`
	Offset int64  `json:"offset"`
}

// diagRE picks the lines worth a mail.
var diagRE = regexp.MustCompile(`(?i)\b(warn(ing)?|error|fatal|panic)\b`)

// mayDiag is a quick test that spares most lines the regular expression:
// does line hold one of the words, in any case?
func mayDiag(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "warn") || strings.Contains(l, "error") || strings.Contains(l, "fatal") || strings.Contains(l, "panic")
}

// maxDiag bounds the lines of one diagnostics mail.
const maxDiag = 200

// diagnostics reads daemon.log from the cursor on (when the watcher rotated
// it since, the rest of daemon.log.old first) and mails the new warning and
// error lines once, except those of buildd-watcher and buildd-uploader,
// which mail their own. With no cursor yet it starts at the end.
func (m *Monitor) diagnostics(c *Cursor) ([]string, error) {
	path := m.Cfg.DaemonLogFile
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ino := st.Sys().(*syscall.Stat_t).Ino
	if c.Inode == 0 {
		*c = Cursor{Inode: ino, Offset: st.Size()}
		return nil, nil
	}
	var lines []string
	if c.Inode != ino {
		if ost, err := os.Stat(path + ".old"); err == nil && ost.Sys().(*syscall.Stat_t).Ino == c.Inode {
			old, _, err := scan(path+".old", c.Offset)
			if err != nil {
				return nil, err
			}
			lines = append(lines, old...)
		}
		*c = Cursor{Inode: ino}
	}
	if st.Size() < c.Offset {
		c.Offset = 0 // truncated
	}
	cur, off, err := scan(path, c.Offset)
	if err != nil {
		return nil, err
	}
	c.Offset = off
	lines = append(lines, cur...)
	if len(lines) == 0 {
		return nil, nil
	}
	body := fmt.Sprintf("New warnings and errors in %s:\n\n", path)
	shown := lines
	if len(shown) > maxDiag {
		shown = shown[:maxDiag]
	}
	body += strings.Join(shown, "\n") + "\n"
	if len(lines) > maxDiag {
		body += fmt.Sprintf("\n... and %d more lines.\n", len(lines)-maxDiag)
	}
	m.mail("buildd issued new diagnostics", body)
	return lines, nil
}

// scan returns the diagnostic lines of path's complete lines from offset
// on, and the offset after the last complete line.
func scan(path string, offset int64) ([]string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, offset, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, err
	}
	r := bufio.NewReaderSize(f, 64*1024)
	var out []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, offset, nil
			}
			return out, offset, err
		}
		offset += int64(len(line))
		line = strings.TrimRight(line, "\n")
		if mayDiag(line) && diagRE.MatchString(line) && !daemonlog.FromProg(line, "buildd-watcher") && !daemonlog.FromProg(line, "buildd-uploader") {
			out = append(out, line)
		}
	}
}

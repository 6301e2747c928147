package home

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrorReplyWindow is the period the error reply rate (config key
// error_reply_rate) counts over.
const ErrorReplyWindow = time.Hour

// MaxErrorReplyAddrs bounds the addresses mail-error-replies tracks: while
// this many were answered within ErrorReplyWindow, a new one gets no error
// reply. With error_reply_rate it bounds the file, and the error replies
// sent in an hour.
const MaxErrorReplyAddrs = 1000

// ErrOverRate is wrapped by the error of ErrorReplyFile.Take when the
// reply must not be sent.
var ErrOverRate = errors.New("over the error reply rate")

// ErrorReplies is mail-error-replies in the home: the error replies
// buildd-mail sent within the last ErrorReplyWindow, one line an address,
// "address unixtime unixtime ...".
func (h Home) ErrorReplies() *ErrorReplyFile {
	return &ErrorReplyFile{path: h.Path("mail-error-replies")}
}

// ErrorReplyFile is the record of error replies sent, for their rate.
type ErrorReplyFile struct{ path string }

// Take records an error reply to addr (compared without regard to case)
// at now, under the file's lock, if it may be sent: when fewer than
// perHour went to addr within ErrorReplyWindow before now, and addr is
// one of the MaxErrorReplyAddrs addresses tracked. Otherwise it records
// nothing and returns an error wrapping ErrOverRate that says which bound
// was hit. Replies older than the window are forgotten. A damaged line is
// an error naming the file and the line, and nothing is sent.
func (f *ErrorReplyFile) Take(addr string, now time.Time, perHour int) error {
	key := strings.ToLower(addr)
	if key == "" || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("mail-error-replies: bad address %q", addr)
	}
	cutoff := now.Add(-ErrorReplyWindow)
	return lineFile{path: f.path}.update(func(lines []string) ([]string, error) {
		var keep []string
		mine, addrs := -1, 0
		for i, l := range lines {
			if strings.TrimSpace(l) == "" {
				continue
			}
			a, times, err := parseErrorReplies(l, cutoff)
			if err != nil {
				return nil, &LineError{f.path, i + 1, l, err.Error()}
			}
			if len(times) == 0 {
				continue
			}
			if a == key {
				mine = len(keep)
			}
			addrs++
			keep = append(keep, a+" "+strings.Join(times, " "))
		}
		switch {
		case perHour <= 0:
			return keep, fmt.Errorf("%w: error_reply_rate is %d", ErrOverRate, perHour)
		case mine < 0 && addrs >= MaxErrorReplyAddrs:
			return keep, fmt.Errorf("%w: %d addresses were answered within %v, the most tracked", ErrOverRate, addrs, ErrorReplyWindow)
		case mine < 0:
			return append(keep, fmt.Sprintf("%s %d", key, now.Unix())), nil
		}
		if n := len(strings.Fields(keep[mine])) - 1; n >= perHour {
			return keep, fmt.Errorf("%w: %d error replies went to %s within %v (error_reply_rate = %d)", ErrOverRate, n, key, ErrorReplyWindow, perHour)
		}
		keep[mine] += fmt.Sprintf(" %d", now.Unix())
		return keep, nil
	})
}

// parseErrorReplies reads one line, "address unixtime ...", and returns the
// address and the times after cutoff, as written.
func parseErrorReplies(l string, cutoff time.Time) (string, []string, error) {
	f := strings.Fields(l)
	if len(f) < 2 {
		return "", nil, errors.New("not \"address unixtime ...\":")
	}
	var times []string
	for _, t := range f[1:] {
		sec, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return "", nil, fmt.Errorf("bad time %q in", t)
		}
		if time.Unix(sec, 0).After(cutoff) {
			times = append(times, t)
		}
	}
	return f[0], times, nil
}

package dispatch_test

import (
	"io"
	"mime/quotedprintable"
	"strings"
	"time"
)

func timeNow() time.Time { return time.Now() }

// decodeQP returns a sent mail with its body quoted-printable decoded and
// LF line ends, for substring checks.
func decodeQP(raw string) string {
	raw = strings.ReplaceAll(raw, "\r\n", "\n")
	h, body, _ := strings.Cut(raw, "\n\n")
	if strings.Contains(h, "quoted-printable") {
		b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
		if err == nil {
			body = string(b)
		}
	}
	return h + "\n\n" + body
}

package web

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxText is the most of one text (a failure reason, a dependency list, a
// BD-Uninstallable explanation) that a page or an answer shows.
const maxText = 64 << 10

// maxLine is the most of a text's first line that a "why" sentence quotes.
const maxLine = 200

// text is s as the web shows it: visible, then cut at maxText bytes with a
// note of how much was left out.
func text(s string) string { return clip(visible(s), maxText) }

// visible replaces invalid UTF-8 with U+FFFD and writes control characters
// other than newline and tab as \xNN, so no byte of the queue's data
// reaches a page or a terminal as a control.
func visible(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if isControl(r) {
			fmt.Fprintf(&b, `\x%02x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool {
	return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r < 0xa0
}

// clip cuts s at n bytes (at a character boundary) and notes how many
// bytes were left out.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" [… %d more bytes not shown]", len(s)-cut)
}

// firstLine is the first non-blank line of s, visible and cut at maxLine.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return clip(visible(l), maxLine)
		}
	}
	return ""
}

package web

import (
	"fmt"
	"strings"
	"unicode"
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

// visible replaces invalid UTF-8 with U+FFFD and writes the characters
// that would act instead of being seen as escapes: control characters
// other than newline and tab as \xNN, and the invisible format
// characters as \uNNNN (\UNNNNNNNN past U+FFFF). So no byte of the
// queue's data reaches a page or a terminal as a control, and none
// reorders or hides the text around it (a right-to-left override in a
// failure message is shown as \u202e).
func visible(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, escaped) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case !escaped(r):
			b.WriteRune(r)
		case r < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	return b.String()
}

// escaped reports whether visible writes r as an escape: a C0 or C1
// control character other than newline and tab; a format character
// (Unicode's Cf: the bidi marks U+200E, U+200F and U+061C, embeddings
// and overrides U+202A-U+202E, isolates U+2066-U+2069, the zero-width
// space, non-joiner and joiner U+200B-U+200D, the word joiner, the byte
// order mark U+FEFF, the tag characters U+E0001 and U+E0020-U+E007F,
// the soft hyphen...); or the line and paragraph separators U+2028 and
// U+2029.
func escaped(r rune) bool {
	switch {
	case r < 0x80:
		return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f
	case r < 0xa0:
		return true
	default:
		return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
	}
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

package web

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", "a\tb\nc", "a\tb\nc"},
		{"controls", "a\x00b\x1b[0m\x7f\r", `a\x00b\x1b[0m\x7f\x0d`},
		{"c1", "a\u0085b", `a\x85b`},
		{"invalid-utf8", "a\xffb", "a\uFFFDb"},
		{"markup-kept", `<script>"'&`, `<script>"'&`}, // the templates escape it
		{"long", strings.Repeat("é", maxText), strings.Repeat("é", maxText/2) + " [… 65536 more bytes not shown]"},
		// Bidi controls would reorder what follows them:
		// "invoice\u202etxt.exe" reads "invoiceexe.txt".
		{"rlo", "invoice\u202etxt.exe", `invoice\u202etxt.exe`},
		{"bidi-embeddings-overrides", "\u202a\u202b\u202c\u202d\u202e", `\u202a\u202b\u202c\u202d\u202e`},
		{"bidi-isolates", "a\u2066b\u2067c\u2068d\u2069e", `a\u2066b\u2067c\u2068d\u2069e`},
		{"bidi-marks", "\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		// Invisible characters would hide text or make two names look alike.
		{"zero-width", "ab\u200bc\u200cd\u200de\u2060", `ab\u200bc\u200cd\u200de\u2060`},
		{"bom", "\ufeffPackage: hello", `\ufeffPackage: hello`},
		{"separators", "line\u2028para\u2029", `line\u2028para\u2029`},
		{"soft-hyphen", "hy\u00adphen", `hy\u00adphen`},
		{"tags", "ok\U000e0001\U000e0069\U000e007f", `ok\U000e0001\U000e0069\U000e007f`},
		{"bidi-after-invalid", "\xff\u202e", "\uFFFD" + `\u202e`},
		// Visible text of any script, right-to-left too, is kept.
		{"scripts", "שלום مرحبا ß 日本語 é", "שלום مرحبا ß 日本語 é"},
		{"nbsp-kept", "a\u00a0b", "a\u00a0b"},
		{"emoji-kept", "🙂 \u2713", "🙂 \u2713"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := text(tc.in); got != tc.want {
				t.Errorf("text(%.40q) = %.80q, want %.80q", tc.in, got, tc.want)
			}
		})
	}
}

func TestClipAtCharacter(t *testing.T) {
	// "é" is two bytes: a cut at an odd byte backs off to the character.
	if got := clip("ééé", 3); got != "é [… 4 more bytes not shown]" {
		t.Errorf("clip = %q", got)
	}
}

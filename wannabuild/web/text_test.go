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

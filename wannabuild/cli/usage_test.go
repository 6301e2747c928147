package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestUsageNamesEveryOption: --help is what wanna-build(1) is made from
// (package man), so every spelling of every option must be in it, and it
// must name no option the table lacks.
func TestUsageNamesEveryOption(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"--help"}, strings.NewReader(""), &out, &out); code != exitOK {
		t.Fatalf("wanna-build --help: exit %d\n%s", code, out.String())
	}
	text := out.String()
	spelled := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:^|[\s,\[(])(--[A-Za-z][A-Za-z0-9-]*|-[A-Za-z])\b`).FindAllStringSubmatch(text, -1) {
		spelled[strings.TrimLeft(m[1], "-")] = true
	}
	for _, op := range optTable {
		for _, n := range op.names {
			if !spelled[n] {
				t.Errorf("wanna-build --help does not name the option %q", n)
			}
		}
	}
	for n := range spelled {
		if lookupOpt(n) == nil {
			t.Errorf("wanna-build --help names %q, which is no option", n)
		}
	}
}

package build

import (
	"sort"
	"strings"
	"testing"

	"buildd/internal/machine"
)

// TestChooseGrowth: which layer a miss grows from, and when the packages
// it shares with another layer become a step layer first.
func TestChooseGrowth(t *testing.T) {
	ids := func(names string) []string {
		var out []string
		for _, n := range strings.Fields(names) {
			out = append(out, n+"_1_amd64")
		}
		return out
	}
	files := func(names string) []aptFile {
		var out []aptFile
		for _, id := range ids(names) {
			out = append(out, aptFile{name: id + ".deb"})
		}
		return out
	}
	layer := func(name, pkgs string) machine.Layer { return machine.Layer{Name: name, Packages: ids(pkgs)} }
	want := "a b c d e f g h"
	for _, tc := range []struct {
		name   string
		layers []machine.Layer
		from   string // "" none (the revision); "-" no growth at all
		step   string
	}{
		{"no-layers", nil, "-", ""},
		{"only-unrelated", []machine.Layer{layer("x", "x y z")}, "-", ""},
		{"subset", []machine.Layer{layer("ab", "a b")}, "ab", ""},
		{"largest-subset", []machine.Layer{layer("ab", "a b"), layer("abc", "a b c"), layer("ax", "a x")}, "abc", ""},
		{"step-from-revision", []machine.Layer{layer("abcdex", "a b c d e x")}, "", "a b c d e"},
		{"step-from-subset", []machine.Layer{layer("a", "a"), layer("abcdex", "a b c d e x")}, "a", "a b c d e"},
		{"step-too-small", []machine.Layer{layer("ab", "a b"), layer("abcdx", "a b c d x")}, "ab", ""},
		{"largest-step", []machine.Layer{layer("abcdx", "a b c d x"), layer("abcdefx", "a b c d e f x")}, "", "a b c d e f"},
		{"superset-is-no-step", []machine.Layer{layer("all", want+" x")}, "-", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := chooseGrowth(tc.layers, files(want))
			if tc.from == "-" {
				if g != nil {
					t.Fatalf("growth %+v, want none", g)
				}
				return
			}
			if g == nil {
				t.Fatal("no growth")
			}
			from := ""
			if g.from != nil {
				from = g.from.Name
			}
			var step []string
			for _, f := range g.step {
				step = append(step, strings.TrimSuffix(f.id(), "_1_amd64"))
			}
			sort.Strings(step)
			if from != tc.from || strings.Join(step, " ") != tc.step {
				t.Errorf("from %q step %q, want from %q step %q", from, strings.Join(step, " "), tc.from, tc.step)
			}
		})
	}
}

// TestAptFileSpec: the pinned form apt-get install takes, from apt's file
// name (which writes an epoch's colon as %3a).
func TestAptFileSpec(t *testing.T) {
	for name, want := range map[string]string{
		"debhelper_13.11.4_all.deb":          "debhelper=13.11.4",
		"libc6-dev_2.36-9+deb12u4_amd64.deb": "libc6-dev:amd64=2.36-9+deb12u4",
		"libfoo1_1%3a2.0-1_arm64.deb":        "libfoo1:arm64=1:2.0-1",
	} {
		if got := (aptFile{name: name}).spec(); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

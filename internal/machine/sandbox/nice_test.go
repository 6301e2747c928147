package sandbox_test

import (
	"context"
	"strings"
	"testing"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

// TestNice: the command and what it starts run at the Nice value
// (buildd's nice_level), as the build user too.
func TestNice(t *testing.T) {
	e := machinetest.New(t)
	w := working(t, e, "nice-test")
	for _, tc := range []struct {
		nice int
		want string
	}{{0, "0"}, {10, "10"}, {19, "19"}} {
		var out strings.Builder
		c := &sandbox.Cmd{Root: w.Path(), User: machine.BuildUser, Args: []string{"/bin/sh", "-c", "nice; sh -c nice"}, Output: &out, Nice: tc.nice}
		if err := c.Run(context.Background()); err != nil {
			t.Fatalf("nice %d: %v\n%s", tc.nice, err, out.String())
		}
		if got := strings.Fields(out.String()); len(got) != 2 || got[0] != tc.want || got[1] != tc.want {
			t.Errorf("Nice %d: the sandbox's processes report %q, want %s twice", tc.nice, out.String(), tc.want)
		}
	}
}

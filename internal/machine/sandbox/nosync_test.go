package sandbox_test

import (
	"context"
	"strings"
	"testing"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

// TestNoSync: with NoSync the command and what it starts, as root or as
// the build user, run under the seccomp filter, and sync and fsync still
// succeed; without it, no filter.
func TestNoSync(t *testing.T) {
	e := machinetest.New(t)
	w := working(t, e, "nosync-test")
	script := `sync && sync -f /etc/passwd && sync -d /etc/passwd && sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status && sh -c "sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status"`
	for _, tc := range []struct {
		user   string
		noSync bool
		want   string // Seccomp: of /proc/self/status, twice
	}{
		{"", true, "2 2"}, {machine.BuildUser, true, "2 2"}, {"", false, "0 0"},
	} {
		var out strings.Builder
		c := &sandbox.Cmd{Root: w.Path(), User: tc.user, Args: []string{"/bin/sh", "-c", script}, Output: &out, NoSync: tc.noSync}
		if err := c.Run(context.Background()); err != nil {
			t.Fatalf("user %q NoSync %v: %v\n%s", tc.user, tc.noSync, err, out.String())
		}
		if got := strings.Join(strings.Fields(out.String()), " "); got != tc.want {
			t.Errorf("user %q NoSync %v: seccomp mode %q, want %q", tc.user, tc.noSync, got, tc.want)
		}
	}
}

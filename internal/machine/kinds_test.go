package machine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

// TestMachineKinds: an emulated arm64 machine runs its own programs
// (through qemu-user, from inside a working snapshot, the interpreter not
// copied in), and a cross machine for arm64 has the architecture added and
// the cross compiler; List tells them apart.
func TestMachineKinds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    func(testing.TB) *machinetest.Env
		script string
		want   string
		kind   func(machine.Machine) bool
	}{
		{"emulated", func(t testing.TB) *machinetest.Env { return machinetest.NewArch(t, "arm64") },
			"uname -m; dpkg --print-architecture; ls /usr/libexec/qemu-binfmt 2>/dev/null || echo no interpreter inside",
			"aarch64\narm64\nno interpreter inside\n",
			func(m machine.Machine) bool { return m.Emulated && m.Arch == "arm64" && m.Cross == "" }},
		{"cross", func(t testing.TB) *machinetest.Env { return machinetest.NewCross(t, "arm64") },
			"dpkg --print-foreign-architectures; aarch64-linux-gnu-gcc -dumpmachine",
			"arm64\naarch64-linux-gnu\n",
			func(m machine.Machine) bool { return !m.Emulated && m.Cross == "arm64" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.env(t)
			if m, err := e.Store.Machine(e.Machine); err != nil || !tc.kind(m) {
				t.Errorf("Machine: %+v %v", m, err)
			}
			w, err := e.Store.NewWorking(e.Machine, "kinds")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Delete()
			var out strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			c := &sandbox.Cmd{Root: w.Path(), User: machine.BuildUser, Output: &out, Args: []string{"/bin/sh", "-c", tc.script}}
			if err := c.Run(ctx); err != nil || out.String() != tc.want {
				t.Errorf("%v: %q, want %q", err, out.String(), tc.want)
			}
		})
	}
}

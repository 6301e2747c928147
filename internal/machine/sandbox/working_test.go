package sandbox_test

import (
	"testing"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
)

// working is a working snapshot of e's machine for job, deleted when the
// test ends.
func working(t *testing.T, e *machinetest.Env, job string) *machine.Working {
	t.Helper()
	w, err := e.Store.NewWorking(e.Machine, job)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Delete() })
	return w
}

//go:build chaosbroken

// Command chaosbroken is buildd with its lease renewal disabled on
// purpose: the test of the chaos test (TestChaosBroken, make
// test-chaos-broken) runs the chaos run against it and must see an
// invariant broken. Its queue port takes and reports as the real one
// does, but never renews a lease nor learns that one was lost, so a
// build outlasting lease_timeout goes on after another builder was given
// the package. Only that test builds it (go build -tags chaosbroken); the
// product's buildd has no such switch.
package main

import (
	"context"
	"os"

	"buildd/buildd/daemon"
	"buildd/internal/config"
	"buildd/internal/queue"
)

// noRenew is a queue port whose Renew does nothing.
type noRenew struct{ queue.Port }

func (noRenew) Renew(context.Context, ...string) ([]string, error) { return nil, nil }

// notifying is noRenew for a port that also notifies (PostgreSQL).
type notifying struct {
	noRenew
	queue.Notifier
}

func main() {
	parts := daemon.RealParts()
	open := parts.Queue
	parts.Queue = func(c *config.Config, d *config.Dist) queue.Port {
		p := open(c, d)
		if n, ok := p.(queue.Notifier); ok {
			return notifying{noRenew{p}, n}
		}
		return noRenew{p}
	}
	os.Exit(daemon.Main(os.Args[1:], parts))
}

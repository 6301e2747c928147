package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"buildd/internal/config"
	"buildd/internal/mailer"
	"buildd/internal/queue"
)

// Leases keeps the daemon's leases alive and ends other builders' dead
// ones: for each dist with a lease_timeout, at least every quarter of it
// (and at most every eighth), it renews the packages this daemon is
// building and gives back the packages whose builder stopped renewing,
// mailing the admin about each. A build whose lease the queue no longer
// has (it ended, and another builder gave the package back) is stopped.
// The loop calls it every LeaseEvery.
func (d *Daemon) Leases(ctx context.Context) {
	c := d.config()
	now := time.Now()
	for i := range c.Dists {
		dist := &c.Dists[i]
		lease := time.Duration(dist.Lease()) * time.Second
		if lease <= 0 {
			continue
		}
		d.mu.Lock()
		due := now.Sub(d.renewed[dist.DistName]) >= lease/8
		if due {
			d.renewed[dist.DistName] = now
		}
		var pkgvs []string
		for _, j := range d.running {
			if j.entry.Dist == dist.DistName {
				pkgvs = append(pkgvs, j.entry.PkgVersion)
			}
		}
		d.mu.Unlock()
		if !due {
			continue
		}
		q := d.queue(c, dist)
		lost, err := q.Renew(ctx, pkgvs...)
		if err != nil {
			d.log.Printf("wanna-build --renew --dist=%s failed: %v", dist.DistName, err)
		}
		for _, pkgv := range lost {
			d.lostLease(dist.DistName, pkgv)
		}
		expired, err := q.ExpireLeases(ctx)
		if err != nil {
			d.log.Printf("wanna-build --expire-leases --dist=%s failed: %v", dist.DistName, err)
			continue
		}
		for _, e := range expired {
			d.log.Printf("%s (dist=%s)", e, dist.DistName)
			d.mailExpired(c, dist, e.String())
		}
	}
}

// LeaseEvery is how often the loop calls Leases: every CheckEvery, or a
// quarter of the shortest lease_timeout when that is shorter.
func LeaseEvery(c *config.Config) time.Duration {
	every := CheckEvery
	for i := range c.Dists {
		if l := time.Duration(c.Dists[i].Lease()) * time.Second / 4; l > 0 && l < every {
			every = l
		}
	}
	return every
}

// lostLease stops the build of pkgv, whose lease the queue no longer has:
// the package was given back, and may be another builder's by now.
func (d *Daemon) lostLease(dist, pkgv string) {
	d.mu.Lock()
	j := d.running[jobKey(dist, pkgv)]
	if j != nil {
		j.lostLease = true
		j.cancel()
	}
	d.mu.Unlock()
	if j != nil {
		d.log.Printf("%s: lost its lease (dist=%s): the queue gave it back -- stopping its build", pkgv, dist)
	}
}

func (d *Daemon) mailExpired(c *config.Config, dist *config.Dist, what string) {
	body := fmt.Sprintf("%s (dist=%s).\n\nIts builder stopped renewing the lease (lease_timeout = %d s):\n"+
		"it died, or lost its queue. The package is in Needs-Build again.\n", what, dist.DistName, dist.Lease())
	msg := &mailer.Message{To: []string{c.AdminMail}, Subject: "Lease ended: " + what + fmt.Sprintf(" (dist=%s)", dist.DistName), Body: body}
	if err := d.mailer().Send(msg); err != nil {
		d.log.Printf("lease mail: %v", err)
	}
}

// ListenQueues starts, for each dist whose queue can notify (a local
// PostgreSQL queue), a listener that wakes the loop as soon as a package
// becomes Needs-Build, instead of after idle_sleep_time. A listener that
// loses its connection tries again every ListenRetry until ctx ends; each
// time it listens (again) it wakes the loop once, for the notifications
// it missed.
func (d *Daemon) ListenQueues(ctx context.Context) {
	c := d.config()
	for i := range c.Dists {
		dist := &c.Dists[i]
		q := d.queue(c, dist)
		go func() {
			for {
				n, ok := q.(queue.Notifier)
				if !ok {
					return
				}
				err := n.Listen(ctx, func() {
					d.log.Printf("%s: waiting for the queue's notifications", dist.DistName)
					// What became Needs-Build before this LISTEN (while
					// the listener connected, or was down) notified
					// no one: one round looks.
					d.poke()
				}, d.poke)
				if errors.Is(err, queue.ErrNoNotify) || ctx.Err() != nil {
					return
				}
				d.log.Printf("%s: %v -- again in %v", dist.DistName, err, ListenRetry)
				select {
				case <-ctx.Done():
					return
				case <-time.After(ListenRetry):
				}
			}
		}()
	}
}

// ListenRetry is how long a failed queue listener waits before it tries
// again.
var ListenRetry = 10 * time.Second

// poke wakes the loop for a round.
func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/queue"
)

// Leases keeps the daemon's leases alive and ends other builders' dead
// ones: for each dist and arch with a lease_timeout, at least every quarter of it
// (and at most every eighth), it renews the packages this daemon is
// building and gives back the packages whose builder stopped renewing,
// mailing the admin about each. A build whose package the queue no longer
// has as this builder's is stopped (renew). The loop calls it every
// LeaseEvery.
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
		due := now.Sub(d.renewed[dist.Where()]) >= lease/8
		if due {
			d.renewed[dist.Where()] = now
		}
		d.mu.Unlock()
		if !due {
			continue
		}
		d.renew(ctx, c, dist)
		expired, err := d.queue(c, dist).ExpireLeases(ctx)
		if err != nil {
			d.log.Printf("wanna-build --expire-leases --dist=%s --arch=%s failed: %v", dist.DistName, dist.BuiltArchitecture, err)
			continue
		}
		for _, e := range expired {
			d.log.Printf("%s %s", e, on(dist))
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

// renew renews the leases of the running builds of dist (for its
// architecture), and of its ended builds whose outcome the queue has not
// been told yet, and stops each build whose package the queue no longer
// has as this builder's.
func (d *Daemon) renew(ctx context.Context, c *config.Config, dist *config.Dist) {
	mine := func(e home.RedoEntry) bool { return e.Dist == dist.DistName && e.Arch == dist.BuiltArchitecture }
	d.mu.Lock()
	var pkgvs []string
	for _, j := range d.running {
		if mine(j.entry) && j.leased && j.taken == "" {
			pkgvs = append(pkgvs, j.entry.PkgVersion)
		}
	}
	for _, en := range d.ending {
		if j := en.job; mine(j.entry) && j.leased && j.taken == "" && !en.reported() {
			pkgvs = append(pkgvs, j.entry.PkgVersion)
		}
	}
	d.mu.Unlock()
	q := d.queue(c, dist)
	lost, err := q.Renew(ctx, pkgvs...)
	if err != nil {
		d.log.Printf("wanna-build --renew --dist=%s --arch=%s failed: %v", dist.DistName, dist.BuiltArchitecture, err)
		return
	}
	for _, pkgv := range lost {
		d.takenAway(ctx, q, home.RedoEntry{PkgVersion: pkgv, Dist: dist.DistName, Arch: dist.BuiltArchitecture})
	}
}

// taken is called when the queue of dist for arch tells that a Building
// package of this builder was taken from it (queue.Notifier): the leases
// of that dist and arch are renewed at once, which stops the build whose
// package is no longer this builder's, instead of at the next renewal.
func (d *Daemon) taken(ctx context.Context, dist, arch string) {
	c := d.config()
	if dc, ok := c.DistArch(dist, arch); ok && dc.Lease() > 0 {
		d.log.Printf("%s: the queue tells that a package of this builder was taken from it -- renewing the leases now", dc.Where())
		d.renew(ctx, c, dc)
	}
}

// takenAway stops the build of e (a package version in a dist for an
// architecture), which the queue no longer has as this builder's (given
// back, failed, forgotten, or its lease ended and another builder gave
// it back), or ends its ended build unreported; the reason logged is the
// queue's.
func (d *Daemon) takenAway(ctx context.Context, q queue.Port, e home.RedoEntry) {
	key := jobKey(e)
	d.mu.Lock()
	j, en := d.running[key], d.ending[key]
	d.mu.Unlock()
	if j == nil && en == nil {
		return
	}
	why := takenReason(ctx, q, e.PkgVersion)
	d.mu.Lock()
	j, en = d.running[key], d.ending[key]
	stop := j != nil && j.taken == ""
	if stop {
		j.taken = why
		j.cancel()
	}
	unreported := en != nil && en.job.taken == "" && !en.reported()
	if unreported {
		en.job.taken = why
	}
	d.mu.Unlock()
	switch {
	case stop:
		d.log.Printf("%s is no longer this builder's in the queue: %s -- stopping its build", e.Named(), why)
	case unreported:
		d.log.Printf("%s is no longer this builder's in the queue: %s -- its ended build is not reported", e.Named(), why)
		d.CompleteEndings()
	}
}

// takenReason is why the queue no longer has pkgv as this builder's: the
// package's last change in the queue's history, and its state now.
func takenReason(ctx context.Context, q queue.Port, pkgv string) string {
	info, err := q.Info(ctx, pkgv)
	switch {
	case queue.IsRefused(err):
		return err.Error() // not registered: forgotten
	case err != nil:
		return fmt.Sprintf("the queue does not say why (wanna-build --info %s failed: %v)", pkgv, err)
	case info.LastChange == "":
		return "now " + describe(info)
	}
	return info.LastChange + ", now " + describe(info)
}

// describe is a package's state in the queue, with its builder.
func describe(info *queue.Info) string {
	if info.Builder == "" {
		return fmt.Sprintf("%s_%s %s", info.Name, info.Version, info.State)
	}
	return fmt.Sprintf("%s_%s %s by %s", info.Name, info.Version, info.State, info.Builder)
}

func (d *Daemon) mailExpired(c *config.Config, dist *config.Dist, what string) {
	body := fmt.Sprintf("%s %s.\n\nIts builder stopped renewing the lease (lease_timeout = %d s):\n"+
		"it died, or lost its queue. The package is in Needs-Build again.\n", what, on(dist), dist.Lease())
	msg := &mailer.Message{To: []string{c.AdminMail}, Subject: "Lease ended: " + what + " " + on(dist), Body: body}
	if err := d.mailer().Send(msg); err != nil {
		d.log.Printf("lease mail: %v", err)
	}
}

// ListenQueues starts, for each dist and arch whose queue can notify (a
// local PostgreSQL queue), a listener that wakes the loop as soon as a
// package becomes Needs-Build, instead of after idle_sleep_time, and
// renews that queue's leases as soon as a package of this builder is
// taken from it (taken). A listener that loses its connection tries again after a
// second, the wait doubling up to ListenRetry, until ctx ends; each time
// it listens (again) it wakes the loop once, for the Needs-Build notifications it missed (a package taken
// from this builder meanwhile is found by the next renewal).
func (d *Daemon) ListenQueues(ctx context.Context) {
	c := d.config()
	for i := range c.Dists {
		dist := &c.Dists[i]
		q := d.queue(c, dist)
		go func() {
			wait := time.Second
			for {
				n, ok := q.(queue.Notifier)
				if !ok {
					return
				}
				err := n.Listen(ctx, func() {
					wait = time.Second
					d.log.Printf("%s: waiting for the queue's notifications", dist.Where())
					// What became Needs-Build before this LISTEN (while
					// the listener connected, or was down) notified
					// no one: one round looks.
					d.poke()
				}, d.poke, func() { d.taken(ctx, dist.DistName, dist.BuiltArchitecture) })
				if errors.Is(err, queue.ErrNoNotify) || ctx.Err() != nil {
					return
				}
				d.log.Printf("%s: %v -- again in %v", dist.Where(), err, wait)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, ListenRetry)
			}
		}()
	}
}

// ListenRetry is how long a failed queue listener waits at most before
// it tries again.
var ListenRetry = 10 * time.Second

// poke wakes the loop for a round.
func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

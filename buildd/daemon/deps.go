package daemon

import (
	"context"
	"io"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/client"
)

// Queue is one dist's wanna-build queue as the daemon uses it; the real
// one is internal/queue/client (a local bbolt file or PostgreSQL
// database, or wanna-build over ssh).
type Queue interface {
	// NeedsBuild is the needs-build list, in the queue's order (best
	// first).
	NeedsBuild(ctx context.Context) ([]client.Listed, error)
	// Take takes pkgv for this builder; a take another builder won (or any
	// per-package refusal) is reported by Refused.
	Take(ctx context.Context, pkgv string) error
	Built(ctx context.Context, pkgv string) error
	Attempted(ctx context.Context, pkgv string) error
	GiveBack(ctx context.Context, pkgv string) error
	// Renew renews the leases of the packages this builder is building,
	// and returns those the queue no longer has as this builder's.
	Renew(ctx context.Context, pkgvs ...string) (lost []string, err error)
	// ExpireLeases gives back the packages whose builder stopped renewing.
	ExpireLeases(ctx context.Context) ([]queue.Expired, error)
	// Listen calls wake when a package becomes Needs-Build, until ctx ends
	// or it fails; client.ErrNoListen when the queue cannot notify.
	Listen(ctx context.Context, ready, wake func()) error
	// Details is what the queue knows of a package beyond its listing.
	Details(ctx context.Context, name string) (Details, error)
	// PutLog delivers a finished build's log, gz its gzip form, to the
	// queue's log store; nil means the store has it.
	PutLog(ctx context.Context, l queue.BuildLog, gz io.Reader) error
	// Refused reports whether err is the queue refusing this one package
	// (taken by another builder, wrong state, ...), as opposed to the
	// queue being unreachable.
	Refused(err error) bool
}

// Details are the queue's notes on a taken package.
type Details struct {
	OldFailed       string // the failure of an earlier version, "" if none
	BinNMUChangelog string
}

// Builder runs one build in its own snapshot; the real one is
// buildd/build.Run. The daemon gives it j.LogPath created (empty,
// exclusively) by home.CreateLog. When ctx is cancelled it kills the
// build, deletes the snapshot and returns. Its Result's Status says what
// the daemon tells the queue: Successful --built, Attempted --attempted,
// GivenBack --give-back.
type Builder interface {
	Build(ctx context.Context, j build.Job) (build.Result, error)
}

// Machines is the machines volume, cleaned of stray snapshots at start-up.
type Machines interface {
	Clean(ctx context.Context) (deleted, notUnderstood []string, err error)
}

// Parts connects the daemon to the queue, the builds and the machines.
type Parts struct {
	Queue    func(c *config.Config, d *config.Dist) Queue
	Builder  func(c *config.Config, m Machines) Builder
	Machines func(c *config.Config) (Machines, error)
}

package daemon

import (
	"context"
	"time"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/slicing"
)

// Queue is one dist's wanna-build queue as the daemon uses it; the real
// one is wannabuild/client (the local bbolt database, or wanna-build over
// ssh).
type Queue interface {
	NeedsBuild(ctx context.Context) ([]Listed, error)
	// Take takes pkgv for this builder; a take another builder won (or any
	// per-package refusal) is reported by Refused.
	Take(ctx context.Context, pkgv string) error
	Built(ctx context.Context, pkgv string) error
	Attempted(ctx context.Context, pkgv string) error
	GiveBack(ctx context.Context, pkgv string) error
	// Details is what the queue knows of a package beyond its listing.
	Details(ctx context.Context, name string) (Details, error)
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

// Job is one build the daemon starts.
type Job struct {
	Dist    *config.Dist
	Entry   home.RedoEntry // package, version, binNMU
	LogPath string         // created by home.CreateLog, empty, exclusively
	Slot    int
	Slice   slicing.Slice
}

// Status is how a build ended, as buildd/build reports it.
type Status string

// The build statuses and what they do to the queue.
const (
	Successful Status = "successful" // --built
	Attempted  Status = "attempted"  // --attempted
	GivenBack  Status = "given-back" // --give-back
)

// Outcome is a finished build.
type Outcome struct {
	Status      Status
	FailStage   string
	BuildTime   time.Duration
	ChangesPath string
}

// Builder runs one build in its own snapshot; the real one is
// buildd/build. When ctx is cancelled it kills the build, deletes the
// snapshot and returns.
type Builder interface {
	Build(ctx context.Context, j Job) (Outcome, error)
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

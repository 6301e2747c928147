package daemon

import (
	"context"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/queue"
)

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
// Clean returns the paths it deleted, and, each as "PATH: why", what it
// did not understand and what it left because another process uses it
// (another buildd sharing the volume, a buildd machine command).
// Revisions are the revisions of machine name, none when the volume has
// no such machine.
type Machines interface {
	Clean(ctx context.Context) (deleted, notUnderstood, inUse []string, err error)
	Revisions(name string) ([]machine.Revision, error)
}

// Parts connects the daemon to the queue, the builds and the machines.
type Parts struct {
	// Queue opens the port of dist's queue (internal/queue/port), kept
	// by the daemon while the dist's queue settings stay the same.
	Queue    func(c *config.Config, d *config.Dist) queue.Port
	Builder  func(c *config.Config, m Machines) Builder
	Machines func(c *config.Config) (Machines, error)
}

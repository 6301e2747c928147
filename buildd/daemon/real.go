package daemon

import (
	"context"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/queue/port"
)

// RealParts connects the daemon to the queue's port (a bbolt file, a
// PostgreSQL database or wanna-build over ssh), internal/machine and
// buildd/build.
func RealParts() Parts {
	return Parts{
		Queue: port.Open,
		Machines: func(c *config.Config) (Machines, error) {
			s, err := machine.Open(c.MachinesDir)
			if err != nil {
				return nil, err
			}
			return storeMachines{s}, nil
		},
		Builder: func(c *config.Config, m Machines) Builder {
			return runBuilder{cfg: c, store: m.(storeMachines).s}
		},
	}
}

type storeMachines struct{ s *machine.Store }

func (m storeMachines) Clean(ctx context.Context) (deleted, notUnderstood, inUse []string, err error) {
	rep, err := m.s.Clean(ctx)
	return rep.Deleted, rep.NotUnderstood, rep.Busy, err
}

func (m storeMachines) Revisions(name string) ([]machine.Revision, error) {
	ms, err := m.s.List()
	if err != nil {
		return nil, err
	}
	for _, x := range ms {
		if x.Name == name {
			return x.Revisions, nil
		}
	}
	return nil, nil
}

type runBuilder struct {
	cfg   *config.Config
	store *machine.Store
}

func (b runBuilder) Build(ctx context.Context, j build.Job) (build.Result, error) {
	res, err := build.Run(ctx, b.cfg, b.store, j)
	if err != nil {
		return build.Result{}, err
	}
	return *res, nil
}

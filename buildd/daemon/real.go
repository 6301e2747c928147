package daemon

import (
	"context"
	"errors"
	"strings"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/queue"
	"buildd/internal/queue/client"
)

// RealParts connects the daemon to wannabuild/client (the local bbolt
// queue, or wanna-build over ssh), buildd/machine and buildd/build.
func RealParts() Parts {
	return Parts{
		Queue: func(c *config.Config, d *config.Dist) Queue { return clientQueue{client.New(c, d)} },
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

type clientQueue struct{ c *client.Client }

func (q clientQueue) NeedsBuild(ctx context.Context) ([]client.Listed, error) {
	return q.c.NeedsBuild(ctx)
}

func (q clientQueue) Take(ctx context.Context, pkgv string) error { return q.c.Take(ctx, pkgv) }
func (q clientQueue) Built(ctx context.Context, pkgv string) error {
	return q.c.Built(ctx, pkgv)
}
func (q clientQueue) Attempted(ctx context.Context, pkgv string) error {
	return q.c.Attempted(ctx, pkgv)
}
func (q clientQueue) GiveBack(ctx context.Context, pkgv string) error {
	return q.c.GiveBack(ctx, pkgv)
}

func (q clientQueue) Renew(ctx context.Context, pkgvs ...string) ([]string, error) {
	return q.c.Renew(ctx, pkgvs...)
}

func (q clientQueue) ExpireLeases(ctx context.Context) ([]queue.Expired, error) {
	return q.c.ExpireLeases(ctx)
}

func (q clientQueue) Listen(ctx context.Context, ready, wake func()) error {
	return q.c.Listen(ctx, ready, wake)
}

func (q clientQueue) Details(ctx context.Context, name string) (Details, error) {
	info, err := q.c.Info(ctx, name)
	if err != nil {
		return Details{}, err
	}
	return Details{OldFailed: strings.TrimSpace(info.OldFailed), BinNMUChangelog: info.BinNMUChangelog}, nil
}

func (q clientQueue) Refused(err error) bool {
	var r *client.Refused
	return errors.As(err, &r)
}

type storeMachines struct{ s *machine.Store }

func (m storeMachines) Clean(ctx context.Context) (deleted, notUnderstood []string, err error) {
	rep, err := m.s.Clean(ctx)
	return rep.Deleted, append(rep.NotUnderstood, rep.Busy...), err
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

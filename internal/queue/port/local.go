package port

import (
	"context"
	"fmt"
	"io"
	"time"

	"buildd/internal/debversion"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// local is the port of a queue this process opens: each call is one
// transaction of the session's dist and architecture, run with the
// classic commands (queue.Session).
type local struct {
	h       *store.Handle
	session func() *queue.Session
}

// Local is the port of the queue h, acting as the sessions session
// returns: one for each call (its Now is the call's time).
func Local(h *store.Handle, session func() *queue.Session) queue.Port {
	return &local{h: h, session: session}
}

var (
	_ queue.Port     = (*local)(nil)
	_ queue.Notifier = (*local)(nil)
)

// run runs fn in one transaction with a new session; a per-package
// refusal fn returns is the answer, not a failed transaction.
func (p *local) run(readOnly bool, fn func(queue.Tx, *queue.Session) error) error {
	s := p.session()
	s.Out = io.Discard
	var pkgErr error
	err := p.h.With(readOnly, func(db queue.Store) error {
		run := db.Update
		if readOnly {
			run = db.View
		}
		return run(s.Dist, s.Arch, func(tx queue.Tx) error {
			pkgErr = nil // a PostgreSQL transaction may run again
			err := fn(tx, s)
			if queue.IsPackageError(err) {
				pkgErr = err
				return nil
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	return pkgErr
}

func (p *local) NeedsBuild(ctx context.Context) ([]queue.Candidate, error) {
	var list []queue.Candidate
	err := p.run(true, func(tx queue.Tx, s *queue.Session) error {
		list = nil
		var recs []*queue.Record
		if err := tx.ForEachInState(queue.NeedsBuild, func(r *queue.Record) error {
			recs = append(recs, r)
			return nil
		}); err != nil {
			return err
		}
		builds, err := buildsByPackage(tx, "")
		if err != nil {
			return err
		}
		sorted := queue.SortForBuild(recs, s.Now)
		if p.h.Shared() {
			sorted = queue.BuilderOrder(sorted, s.User)
		}
		for _, r := range sorted {
			if queue.Waiting(builds[r.Package], s.Now) != "" {
				continue
			}
			list = append(list, queue.Candidate{Name: r.Package, Version: r.Version, Section: r.Section,
				Priority: r.Priority, BinNMU: r.BinNMU, Notes: r.Notes, CalPrio: r.CalPrio,
				Memory: queue.NeedsMemory(builds[r.Package])})
		}
		return nil
	})
	return list, err
}

func (p *local) set(cmd queue.Command, pkgv, msg string) error {
	return p.run(false, func(tx queue.Tx, s *queue.Session) error {
		s.Message = msg
		return s.Apply(tx, cmd, pkgv, 0)
	})
}

// buildsByPackage are the kept builds of name ("" for every package) of
// tx's queue by package, each oldest first.
func buildsByPackage(tx queue.Tx, name string) (map[string][]*queue.BuildRecord, error) {
	m := map[string][]*queue.BuildRecord{}
	err := tx.Builds(name, func(b *queue.BuildRecord) error {
		m[b.Package] = append(m[b.Package], b)
		return nil
	})
	return m, err
}

// Take takes pkgv unless it waits after a give-back (queue.Waiting): the
// builder's front door keeps the backoff, as a PostgreSQL database does
// for a builder role whatever it sends.
func (p *local) Take(ctx context.Context, pkgv string) error {
	return p.run(false, func(tx queue.Tx, s *queue.Session) error {
		name := debversion.SplitPkgVersion(pkgv).Name
		builds, err := buildsByPackage(tx, name)
		if err != nil {
			return err
		}
		if why := queue.Waiting(builds[name], s.Now); why != "" {
			return &queue.Refused{Pkg: name, Msg: why}
		}
		return s.Apply(tx, queue.Take, pkgv, 0)
	})
}

// End implements queue.Port: the build kept first (a PostgreSQL database
// lets a builder keep one only of its Building package), then the
// outcome.
func (p *local) End(ctx context.Context, pkgv string, e queue.BuildEnd) (*queue.BuildRecord, error) {
	if err := queue.CheckBuildEnd(pkgv, &e); err != nil {
		return nil, err
	}
	cmd := map[queue.Outcome]queue.Command{queue.Successful: queue.SetBuilt, queue.Attempted: queue.SetAttempted, queue.GivenBack: queue.GiveBack}[e.Outcome]
	var kept *queue.BuildRecord
	err := p.run(false, func(tx queue.Tx, s *queue.Session) error {
		kept = nil
		pv := debversion.SplitPkgVersion(pkgv)
		r, err := tx.Get(pv.Name)
		if err != nil {
			return err
		}
		if r != nil && r.State == queue.Building && r.Builder == s.User && r.Version == pv.Version {
			builds, err := buildsByPackage(tx, pv.Name)
			if err != nil {
				return err
			}
			b := queue.NextBuild(pv.Name, r.Version, s.User, s.Now, &e, builds[pv.Name])
			if err := tx.AddBuild(b); err != nil {
				return err
			}
			kept = b
		}
		return s.Apply(tx, cmd, pkgv, 0)
	})
	if err != nil {
		return nil, err
	}
	return kept, nil
}

// Heartbeat implements queue.Port.
func (p *local) Heartbeat(ctx context.Context, st queue.BuilderStatus) error {
	s := p.session()
	st.Builder, st.Dist, st.Arch = s.User, s.Dist, s.Arch
	return p.h.With(false, func(db queue.Store) error { return db.Heartbeat(st) })
}

// Builders implements queue.Port.
func (p *local) Builders(ctx context.Context) ([]queue.BuilderStatus, error) {
	s := p.session()
	var list []queue.BuilderStatus
	err := p.h.With(true, func(db queue.Store) error {
		var err error
		list, err = db.Builders(queue.Pair{Dist: s.Dist, Arch: s.Arch})
		return err
	})
	return list, err
}
func (p *local) Built(ctx context.Context, pkgv string) error {
	return p.set(queue.SetBuilt, pkgv, "")
}
func (p *local) Attempted(ctx context.Context, pkgv string) error {
	return p.set(queue.SetAttempted, pkgv, "")
}
func (p *local) GiveBack(ctx context.Context, pkgv string) error {
	return p.set(queue.GiveBack, pkgv, "")
}
func (p *local) Uploaded(ctx context.Context, pkgv string) error {
	return p.set(queue.SetUploaded, pkgv, "")
}
func (p *local) NoBuild(ctx context.Context, pkgv string) error {
	return p.set(queue.NoBuild, pkgv, "")
}
func (p *local) Failed(ctx context.Context, pkgv, msg string) error {
	return p.set(queue.SetFailed, pkgv, failureText(msg))
}
func (p *local) DepWait(ctx context.Context, pkgv, deps string) error {
	return p.set(queue.SetDepWait, pkgv, depList(deps))
}

func (p *local) Renew(ctx context.Context, pkgvs ...string) ([]string, error) {
	var lost []string
	if len(pkgvs) == 0 || p.session().Lease <= 0 {
		return nil, nil
	}
	err := p.run(false, func(tx queue.Tx, s *queue.Session) error {
		lost = nil // a PostgreSQL transaction may run again
		for _, pkgv := range pkgvs {
			err := s.Renew(tx, pkgv)
			if queue.IsPackageError(err) {
				lost = append(lost, pkgv)
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return lost, err
}

func (p *local) ExpireLeases(ctx context.Context) ([]queue.Expired, error) {
	var expired []queue.Expired
	err := p.run(false, func(tx queue.Tx, s *queue.Session) error {
		var err error
		expired, err = s.ExpireLeases(tx)
		return err
	})
	return expired, err
}

func (p *local) Info(ctx context.Context, name string) (*queue.Info, error) {
	name = debversion.SplitPkgVersion(name).Name
	var info *queue.Info
	var heard int64
	err := p.run(true, func(tx queue.Tx, s *queue.Session) error {
		r, err := tx.Get(name)
		if err != nil {
			return err
		}
		last, err := lastChange(tx, name)
		if err != nil {
			return fmt.Errorf("history of %s: %w", name, err)
		}
		if r == nil {
			msg := "not registered"
			if last != "" {
				msg += " (last change: " + last + ")"
			}
			return &queue.Refused{Pkg: name, Msg: msg}
		}
		info = &queue.Info{
			Name: r.Package, Version: r.Version, State: r.State, Builder: r.Builder,
			Section: r.Section, Priority: r.Priority, InstalledVersion: r.InstalledVersion,
			PreviousState: r.PreviousState, FailedText: r.Failed, OldFailed: r.OldFailed,
			BinNMU: r.BinNMU, BinNMUChangelog: r.BinNMUChangelog, Depends: r.Depends,
			BDProblem: r.BDProblem, Notes: r.Notes, BuildPri: r.BuildPri, PermBuildPri: r.PermBuildPri,
			CalPrio: queue.CalPrio(r, s.Now), LastChange: last,
		}
		if r.StateChange != 0 {
			info.StateChange = r.StateChangeTime().Format(queue.TimeFormat)
		}
		builds, err := buildsByPackage(tx, name)
		if err != nil {
			return fmt.Errorf("builds of %s: %w", name, err)
		}
		if r.State == queue.NeedsBuild {
			info.Waiting = queue.Waiting(builds[name], s.Now)
		}
		if r.LeaseUntil != 0 {
			info.LeaseUntil = time.Unix(r.LeaseUntil, 0).UTC().Format(queue.TimeFormat)
		}
		heard = r.LeaseRenewed
		return nil
	})
	if err != nil || info.Builder == "" {
		return info, err
	}
	// When the builder was last heard: its newest renewal or heartbeat.
	err = p.h.With(true, func(db queue.Store) error {
		sts, err := db.Builders(queue.Pair{Dist: p.session().Dist, Arch: p.session().Arch})
		for _, st := range sts {
			if st.Builder == info.Builder {
				heard = max(heard, st.Heard)
			}
		}
		return err
	})
	if heard != 0 {
		info.LastHeard = time.Unix(heard, 0).UTC().Format(queue.TimeFormat)
	}
	return info, err
}

// lastChange is name's last history entry as queue.Info.LastChange
// has it.
func lastChange(tx queue.Tx, name string) (string, error) {
	var last *queue.Transaction
	if err := tx.History(name, func(t *queue.Transaction) error { last = t; return nil }); err != nil || last == nil {
		return "", err
	}
	return fmt.Sprintf("%s by %s at %s UTC", last.Action, last.User, time.Unix(last.Time, 0).UTC().Format(queue.TimeFormat)), nil
}

func (p *local) PutLog(ctx context.Context, l queue.BuildLog, gz io.Reader) error {
	s := p.session()
	l.Dist, l.Arch, l.Builder = s.Dist, s.Arch, s.User
	pkgv := l.PkgVersion()
	data, size, err := queue.ReadLog(gz, "log "+pkgv)
	if err != nil {
		return err
	}
	l.Size = size
	return p.h.With(false, func(db queue.Store) error { return db.PutLog(&l, data) })
}

// Revisions reports held as the session's user's revisions of the
// session's queue.
func (p *local) Revisions(ctx context.Context, held []queue.HeldRevision) (string, error) {
	s := p.session()
	var required string
	err := p.h.With(false, func(db queue.Store) error {
		var err error
		required, err = db.ReportRevisions(s.User, queue.Pair{Dist: s.Dist, Arch: s.Arch}, held)
		return err
	})
	return required, err
}

// Listen implements queue.Notifier: wake for each Needs-Build notice of
// the session's queue, taken for each notice of a package taken from the
// session's user, when the store can notify (queue.ErrNoNotify
// otherwise).
func (p *local) Listen(ctx context.Context, ready, wake, taken func()) error {
	s := p.session()
	want := queue.Pair{Dist: s.Dist, Arch: s.Arch}
	return p.h.Announce(ctx, ready, func(n queue.Notification) {
		switch {
		case n.Pair != want:
		case n.Builder == "":
			wake()
		case n.Builder == s.User:
			taken()
		}
	})
}

func (p *local) Close() error { return p.h.Close() }

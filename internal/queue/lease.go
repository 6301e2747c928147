package queue

import (
	"errors"
	"fmt"
	"time"
)

// Leases: a builder that takes a package with a lease (--take --lease=N)
// renews it while it builds (--renew --lease=N PKG_VERSION...); a package
// whose lease has ended is given back by whoever next runs
// --expire-leases (every buildd round does), so a builder that died
// holding packages does not keep them Building for ever. A package taken
// without a lease never expires.

// Renew extends the lease of arg ("name_version"), which must be Building
// by this user, to s.Lease seconds from now. It is not recorded in the
// history (builders renew every few minutes), only as the record's
// LeaseRenewed.
func (s *Session) Renew(tx Tx, arg string) error {
	name, version, err := SplitArg(arg)
	if err != nil {
		return err
	}
	if s.Lease <= 0 {
		return errors.New("--renew needs --lease=SECONDS")
	}
	r, err := tx.Get(name)
	if err != nil {
		return err
	}
	switch {
	case r == nil:
		return s.refuse(name, "not registered")
	case r.State != Building || r.Builder != s.User:
		return s.refuse(name, "not building it (state is %s, builder %s)", r.State, r.Builder)
	case !versionMatches(r, version):
		return s.refuse(name, "version mismatch ==> (%s)", r.Version)
	}
	r.LeaseUntil, r.LeaseRenewed = s.Now.Unix()+s.Lease, s.Now.Unix()
	return tx.Put(r)
}

// Expired is a package whose lease ended and that was given back.
type Expired struct {
	Package, Version, Builder string
	LeaseUntil                int64
}

func (e Expired) String() string {
	return fmt.Sprintf("%s_%s: lease of %s ended %s, given back", e.Package, e.Version, e.Builder,
		time.Unix(e.LeaseUntil, 0).UTC().Format(TimeFormat))
}

// ExpireLeases gives back every Building package whose lease ended before
// now, noting the silent builder in the history, and returns them.
func (s *Session) ExpireLeases(tx Tx) ([]Expired, error) {
	now := s.Now.Unix()
	var due []*Record
	if err := tx.ForEachInState(Building, func(r *Record) error {
		if r.LeaseUntil > 0 && r.LeaseUntil < now {
			due = append(due, r)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var out []Expired
	for _, r := range due {
		e := Expired{Package: r.Package, Version: r.Version, Builder: r.Builder, LeaseUntil: r.LeaseUntil}
		s.change(r, NeedsBuild)
		r.Builder = ""
		if err := s.save(tx, r, "--expire-leases: lease of "+e.Builder+" ended"); err != nil {
			return nil, err
		}
		s.printf("%s\n", e)
		out = append(out, e)
	}
	return out, nil
}

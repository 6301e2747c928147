package queue

import (
	"context"
	"errors"
	"io"

	"buildd/internal/debversion"
)

// The errors every store and every way of reaching a queue return, so that
// no caller asks which is behind: test them with errors.Is.
var (
	// ErrLocked: the queue stayed locked (by another process) past the
	// timeout.
	ErrLocked = errors.New("database locked")
	// ErrDamaged: the queue's file is not a whole database.
	ErrDamaged = errors.New("damaged database")
	// ErrRefused: the database refused a change for this role (another
	// builder's package, a change only the admin may make).
	ErrRefused = errors.New("refused by the database: needs the admin role or the builder that has the package")
	// ErrNoNotify: the queue cannot tell of its changes (a bbolt file, a
	// queue over ssh); the caller polls.
	ErrNoNotify = errors.New("the queue cannot notify (not a PostgreSQL queue)")
)

// IsRefused reports whether err is the queue refusing one package (a
// *Refused: taken by another builder, in another state, not registered;
// or ErrRefused), as opposed to the queue failing.
func IsRefused(err error) bool {
	var r *Refused
	return errors.As(err, &r) || errors.Is(err, ErrRefused)
}

// Port is the queue of one (distribution, architecture) as a builder
// host's programs use it: buildd, buildd-mail and buildd-uploader, acting
// as the dist's wanna_build_db_user. One is opened per dist for the
// process's life (internal/queue/port), whatever is behind it: a bbolt
// file, a PostgreSQL database or wanna-build over ssh; every one gives the
// same answers. A per-package refusal is a *Refused with the classic
// message (errors.Is ErrNotRegistered for an unknown package).
type Port interface {
	// NeedsBuild lists the packages in Needs-Build, best first, but for
	// those given back that wait (Waiting).
	NeedsBuild(ctx context.Context) ([]Candidate, error)
	// Take takes pkgv ("name_version") for building.
	Take(ctx context.Context, pkgv string) error
	Built(ctx context.Context, pkgv string) error
	Attempted(ctx context.Context, pkgv string) error
	GiveBack(ctx context.Context, pkgv string) error
	Uploaded(ctx context.Context, pkgv string) error
	// NoBuild sets pkgv Not-For-Us (or back to Failed if it was).
	NoBuild(ctx context.Context, pkgv string) error
	// Failed marks pkgv failed with msg appended to its failure text.
	Failed(ctx context.Context, pkgv, msg string) error
	// DepWait puts pkgv in Dep-Wait on deps (">", ">>", ">=" relations).
	DepWait(ctx context.Context, pkgv, deps string) error
	// Renew renews the leases of pkgvs, which this builder is building, and
	// returns those the queue no longer has as this builder's.
	Renew(ctx context.Context, pkgvs ...string) (lost []string, err error)
	// ExpireLeases gives back the packages whose lease ended.
	ExpireLeases(ctx context.Context) ([]Expired, error)
	// Info is what the queue knows of the source package name ("name" or
	// "name_version").
	Info(ctx context.Context, name string) (*Info, error)
	// PutLog delivers a finished build's log, gz its gzip form; l's
	// distribution, architecture and builder are the port's. nil means the
	// store has it.
	PutLog(ctx context.Context, l BuildLog, gz io.Reader) error
	// End tells the queue that the build of pkgv, this builder's
	// Building package, ended as e says: its outcome (Built,
	// Build-Attempted, or given back) and, in the same transaction, the
	// build kept with its class and resources, given back with a wait
	// before it may be taken again (health.go). It returns the build as
	// kept: Held when the package now waits for the admin. A package not
	// Building by this builder gets the outcome's classic refusal and no
	// build is kept.
	End(ctx context.Context, pkgv string, e BuildEnd) (*BuildRecord, error)
	// Heartbeat reports st (its builder and queue are the port's),
	// idle or not.
	Heartbeat(ctx context.Context, st BuilderStatus) error
	// Builders lists the heartbeats of the port's queue.
	Builders(ctx context.Context) ([]BuilderStatus, error)
	// Revisions reports held, the revisions of the builder's machine for
	// the port's queue (replacing its last report), and returns the UUID
	// of the revision the queue requires, "" when none (revisions.go).
	Revisions(ctx context.Context, held []HeldRevision) (required string, err error)
	// Close lets go of what the port keeps (a PostgreSQL pool).
	Close() error
}

// Notifier is a Port that can tell of its queue's changes: Listen calls
// ready once it listens, then wake for each package becoming Needs-Build
// and taken for each Building package of the port's builder that another
// role's change took from it (gave it back, failed, forgot it, ended its
// lease), until ctx ends or the connection fails; ErrNoNotify when it
// cannot.
type Notifier interface {
	Listen(ctx context.Context, ready, wake, taken func()) error
}

// Announcer is a Store that tells of its queues' changes: Announce calls
// ready once it listens, then fn with each Notification, until ctx ends
// or the connection fails.
type Announcer interface {
	Announce(ctx context.Context, ready func(), fn func(Notification)) error
}

// Notification is a change of a queue that Announce tells of: a package
// became Needs-Build (Builder is ""), or a Building package of Builder
// was taken from it by another role's change.
type Notification struct {
	Pair
	Builder string
}

// Candidate is one package of the Needs-Build list, one a builder may
// take.
type Candidate struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Section  string `json:"section,omitempty"`
	Priority string `json:"priority,omitempty"`
	BinNMU   int    `json:"binnmu,omitempty"`
	Notes    string `json:"notes,omitempty"`
	CalPrio  int    `json:"calprio"`
	// Memory (KiB) is what the package is expected to need (NeedsMemory
	// of its kept builds), 0 when never measured.
	Memory int64 `json:"memory_kib,omitempty"`
}

// PkgVersion is "name_version".
func (l Candidate) PkgVersion() string {
	return debversion.PkgVersion{Name: l.Name, Version: l.Version}.String()
}

// Info is what the queue knows about a package (wanna-build --info).
type Info struct {
	Name             string `json:"name"`
	Version          string `json:"version"`
	State            State  `json:"state"`
	Builder          string `json:"builder,omitempty"`
	Section          string `json:"section,omitempty"`
	Priority         string `json:"priority,omitempty"`
	InstalledVersion string `json:"installed_version,omitempty"`
	PreviousState    State  `json:"previous_state,omitempty"`
	StateChange      string `json:"state_change,omitempty"` // TimeFormat, "" when never
	FailedText       string `json:"failed,omitempty"`
	OldFailed        string `json:"old_failed,omitempty"`
	BinNMU           int    `json:"binnmu,omitempty"`
	BinNMUChangelog  string `json:"binnmu_changelog,omitempty"`
	Depends          string `json:"depends,omitempty"`
	BDProblem        string `json:"bd_problem,omitempty"`
	Notes            string `json:"notes,omitempty"`
	BuildPri         int    `json:"buildpri,omitempty"`
	PermBuildPri     int    `json:"permbuildpri,omitempty"`
	CalPrio          int    `json:"calprio"`
	// LastChange is the package's last history entry, "ACTION by USER at
	// TIME" (UTC, TimeFormat); "" when it has none.
	LastChange string `json:"last_change,omitempty"`
	// LeaseUntil is when a Building package's lease ends, LastHeard when
	// its builder was last heard (its newest renewal or heartbeat), both
	// TimeFormat UTC, "" when none.
	LeaseUntil string `json:"lease_until,omitempty"`
	LastHeard  string `json:"last_heard,omitempty"`
	// Waiting is why a Needs-Build package is not taken yet (health.go's
	// Waiting), "" when it may be.
	Waiting string `json:"waiting,omitempty"`
}

package queue

import "errors"

// Store is a queue database. A Store holds the records of many
// (distribution, architecture) pairs; every command runs in one transaction
// of one pair.
type Store interface {
	// View runs fn in a read-only transaction.
	View(dist, arch string, fn func(Tx) error) error
	// Update runs fn in a read-write transaction, committed when fn returns
	// nil and rolled back otherwise.
	Update(dist, arch string, fn func(Tx) error) error
	// Pairs lists the (distribution, architecture) pairs the store holds,
	// sorted by distribution, then architecture.
	Pairs() ([]Pair, error)
	// The build logs (logs.go).
	LogStore
	// The builders' machine revisions and those the queues require
	// (revisions.go).
	RevisionStore
	// The builders' heartbeats (health.go).
	BuilderStore
	Close() error
}

// Pair is one (distribution, architecture) of a Store.
type Pair struct {
	Dist string `json:"dist"`
	Arch string `json:"arch"`
}

// Tx is one transaction on the records of one (distribution, architecture).
type Tx interface {
	// Get returns the record of the source package name, or nil.
	Get(name string) (*Record, error)
	// Put stores r under r.Package, keeping the state index current.
	Put(r *Record) error
	// Delete removes the record of name.
	Delete(name string) error
	// ForEach calls fn for every record in package name order.
	ForEach(fn func(*Record) error) error
	// ForEachInState calls fn for every record in state st, in name order.
	ForEachInState(st State, fn func(*Record) error) error
	// Count is the number of records in state st, without reading them.
	Count(st State) (int, error)
	// Log appends t to the history.
	Log(t *Transaction) error
	// History calls fn for the transactions of name ("" for all), oldest
	// first.
	History(name string, fn func(*Transaction) error) error
	// The ended builds of the queue's packages (health.go).
	BuildStore
	// Writable reports whether the transaction may change anything.
	Writable() bool
}

// ErrReadOnly is returned by a write in a read-only transaction.
var ErrReadOnly = errors.New("read-only transaction")

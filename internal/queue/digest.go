package queue

import (
	"encoding/binary"
	"fmt"
	"maps"
)

// Digest is what one queue's history sums up to, for the status web: the
// daily change of the queue's depth (its Needs-Build packages), when each
// user last acted, and how the builds that ended ended.
//
// A transaction records the record's previous state as its From, also
// when it changed no state (a new build priority, say), so a change is
// told by the state the package's transaction before it left it in.
type Digest struct {
	// NeedsBuild is, per day (unix seconds / 86400, UTC), the packages
	// that entered Needs-Build that day minus those that left it.
	NeedsBuild map[int64]int
	// Heard is, per user (a transaction's User), when it acted last and
	// whether it ever took a package (moved one to Building).
	Heard map[string]*Heard
	// Finished counts the builds that ended (a package leaving Building)
	// by the state they went to: Built, Build-Attempted, Needs-Build
	// (given back), ...
	Finished map[State]int

	last    map[string]State // Add: each package's state after its newest transaction
	pkg, to []byte           // AddEncoded: the package of the transaction before, and its To
}

// Heard is the newest transaction of one user.
type Heard struct {
	Last    int64 // unix seconds
	Builder bool  // it took a package
}

// NewDigest is an empty digest.
func NewDigest() *Digest {
	return &Digest{NeedsBuild: map[int64]int{}, Heard: map[string]*Heard{}, Finished: map[State]int{}}
}

// Add adds t. Each package's transactions must come oldest first.
func (d *Digest) Add(t *Transaction) {
	if d.last == nil {
		d.last = map[string]State{}
	}
	prev, ok := d.last[t.Package]
	if !ok {
		prev = t.From
	}
	d.last[t.Package] = t.To
	d.add([]byte(prev), []byte(t.To), []byte(t.User), t.Time, 1)
}

// AddCount adds n transactions that moved packages from the state prev
// (the one before: see Digest) to the state to, by one user, the newest
// at time last, all on last's day: a store that groups its history
// itself adds each group so.
func (d *Digest) AddCount(prev, to State, user string, last int64, n int) {
	d.add([]byte(prev), []byte(to), []byte(user), last, n)
}

// add takes bytes that may point into a store's buffer: comparing them
// and looking them up as string(b) copies nothing, and only a user not
// seen before is copied into the map.
func (d *Digest) add(prev, to, user []byte, time int64, n int) {
	nb, building := string(NeedsBuild), string(Building)
	if string(prev) != string(to) {
		switch {
		case string(to) == nb:
			d.NeedsBuild[dayOf(time)] += n
		case string(prev) == nb:
			d.NeedsBuild[dayOf(time)] -= n
		}
		if string(prev) == building {
			d.Finished[State(to)] += n
		}
	}
	taker := string(to) == building && string(prev) != building
	if h := d.Heard[string(user)]; h != nil {
		h.Last, h.Builder = max(h.Last, time), h.Builder || taker
		return
	}
	d.Heard[string(user)] = &Heard{Last: time, Builder: taker}
}

// dayOf is the day of a unix time, rounding down before 1970 too.
func dayOf(t int64) int64 {
	if t < 0 {
		return (t - 86399) / 86400
	}
	return t / 86400
}

// AddEncoded adds one transaction as MarshalBinary encodes it, without
// decoding it into a Transaction: a store that scans its history reads
// it so. The transactions must come package by package, each package's
// oldest first.
func (d *Digest) AddEncoded(data []byte) error {
	if len(data) == 0 || data[0] != recordFormat {
		return fmt.Errorf("transaction: unknown format")
	}
	var f [7][]byte // package, version, action, from, to, real user, user
	i := 1
	for j := range f {
		n, k := binary.Uvarint(data[i:])
		if k <= 0 || uint64(len(data)-i-k) < n {
			return fmt.Errorf("transaction: %w", errShortRecord)
		}
		i += k
		f[j] = data[i : i+int(n)]
		i += int(n)
	}
	t, k := binary.Varint(data[i:])
	if k <= 0 {
		return fmt.Errorf("transaction: %w", errShortRecord)
	}
	prev := f[3]
	if string(f[0]) == string(d.pkg) && d.pkg != nil {
		prev = d.to
	} else {
		d.pkg = append(d.pkg[:0], f[0]...)
	}
	d.add(prev, f[4], f[6], t, 1)
	d.to = append(d.to[:0], f[4]...)
	return nil
}

// Digester is a Store that digests the history of every queue itself,
// and tells cheaply whether the history changed.
type Digester interface {
	Digests() (map[Pair]*Digest, error)
	// HistoryMark is another after a transaction is logged (and may be
	// another after none).
	HistoryMark() (string, error)
}

// DigestFollower is a Digester that reads the history from a position
// on, so a reader that keeps the digests reads only what is new.
type DigestFollower interface {
	// DigestsAfter adds to ds the transactions logged after pos ("" for
	// all) and returns the position after them. A position that is not
	// final may still have transactions before it to come (ones that
	// commit later): read from the last final one again.
	DigestsAfter(ds map[Pair]*Digest, pos string) (next string, final bool, err error)
}

// Clone is a copy of d that changes apart from it.
func (d *Digest) Clone() *Digest {
	c := NewDigest()
	maps.Copy(c.NeedsBuild, d.NeedsBuild)
	maps.Copy(c.Finished, d.Finished)
	for u, h := range d.Heard {
		hc := *h
		c.Heard[u] = &hc
	}
	return c
}

// Digests is the digest of every queue of db: the store's own when it is
// a Digester, else read through Tx.History.
func Digests(db Store) (map[Pair]*Digest, error) {
	if dg, ok := db.(Digester); ok {
		return dg.Digests()
	}
	pairs, err := db.Pairs()
	if err != nil {
		return nil, err
	}
	out := map[Pair]*Digest{}
	for _, p := range pairs {
		d := NewDigest()
		if err := db.View(p.Dist, p.Arch, func(tx Tx) error {
			return tx.History("", func(t *Transaction) error {
				d.Add(t)
				return nil
			})
		}); err != nil {
			return nil, fmt.Errorf("history of %s/%s: %w", p.Dist, p.Arch, err)
		}
		out[p] = d
	}
	return out, nil
}

package queue

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"
)

// A page of a queue's list, for the status web: the packages of one
// state (or all), in one order, from an offset. A Store that can make
// the page itself, without decoding every record, is a Lister;
// ListPageOf makes it through the Tx otherwise. The other optional
// Store methods of this file answer the status web's other questions in
// one go.

// Orders are the orders of a list page; OrderPrio is --list's.
var Orders = []string{OrderName, OrderState, OrderSince, OrderPrio}

const (
	OrderName  = "name"  // package name (bytes)
	OrderState = "state" // the classic order of States, then name
	OrderSince = "since" // the state change, oldest first, then name
	OrderPrio  = "prio"  // SortForBuild's
)

// PageQuery is the page asked for.
type PageQuery struct {
	State  State  // "" is every state
	Order  string // one of Orders
	Offset int
	Limit  int
	Now    time.Time // for calprio and days
}

// Listed is a package of a page: its record, calprio, days in its state,
// and for a Needs-Build one its place in the build order (the number of
// Needs-Build packages before it); -1 for the others.
type Listed struct {
	Prioritized
	Ahead int
}

// Page is the answer: the packages of the page, and how many the whole
// list has; a Lister that counts the whole queue by state on the way
// gives the counts too (nil otherwise).
type Page struct {
	Rows   []Listed
	Total  int
	Counts map[State]int
}

// Lister is a Store that makes a page of a queue's list itself.
type Lister interface {
	ListPage(dist, arch string, q PageQuery) (*Page, error)
}

// Marker is a Store that tells cheaply whether anything changed: its
// mark is another after every committed write (and may be another after
// none), so what was read under one mark can be kept while it lasts.
type Marker interface {
	Mark() (string, error)
}

// StateCounter is a Store that counts the packages of a queue by state
// in one go: of the queue dist/arch, or of every queue when dist is "".
type StateCounter interface {
	CountStates(dist, arch string) (map[Pair]map[State]int, error)
}

// CheckOrder reports an order that is not one of Orders.
func CheckOrder(order string) error {
	for _, o := range Orders {
		if o == order {
			return nil
		}
	}
	return fmt.Errorf("invalid order %q: want name, state, since or prio", order)
}

// stateIndex is st's place in States; len(States) for any other state.
func stateIndex(st State) int {
	for i, s := range States {
		if s == st {
			return i
		}
	}
	return len(States)
}

// ListPageOf makes the page from tx's records.
func ListPageOf(tx Tx, q PageQuery) (*Page, error) {
	if err := CheckOrder(q.Order); err != nil {
		return nil, err
	}
	var recs []*Record
	keep := func(r *Record) error {
		recs = append(recs, r)
		return nil
	}
	var err error
	if q.State == "" {
		err = tx.ForEach(keep)
	} else {
		err = tx.ForEachInState(q.State, keep)
	}
	if err != nil {
		return nil, err
	}
	// Every Needs-Build package of the queue is among recs when they are
	// listed at all: their places in the build order.
	var needs []*Record
	for _, r := range recs {
		if r.State == NeedsBuild {
			needs = append(needs, r)
		}
	}
	ahead := make(map[string]int, len(needs))
	for i, p := range SortForBuild(needs, q.Now) {
		ahead[p.Package] = i
	}
	var rows []Prioritized
	switch q.Order {
	case OrderPrio:
		rows = SortForBuild(recs, q.Now)
	default:
		rows = make([]Prioritized, len(recs))
		for i, r := range recs {
			rows[i] = Prioritized{Record: r}
		}
		switch q.Order {
		case OrderState:
			sort.SliceStable(rows, func(i, j int) bool { return stateIndex(rows[i].State) < stateIndex(rows[j].State) })
		case OrderSince:
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].StateChange < rows[j].StateChange })
		}
	}
	p := &Page{Total: len(rows)}
	from, to := min(max(q.Offset, 0), len(rows)), len(rows)
	if q.Limit > 0 {
		to = min(from+q.Limit, len(rows))
	}
	for _, pr := range rows[from:to] {
		pr.CalPrio, pr.Days = CalPrio(pr.Record, q.Now), StateDays(pr.Record, q.Now)
		n, ok := ahead[pr.Package]
		if !ok {
			n = -1
		}
		p.Rows = append(p.Rows, Listed{pr, n})
	}
	return p, nil
}

// Weights are calprio's weights (see CalPrio), for a store that computes
// it itself: by priority, by section (without its component), by
// component and by notes.
func Weights() (priority, section, component, notes map[string]int) {
	return maps.Clone(priorityWeight), maps.Clone(sectionWeight), maps.Clone(componentWeight), maps.Clone(notesWeight)
}

// ListPageEncoded makes the page from records as MarshalBinary encodes
// them, decoding only the page's: each calls fn with every record of the
// list, in name order. The data must stay valid until ListPageEncoded
// returns (a bbolt transaction's map does).
func ListPageEncoded(each func(fn func(data []byte) error) error, q PageQuery) (*Page, error) {
	if err := CheckOrder(q.Order); err != nil {
		return nil, err
	}
	// The records, and small keys to sort: a record's place in name
	// order breaks the ties.
	var recs [][]byte
	var keys, needs []sortKey
	err := each(func(data []byte) error {
		f, err := scanEncoded(data)
		if err != nil {
			return err
		}
		needsBuild := string(f.state) == string(NeedsBuild)
		k := sortKey{rank: int32(len(recs))}
		switch q.Order {
		case OrderPrio:
			k.key1, k.key2 = -int64(calPrio(f.prio, q.Now)), f.prio.stateChange
		case OrderState:
			k.key1 = int64(stateIndexOf(f.state))
		case OrderSince:
			k.key1 = f.prio.stateChange
		}
		recs, keys = append(recs, data), append(keys, k)
		if needsBuild {
			needs = append(needs, sortKey{-int64(calPrio(f.prio, q.Now)), f.prio.stateChange, k.rank})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p := &Page{Total: len(keys)}
	from, to := min(max(q.Offset, 0), len(keys)), len(keys)
	if q.Limit > 0 {
		to = min(from+q.Limit, len(keys))
	}
	if q.Order != OrderName {
		keys = smallest(keys, to)
	}
	slices.SortFunc(needs, compareKeys)
	for _, k := range keys[from:to] {
		r := &Record{}
		if err := r.UnmarshalBinary(recs[k.rank]); err != nil {
			return nil, err
		}
		calprio := CalPrio(r, q.Now)
		ahead := -1
		if r.State == NeedsBuild {
			ahead, _ = slices.BinarySearchFunc(needs, sortKey{-int64(calprio), r.StateChange, k.rank}, compareKeys)
		}
		p.Rows = append(p.Rows, Listed{Prioritized{r, calprio, StateDays(r, q.Now)}, ahead})
	}
	return p, nil
}

// smallest returns the n smallest keys, sorted: through a heap of n keys
// when n is a small part of them (the first pages), else by sorting all.
func smallest(keys []sortKey, n int) []sortKey {
	if n >= len(keys)/4 {
		slices.SortFunc(keys, compareKeys)
		return keys[:n]
	}
	// h is a max-heap of the n smallest seen so far.
	h := slices.Clone(keys[:n])
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && compareKeys(h[c+1], h[c]) > 0 {
				c++
			}
			if compareKeys(h[c], h[i]) <= 0 {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, k := range keys[n:] {
		if len(h) > 0 && compareKeys(k, h[0]) < 0 {
			h[0] = k
			down(0)
		}
	}
	slices.SortFunc(h, compareKeys)
	return h
}

// sortKey is what a record is sorted by: the order's keys, then its
// place in name order.
type sortKey struct {
	key1, key2 int64
	rank       int32
}

func compareKeys(a, b sortKey) int {
	if c := cmp.Compare(a.key1, b.key1); c != 0 {
		return c
	}
	if c := cmp.Compare(a.key2, b.key2); c != 0 {
		return c
	}
	return cmp.Compare(a.rank, b.rank)
}

// stateIndexOf is stateIndex of a state's bytes.
func stateIndexOf(st []byte) int {
	for i, s := range States {
		if string(s) == string(st) {
			return i
		}
	}
	return len(States)
}

// encodedFields are what a list is sorted by, read from an encoded record
// without a copy.
type encodedFields struct {
	state []byte
	prio  prioFields[[]byte]
}

// scanEncoded reads the fields a list needs from data (MarshalBinary's).
func scanEncoded(data []byte) (encodedFields, error) {
	var f encodedFields
	if len(data) == 0 || !isRecordFormat(data[0]) {
		return f, fmt.Errorf("record: unknown format")
	}
	i := 1
	for j := 0; j < 16; j++ {
		n, k := binary.Uvarint(data[i:])
		if k <= 0 || uint64(len(data)-i-k) < n {
			return f, fmt.Errorf("record: %w", errShortRecord)
		}
		i += k
		s := data[i : i+int(n)]
		i += int(n)
		switch j {
		case 2:
			f.state = s
		case 3:
			f.prio.section = s
		case 4:
			f.prio.priority = s
		case 7:
			f.prio.notes = s
		}
	}
	var nums [6]int64
	for j := range nums {
		n, k := binary.Varint(data[i:])
		if k <= 0 {
			return f, fmt.Errorf("record: %w", errShortRecord)
		}
		nums[j] = n
		i += k
	}
	f.prio.stateChange, f.prio.buildPri, f.prio.permBuildPri = nums[0], int(nums[2]), int(nums[3])
	f.prio.buildTime, f.prio.successTime = nums[4], nums[5]
	return f, nil
}

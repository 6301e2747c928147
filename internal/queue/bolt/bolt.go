// Package bolt is the wanna-build queue Store on a bbolt file.
//
// Layout: one top-level bucket per "DIST/ARCH" holding three buckets:
// "pkgs" (source name → queue.Record in its compact binary form),
// "state" (one bucket per State holding name → empty: the index behind
// --list=STATE) and "hist" (name NUL 8-byte sequence →
// queue.Transaction), the build logs' three (logs.go), the machine
// revisions' two (revisions.go) and the ended builds' and the builders'
// heartbeats' (health.go). Buckets are
// filled to 90%: the merge inserts in key order.
//
// The file is opened for one command only. Writers take an exclusive flock
// on PATH.lock and readers a shared one, waiting at most the timeout, and
// bbolt's own lock on the file (bolt.Options.Timeout) guards against
// programs that do not know the lock file. Read-only commands open the file
// read-only and never write it.
//
// A damaged file is an error naming it, never a crash: Open checks the meta
// pages against the file's size before bbolt maps it (check.go), and every
// transaction turns bbolt's panics and faults on the map into ErrDamaged.
package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"buildd/internal/flock"
	"buildd/internal/queue"
)

// DefaultTimeout is how long a command waits for the database lock.
const DefaultTimeout = 30 * time.Second

var (
	bucketPkgs  = []byte("pkgs")
	bucketState = []byte("state")
	bucketHist  = []byte("hist")
)

// OpenError is any failure to open the database: missing directory,
// corrupt file, lock timeout.
type OpenError struct {
	Path string
	Err  error
}

func (e *OpenError) Error() string { return fmt.Sprintf("cannot open database %s: %v", e.Path, e.Err) }
func (e *OpenError) Unwrap() error { return e.Err }

// DB is an open queue database; Close it at the end of the command.
type DB struct {
	path string
	db   *bbolt.DB // nil: read-only view of a database that does not exist yet
	file *os.File  // bbolt's handle on path, holding bbolt's flock
	lock *flock.Lock
	// damaged is the error of a transaction that panicked or faulted. bbolt
	// may then hold its own locks (a writer's rollback reads the freelist
	// page, which can fault too), so the DB is not used again and Close
	// closes bbolt's file instead of calling bbolt's Close.
	damaged error
}

// Options of Open.
type Options struct {
	ReadOnly bool
	Timeout  time.Duration // lock timeout; 0 is DefaultTimeout
}

// Open opens (a writer: creates) the database at path. A file that is not
// a whole bbolt file is refused with ErrDamaged (see checkFile).
func Open(path string, opt Options) (*DB, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	fail := func(err error) (*DB, error) { return nil, &OpenError{path, err} }
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fail(err)
	} else if !st.IsDir() {
		return fail(fmt.Errorf("%s is not a directory", dir))
	}
	start := time.Now()
	lock, err := lockDB(path+".lock", opt.ReadOnly, opt.Timeout)
	if err != nil {
		return fail(err)
	}
	d := &DB{path: path, lock: lock}
	if opt.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return d, nil
		}
	} else if err := create(path); err != nil {
		d.unlock()
		return fail(err)
	}
	left := opt.Timeout - time.Since(start)
	if left < 10*time.Millisecond {
		left = 10 * time.Millisecond
	}
	bo := &bbolt.Options{
		Timeout:      left,
		ReadOnly:     opt.ReadOnly,
		FreelistType: bbolt.FreelistMapType,
	}
	if !opt.ReadOnly {
		bo.InitialMmapSize = 64 << 20
	}
	db, file, err := openBolt(path, bo)
	if err != nil {
		d.unlock()
		if errors.Is(err, bbolt.ErrTimeout) {
			err = fmt.Errorf("%w (waited %s)", ErrLocked, opt.Timeout)
		}
		return fail(err)
	}
	d.db, d.file = db, file
	return d, nil
}

// create makes an empty queue at path if no file is there: bbolt
// initialises PATH.new, which is then renamed into place, so a crash never
// leaves a half-made file at path. The caller holds the exclusive lock.
func create(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("create: %w", err)
	}
	db, err := bbolt.Open(tmp, 0o664, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("create: sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// openBolt opens the file after checkFile has passed it, turning bbolt's
// panics on a damaged file, and faults on its map, into errors. file is
// bbolt's handle on it.
func openBolt(path string, bo *bbolt.Options) (db *bbolt.DB, file *os.File, err error) {
	bo.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag&^os.O_CREATE, perm)
		if err != nil {
			return nil, err
		}
		if err := checkFile(f); err != nil {
			f.Close()
			return nil, err
		}
		file = f
		return f, nil
	}
	// A fault on the map panics instead of killing the process, in this
	// goroutine until the function returns.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				file.Close() // releases bbolt's flock on it
			}
			db, file, err = nil, nil, fmt.Errorf("%w: %s", ErrDamaged, faultText(p))
		}
	}()
	db, err = bbolt.Open(path, 0o664, bo)
	return db, file, err
}

func (d *DB) unlock() {
	if d.lock != nil {
		d.lock.Unlock()
		d.lock = nil
	}
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// Close closes the file and releases the lock. After a damaged
// transaction it closes bbolt's file only: its map stays (bbolt cannot be
// asked to drop it without its locks).
func (d *DB) Close() error {
	var err error
	switch {
	case d.db != nil && d.damaged != nil:
		d.file.Close()
	case d.db != nil:
		err = d.db.Close()
	}
	d.db, d.file = nil, nil
	d.unlock()
	return err
}

func bucketName(dist, arch string) []byte { return []byte(dist + "/" + arch) }

// View implements queue.Store.
func (d *DB) View(dist, arch string, fn func(queue.Tx) error) error {
	if d.db == nil {
		return fn(&tx{})
	}
	return d.read(func(btx *bbolt.Tx) error {
		t := &tx{}
		if top := btx.Bucket(bucketName(dist, arch)); top != nil {
			t.pkgs, t.state, t.hist = top.Bucket(bucketPkgs), top.Bucket(bucketState), top.Bucket(bucketHist)
			t.builds = top.Bucket(bucketBuilds)
		}
		return fn(t)
	})
}

// Update implements queue.Store.
func (d *DB) Update(dist, arch string, fn func(queue.Tx) error) error {
	return d.write(func(btx *bbolt.Tx) error {
		top, err := btx.CreateBucketIfNotExists(bucketName(dist, arch))
		if err != nil {
			return err
		}
		t := &tx{writable: true, top: top, builds: top.Bucket(bucketBuilds)}
		for _, b := range []struct {
			name []byte
			dst  **bbolt.Bucket
		}{{bucketPkgs, &t.pkgs}, {bucketState, &t.state}, {bucketHist, &t.hist}} {
			if *b.dst, err = top.CreateBucketIfNotExists(b.name); err != nil {
				return err
			}
			(*b.dst).FillPercent = fillPercent
		}
		return fn(t)
	})
}

// Pairs implements queue.Store: the top-level buckets, named "DIST/ARCH",
// that hold a record (a write transaction that changed nothing leaves an
// empty one behind).
func (d *DB) Pairs() (pairs []queue.Pair, err error) {
	if d.db == nil {
		return nil, nil
	}
	err = d.read(func(btx *bbolt.Tx) error {
		return btx.ForEach(func(name []byte, top *bbolt.Bucket) error {
			dist, arch, ok := strings.Cut(string(name), "/")
			if !ok {
				return fmt.Errorf("%s: bucket %q is not DIST/ARCH", d.path, name)
			}
			if pkgs := top.Bucket(bucketPkgs); pkgs == nil {
				return nil
			} else if k, _ := pkgs.Cursor().First(); k == nil {
				return nil
			}
			pairs = append(pairs, queue.Pair{Dist: dist, Arch: arch})
			return nil
		})
	})
	sort.Slice(pairs, func(i, j int) bool {
		a, b := pairs[i], pairs[j]
		return a.Dist < b.Dist || a.Dist == b.Dist && a.Arch < b.Arch
	})
	return pairs, err
}

// read runs fn in a read-only bbolt transaction of the open database; a
// fault on the map makes the database damaged (recoverDamage).
func (d *DB) read(fn func(*bbolt.Tx) error) (err error) {
	if d.damaged != nil {
		return d.damaged
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.recoverDamage(&err)
	return d.db.View(fn)
}

// write runs fn in a read-write bbolt transaction, as read does.
func (d *DB) write(fn func(*bbolt.Tx) error) (err error) {
	if d.db == nil || d.db.IsReadOnly() {
		return queue.ErrReadOnly
	}
	if d.damaged != nil {
		return d.damaged
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer d.recoverDamage(&err)
	return d.db.Update(fn)
}

// recoverDamage turns a panic in a transaction into an error naming the
// file, and the error of every later transaction. read and write run with
// debug.SetPanicOnFault, so a fault on the mapped file (a page past its
// end: SIGBUS) is such a panic instead of a crash.
func (d *DB) recoverDamage(err *error) {
	if p := recover(); p != nil {
		d.damaged = fmt.Errorf("%s: %w: %s", d.path, ErrDamaged, faultText(p))
		*err = d.damaged
	}
}

type tx struct {
	writable          bool
	top               *bbolt.Bucket // the queue's bucket, in a write transaction
	pkgs, state, hist *bbolt.Bucket
	builds            *bbolt.Bucket // nil until a build is kept (health.go)
}

func (t *tx) Writable() bool { return t.writable }

func (t *tx) Get(name string) (*queue.Record, error) {
	if t.pkgs == nil {
		return nil, nil
	}
	v := t.pkgs.Get([]byte(name))
	if v == nil {
		return nil, nil
	}
	r := &queue.Record{}
	if err := r.UnmarshalBinary(v); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return r, nil
}

const fillPercent = 0.9

// stateBucket is the index bucket of st, created when create is set.
func (t *tx) stateBucket(st queue.State, create bool) (*bbolt.Bucket, error) {
	if t.state == nil {
		return nil, nil
	}
	if b := t.state.Bucket([]byte(st)); b != nil || !create {
		if b != nil {
			b.FillPercent = fillPercent
		}
		return b, nil
	}
	b, err := t.state.CreateBucket([]byte(st))
	if b != nil {
		b.FillPercent = fillPercent
	}
	return b, err
}

func (t *tx) unindex(st queue.State, name string) error {
	b, err := t.stateBucket(st, false)
	if b == nil || err != nil {
		return err
	}
	return b.Delete([]byte(name))
}

func (t *tx) Put(r *queue.Record) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	var oldState queue.State
	if v := t.pkgs.Get([]byte(r.Package)); v != nil {
		st, err := queue.StateOf(v)
		if err != nil {
			return fmt.Errorf("%s: %w", r.Package, err)
		}
		oldState = st
	}
	if oldState != "" && oldState != r.State {
		if err := t.unindex(oldState, r.Package); err != nil {
			return err
		}
	}
	if oldState != r.State {
		b, err := t.stateBucket(r.State, true)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(r.Package), []byte{}); err != nil {
			return err
		}
	}
	// bbolt keeps the value until the commit: a fresh buffer each time.
	v, _ := r.MarshalBinary()
	return t.pkgs.Put([]byte(r.Package), v)
}

func (t *tx) Delete(name string) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	old, err := t.Get(name)
	if err != nil || old == nil {
		return err
	}
	if err := t.unindex(old.State, name); err != nil {
		return err
	}
	return t.pkgs.Delete([]byte(name))
}

func (t *tx) ForEach(fn func(*queue.Record) error) error {
	return t.eachEncoded("", decoded(fn))
}

func (t *tx) ForEachInState(st queue.State, fn func(*queue.Record) error) error {
	return t.eachEncoded(st, decoded(fn))
}

// decoded is fn over encoded records, a record that does not decode an
// error naming it.
func decoded(fn func(*queue.Record) error) func(name, v []byte) error {
	return func(name, v []byte) error {
		r := &queue.Record{}
		if err := r.UnmarshalBinary(v); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fn(r)
	}
}

func (t *tx) Count(st queue.State) (int, error) {
	b, err := t.stateBucket(st, false)
	if b == nil || err != nil {
		return 0, err
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n, nil
}

func (t *tx) Log(tr *queue.Transaction) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	seq, err := t.hist.NextSequence()
	if err != nil {
		return err
	}
	k := make([]byte, 0, len(tr.Package)+9)
	k = append(k, tr.Package...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, seq)
	v, _ := tr.MarshalBinary()
	return t.hist.Put(k, v)
}

func (t *tx) History(name string, fn func(*queue.Transaction) error) error {
	if t.hist == nil {
		return nil
	}
	type entry struct {
		seq uint64
		tr  *queue.Transaction
	}
	var list []entry
	var prefix []byte
	if name != "" {
		prefix = append([]byte(name), 0)
	}
	c := t.hist.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		tr := &queue.Transaction{}
		if err := tr.UnmarshalBinary(v); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		list = append(list, entry{binary.BigEndian.Uint64(k[len(k)-8:]), tr})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	for _, e := range list {
		if err := fn(e.tr); err != nil {
			return err
		}
	}
	return nil
}

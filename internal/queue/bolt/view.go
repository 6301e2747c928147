package bolt

import (
	"fmt"
	"strconv"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"buildd/internal/queue"
)

// The status web's questions, answered from the buckets without decoding
// every record or transaction: the digest of each queue's history
// (queue.Digester) and one page of a queue's list (queue.Lister).

// Digests implements queue.Digester: one pass over each queue's history
// bucket, whose keys (name NUL sequence) give each package's
// transactions together and oldest first, decoding no transaction.
func (d *DB) Digests() (out map[queue.Pair]*queue.Digest, err error) {
	out = map[queue.Pair]*queue.Digest{}
	err = d.eachTop(func(p queue.Pair, top *bbolt.Bucket) error {
		hist := top.Bucket(bucketHist)
		if hist == nil {
			return nil
		}
		dg := queue.NewDigest()
		c := hist.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := dg.AddEncoded(v); err != nil {
				return fmt.Errorf("%s: history of %s/%s: %w", d.path, p.Dist, p.Arch, err)
			}
		}
		out[p] = dg
		return nil
	})
	return out, err
}

// HistoryMark implements queue.Digester: the sequence of every queue's
// history bucket, which each logged transaction advances.
func (d *DB) HistoryMark() (string, error) {
	var b strings.Builder
	err := d.eachTop(func(p queue.Pair, top *bbolt.Bucket) error {
		if hist := top.Bucket(bucketHist); hist != nil {
			b.WriteString(p.Dist + "/" + p.Arch + ":" + strconv.FormatUint(hist.Sequence(), 10) + " ")
		}
		return nil
	})
	return b.String(), err
}

// Mark implements queue.Marker: the id of the last committed write
// transaction.
func (d *DB) Mark() (mark string, err error) {
	if d.db == nil {
		return "none", nil
	}
	err = d.read(func(btx *bbolt.Tx) error {
		mark = strconv.Itoa(btx.ID())
		return nil
	})
	return mark, err
}

// eachTop calls fn with every queue's top-level bucket in one read-only
// transaction.
func (d *DB) eachTop(fn func(queue.Pair, *bbolt.Bucket) error) (err error) {
	if d.db == nil {
		return nil
	}
	return d.read(func(btx *bbolt.Tx) error {
		return btx.ForEach(func(name []byte, top *bbolt.Bucket) error {
			dist, arch, ok := strings.Cut(string(name), "/")
			if !ok {
				return fmt.Errorf("%s: bucket %q is not DIST/ARCH", d.path, name)
			}
			return fn(queue.Pair{Dist: dist, Arch: arch}, top)
		})
	})
}

// ListPage implements queue.Lister: the records are sorted as they are
// stored, and only the page's are decoded.
func (d *DB) ListPage(dist, arch string, q queue.PageQuery) (*queue.Page, error) {
	var p *queue.Page
	err := d.View(dist, arch, func(qtx queue.Tx) error {
		t := qtx.(*tx)
		var err error
		p, err = queue.ListPageEncoded(func(fn func([]byte) error) error {
			return t.eachEncoded(q.State, func(name, v []byte) error {
				if err := fn(v); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				return nil
			})
		}, q)
		return err
	})
	return p, err
}

// eachEncoded calls fn with the name and encoded record of every package
// in state st ("" is every state), in name order; fn's error is returned
// as it is.
func (t *tx) eachEncoded(st queue.State, fn func(name, v []byte) error) error {
	if t.pkgs == nil {
		return nil
	}
	if st == "" {
		c := t.pkgs.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	b, err := t.stateBucket(st, false)
	if b == nil || err != nil {
		return err
	}
	c := b.Cursor()
	for name, _ := c.First(); name != nil; name, _ = c.Next() {
		v := t.pkgs.Get(name)
		if v == nil {
			return fmt.Errorf("state index: %s: no record", name)
		}
		if err := fn(name, v); err != nil {
			return err
		}
	}
	return nil
}

// The optional capabilities of a Store that a bbolt file has.
var (
	_ queue.Store    = (*DB)(nil)
	_ queue.Lister   = (*DB)(nil)
	_ queue.Marker   = (*DB)(nil)
	_ queue.Digester = (*DB)(nil)
)

package bolt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"buildd/internal/queue"
)

// The machine revisions (queue.RevisionStore) live in two more buckets
// of each "DIST/ARCH": "revs" (key: builder NUL UUID → the
// queue.ReportedRevision as JSON) and "required" (key "uuid" → the
// queue.RequiredRevision as JSON). A report replaces the builder's keys.
var (
	bucketRevs     = []byte("revs")
	bucketRequired = []byte("required")
	keyRequired    = []byte("uuid")
)

func revKey(builder, uuid string) []byte {
	return append(append([]byte(builder), 0), uuid...)
}

// ReportRevisions implements queue.RevisionStore.
func (d *DB) ReportRevisions(builder string, p queue.Pair, held []queue.HeldRevision) (required string, err error) {
	if err := queue.CheckReport(builder, p, held); err != nil {
		return "", err
	}
	now := time.Now().Unix()
	err = d.write(func(btx *bbolt.Tx) error {
		top, err := btx.CreateBucketIfNotExists(bucketName(p.Dist, p.Arch))
		if err != nil {
			return err
		}
		revs, err := top.CreateBucketIfNotExists(bucketRevs)
		if err != nil {
			return err
		}
		prefix := revKey(builder, "")
		var old [][]byte
		c := revs.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			if err := revs.Delete(k); err != nil {
				return err
			}
		}
		for _, h := range held {
			v, err := json.Marshal(queue.ReportedRevision{Builder: builder, Pair: p, HeldRevision: h, Reported: now})
			if err != nil {
				return err
			}
			if err := revs.Put(revKey(builder, h.UUID), v); err != nil {
				return err
			}
		}
		req, err := readRequired(top, p)
		required = req.UUID
		return err
	})
	if err != nil {
		return "", fmt.Errorf("revisions of %s in %s/%s: %w", builder, p.Dist, p.Arch, err)
	}
	return required, nil
}

// readRequired is the required revision in the queue's bucket top, a
// zero one when none.
func readRequired(top *bbolt.Bucket, p queue.Pair) (queue.RequiredRevision, error) {
	var r queue.RequiredRevision
	b := top.Bucket(bucketRequired)
	if b == nil {
		return r, nil
	}
	v := b.Get(keyRequired)
	if v == nil {
		return r, nil
	}
	if err := json.Unmarshal(v, &r); err != nil || r.Pair != p || !queue.ValidUUID(r.UUID) {
		return queue.RequiredRevision{}, fmt.Errorf("%w: the required revision of %s/%s is not one: %q", ErrDamaged, p.Dist, p.Arch, v)
	}
	return r, nil
}

// Revisions implements queue.RevisionStore: each stored report is
// checked as it was when it was stored.
func (d *DB) Revisions(builder string, p queue.Pair) (list []queue.ReportedRevision, err error) {
	var prefix []byte
	if builder != "" {
		prefix = revKey(builder, "")
	}
	err = d.eachTop(func(q queue.Pair, top *bbolt.Bucket) error {
		revs := top.Bucket(bucketRevs)
		if revs == nil || p.Dist != "" && p.Dist != q.Dist || p.Arch != "" && p.Arch != q.Arch {
			return nil
		}
		c := revs.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var r queue.ReportedRevision
			if err := json.Unmarshal(v, &r); err != nil || r.Pair != q || !bytes.Equal(k, revKey(r.Builder, r.UUID)) ||
				queue.CheckReport(r.Builder, r.Pair, []queue.HeldRevision{r.HeldRevision}) != nil {
				return fmt.Errorf("%w: a reported revision of %s/%s is not one: %q", ErrDamaged, q.Dist, q.Arch, v)
			}
			list = append(list, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	queue.SortReported(list)
	return list, nil
}

// RequireRevision implements queue.RevisionStore.
func (d *DB) RequireRevision(p queue.Pair, uuid, by string) error {
	if err := queue.CheckRequirement(p, uuid, by); err != nil {
		return err
	}
	err := d.write(func(btx *bbolt.Tx) error {
		top, err := btx.CreateBucketIfNotExists(bucketName(p.Dist, p.Arch))
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists(bucketRequired)
		if err != nil {
			return err
		}
		if uuid == "" {
			return b.Delete(keyRequired)
		}
		v, err := json.Marshal(queue.RequiredRevision{Pair: p, UUID: uuid, SetBy: by, Set: time.Now().Unix()})
		if err != nil {
			return err
		}
		return b.Put(keyRequired, v)
	})
	if err != nil {
		return fmt.Errorf("required revision of %s/%s: %w", p.Dist, p.Arch, err)
	}
	return nil
}

// RequiredRevisions implements queue.RevisionStore.
func (d *DB) RequiredRevisions() (list []queue.RequiredRevision, err error) {
	err = d.eachTop(func(p queue.Pair, top *bbolt.Bucket) error {
		r, err := readRequired(top, p)
		if err == nil && r.UUID != "" {
			list = append(list, r)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		return a.Dist < b.Dist || a.Dist == b.Dist && a.Arch < b.Arch
	})
	return list, nil
}

var _ queue.RevisionStore = (*DB)(nil)

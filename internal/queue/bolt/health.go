package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"buildd/internal/queue"
)

// The ended builds (queue.BuildStore) live in the bucket "builds" of each
// "DIST/ARCH" (key: package NUL 8-byte sequence → the queue.BuildRecord
// as JSON), at most queue.MaxBuildsKept of a package; the heartbeats
// (queue.BuilderStore) in its bucket "builders" (key: builder → the
// queue.BuilderStatus as JSON).
var (
	bucketBuilds   = []byte("builds")
	bucketBuilders = []byte("builders")
)

// AddBuild implements queue.BuildStore.
func (t *tx) AddBuild(b *queue.BuildRecord) error {
	if !t.writable {
		return queue.ErrReadOnly
	}
	if t.builds == nil {
		var err error
		if t.builds, err = t.top.CreateBucketIfNotExists(bucketBuilds); err != nil {
			return err
		}
	}
	seq, err := t.builds.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	prefix := append([]byte(b.Package), 0)
	if err := t.builds.Put(binary.BigEndian.AppendUint64(bytes.Clone(prefix), seq), v); err != nil {
		return err
	}
	var keys [][]byte
	c := t.builds.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for len(keys) > queue.MaxBuildsKept {
		if err := t.builds.Delete(keys[0]); err != nil {
			return err
		}
		keys = keys[1:]
	}
	return nil
}

// Builds implements queue.BuildStore: the keys sort each package's builds
// oldest first.
func (t *tx) Builds(name string, fn func(*queue.BuildRecord) error) error {
	if t.builds == nil {
		return nil
	}
	var prefix []byte
	if name != "" {
		prefix = append([]byte(name), 0)
	}
	c := t.builds.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		b := &queue.BuildRecord{}
		if err := json.Unmarshal(v, b); err != nil {
			return fmt.Errorf("build of %q: %w", k[:max(0, len(k)-9)], err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeat implements queue.BuilderStore.
func (d *DB) Heartbeat(st queue.BuilderStatus) error {
	if err := queue.CheckStatus(&st); err != nil {
		return err
	}
	st.Heard = time.Now().Unix()
	err := d.write(func(btx *bbolt.Tx) error {
		top, err := btx.CreateBucketIfNotExists(bucketName(st.Dist, st.Arch))
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists(bucketBuilders)
		if err != nil {
			return err
		}
		v, err := json.Marshal(st)
		if err != nil {
			return err
		}
		return b.Put([]byte(st.Builder), v)
	})
	if err != nil {
		return fmt.Errorf("heartbeat of %s in %s/%s: %w", st.Builder, st.Dist, st.Arch, err)
	}
	return nil
}

// Builders implements queue.BuilderStore.
func (d *DB) Builders(p queue.Pair) ([]queue.BuilderStatus, error) {
	if d.db == nil {
		return nil, nil
	}
	var list []queue.BuilderStatus
	err := d.read(func(btx *bbolt.Tx) error {
		return btx.ForEach(func(name []byte, top *bbolt.Bucket) error {
			dist, arch, _ := strings.Cut(string(name), "/")
			if p.Dist != "" && dist != p.Dist || p.Arch != "" && arch != p.Arch {
				return nil
			}
			b := top.Bucket(bucketBuilders)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				var st queue.BuilderStatus
				if err := json.Unmarshal(v, &st); err != nil {
					return fmt.Errorf("%s: heartbeat of %q in %s: %w", d.path, k, name, err)
				}
				list = append(list, st)
				return nil
			})
		})
	})
	queue.SortStatuses(list)
	return list, err
}

var _ queue.BuilderStore = (*DB)(nil)

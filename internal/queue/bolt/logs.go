package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"buildd/internal/queue"
)

// The build logs live in three more buckets of each "DIST/ARCH": "logs"
// (key: package NUL version NUL 8-byte end time NUL builder → the
// queue.BuildLog as JSON), "logdata" (the same key → the gzip stream) and
// "logexp" (8-byte Expires, then the key → empty: the index that PutLog
// removes expired logs by).
var (
	bucketLogs    = []byte("logs")
	bucketLogData = []byte("logdata")
	bucketLogExp  = []byte("logexp")
)

// logChunk is how much of a log CopyLog writes at once.
const logChunk = 1 << 20

func logKey(l *queue.BuildLog) []byte {
	k := make([]byte, 0, len(l.Package)+len(l.Version)+len(l.Builder)+11)
	k = append(k, l.Package...)
	k = append(k, 0)
	k = append(k, l.Version...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(l.Time))
	k = append(k, 0)
	return append(k, l.Builder...)
}

// PutLog implements queue.LogStore.
func (d *DB) PutLog(l *queue.BuildLog, gz []byte) (err error) {
	if err := l.Check(); err != nil {
		return err
	}
	err = d.write(func(btx *bbolt.Tx) error {
		if err := expireLogs(btx, time.Now().Unix()); err != nil {
			return err
		}
		top, err := btx.CreateBucketIfNotExists(bucketName(l.Dist, l.Arch))
		if err != nil {
			return err
		}
		var b [3]*bbolt.Bucket
		for i, name := range [][]byte{bucketLogs, bucketLogData, bucketLogExp} {
			if b[i], err = top.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		k := logKey(l)
		if b[0].Get(k) != nil {
			return nil
		}
		c := *l
		c.Stored = int64(len(gz))
		meta, err := json.Marshal(&c)
		if err != nil {
			return err
		}
		if err := b[0].Put(k, meta); err != nil {
			return err
		}
		if err := b[1].Put(k, append([]byte(nil), gz...)); err != nil {
			return err
		}
		return b[2].Put(append(binary.BigEndian.AppendUint64(nil, uint64(l.Expires)), k...), nil)
	})
	if err != nil {
		return fmt.Errorf("log %s: %w", l.PkgVersion(), err)
	}
	return nil
}

// expireLogs removes, in every DIST/ARCH, the logs whose Expires is
// before now.
func expireLogs(btx *bbolt.Tx, now int64) error {
	return btx.ForEach(func(_ []byte, top *bbolt.Bucket) error {
		exp := top.Bucket(bucketLogExp)
		if exp == nil {
			return nil
		}
		var due [][]byte
		c := exp.Cursor()
		for k, _ := c.First(); k != nil && len(k) >= 8 && int64(binary.BigEndian.Uint64(k)) < now; k, _ = c.Next() {
			due = append(due, append([]byte(nil), k...))
		}
		logs, data := top.Bucket(bucketLogs), top.Bucket(bucketLogData)
		for _, k := range due {
			if err := exp.Delete(k); err != nil {
				return err
			}
			if err := logs.Delete(k[8:]); err != nil {
				return err
			}
			if err := data.Delete(k[8:]); err != nil {
				return err
			}
		}
		return nil
	})
}

// Logs implements queue.LogStore.
func (d *DB) Logs(name string) (list []queue.BuildLog, err error) {
	if d.db == nil {
		return nil, nil
	}
	prefix := append([]byte(name), 0)
	err = d.read(func(btx *bbolt.Tx) error {
		return btx.ForEach(func(_ []byte, top *bbolt.Bucket) error {
			logs := top.Bucket(bucketLogs)
			if logs == nil {
				return nil
			}
			c := logs.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				var l queue.BuildLog
				if err := json.Unmarshal(v, &l); err != nil {
					return fmt.Errorf("logs of %s: %w", name, err)
				}
				list = append(list, l)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.path, err)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := &list[i], &list[j]
		if a.Time != b.Time {
			return a.Time > b.Time
		}
		return a.Dist+"\x00"+a.Arch+"\x00"+a.Version+"\x00"+a.Builder < b.Dist+"\x00"+b.Arch+"\x00"+b.Version+"\x00"+b.Builder
	})
	return list, nil
}

// CopyLog implements queue.LogStore.
func (d *DB) CopyLog(l *queue.BuildLog, w io.Writer) (err error) {
	if d.db == nil {
		return fmt.Errorf("log %s: %w", l.PkgVersion(), queue.ErrNoLog)
	}
	err = d.read(func(btx *bbolt.Tx) error {
		var gz []byte
		if top := btx.Bucket(bucketName(l.Dist, l.Arch)); top != nil {
			if data := top.Bucket(bucketLogData); data != nil {
				gz = data.Get(logKey(l))
			}
		}
		if gz == nil {
			return queue.ErrNoLog
		}
		for len(gz) > 0 {
			n := min(len(gz), logChunk)
			if _, err := w.Write(gz[:n]); err != nil {
				return err
			}
			gz = gz[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("log %s: %w", l.PkgVersion(), err)
	}
	return nil
}

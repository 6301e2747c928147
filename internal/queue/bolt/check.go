package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"

	"buildd/internal/queue"
)

// ErrDamaged is wrapped by every error about a file that is not a whole
// bbolt file: refused by Open, or found garbled inside a transaction.
var ErrDamaged = queue.ErrDamaged

// The on-disk meta page of bbolt v1.5.0 (go.etcd.io/bbolt/internal/common:
// Page, Meta), in the machine's byte order: a 16-byte page header, then
// magic, version, pageSize, flags (4 bytes each), the root bucket (root
// page, sequence), freelist page, pgid (the high-water mark: pages
// 0..pgid-1 are in use), txid and an FNV-64a checksum of the fields before
// it.
const (
	pageHeaderSize = 16
	metaSize       = 64
	metaChecksumAt = 56
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
	// bbolt looks for the second meta page at 1 KiB << 0..14 when the
	// first is unreadable.
	minPageSize = 1024
	maxPageSize = 1024 << 14
)

type meta struct {
	pageSize                 int64
	root, freelist, pgid, tx uint64
}

// readMeta reads the meta page at off; ok is false when it is not a valid
// one (wrong magic or version, bad checksum, or past the end of the file).
func readMeta(f *os.File, off int64) (m meta, ok bool, err error) {
	var b [pageHeaderSize + metaSize]byte
	if _, err := f.ReadAt(b[:], off); errors.Is(err, io.EOF) {
		return m, false, nil
	} else if err != nil {
		return m, false, err
	}
	p := b[pageHeaderSize:]
	e := binary.NativeEndian
	h := fnv.New64a()
	h.Write(p[:metaChecksumAt])
	if e.Uint32(p[0:]) != boltMagic || e.Uint32(p[4:]) != boltVersion || e.Uint64(p[metaChecksumAt:]) != h.Sum64() {
		return m, false, nil
	}
	return meta{
		pageSize: int64(e.Uint32(p[8:])),
		root:     e.Uint64(p[16:]),
		freelist: e.Uint64(p[32:]),
		pgid:     e.Uint64(p[40:]),
		tx:       e.Uint64(p[48:]),
	}, true, nil
}

// checkFile refuses a database file that bbolt would map past its end:
// bbolt reads the pages through a memory map, and a page beyond the end of
// the file is a SIGBUS, not an error. It reads both meta pages with plain
// reads and requires at least one valid meta page (bbolt falls back to the
// other one when the last commit's meta page is torn), a file size that is
// a whole number of pages, and every valid meta page's pages inside the
// file. An empty file is refused too: a new queue is made only where no
// file exists (see create), so an empty file is a queue that lost its
// contents.
func checkFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return fmt.Errorf("%w: empty file (0 bytes)", ErrDamaged)
	}
	m0, ok0, err := readMeta(f, 0)
	if err != nil {
		return err
	}
	pageSize := m0.pageSize
	var m1 meta
	ok1 := false
	if ok0 {
		if m1, ok1, err = readMeta(f, pageSize); err != nil {
			return err
		}
	} else {
		for ps := int64(minPageSize); ps <= maxPageSize && ps < size; ps <<= 1 {
			if m1, ok1, err = readMeta(f, ps); err != nil {
				return err
			}
			if ok1 && m1.pageSize == ps {
				pageSize = ps
				break
			}
			ok1 = false
		}
	}
	if !ok0 && !ok1 {
		return fmt.Errorf("%w: %d bytes with no valid meta page (not a bbolt file, or both meta pages garbled)", ErrDamaged, size)
	}
	if pageSize < minPageSize || pageSize > maxPageSize || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("%w: page size %d in the meta page", ErrDamaged, pageSize)
	}
	if size%pageSize != 0 {
		return fmt.Errorf("%w: %d bytes is not a whole number of %d-byte pages (truncated)", ErrDamaged, size, pageSize)
	}
	for i, m := range []struct {
		meta
		ok bool
	}{{m0, ok0}, {m1, ok1}} {
		if !m.ok {
			continue
		}
		if m.pageSize != pageSize {
			return fmt.Errorf("%w: meta page %d says %d-byte pages, the other %d", ErrDamaged, i, m.pageSize, pageSize)
		}
		if m.pgid < 2 || m.pgid > uint64(size/pageSize) {
			return fmt.Errorf("%w: meta page %d (transaction %d) uses %d pages of %d bytes, the file has %d bytes (truncated)",
				ErrDamaged, i, m.tx, m.pgid, pageSize, size)
		}
		if m.root < 2 || m.root >= m.pgid || m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid) {
			return fmt.Errorf("%w: meta page %d (transaction %d): root page %d or freelist page %d outside pages 2..%d",
				ErrDamaged, i, m.tx, m.root, m.freelist, m.pgid-1)
		}
	}
	return nil
}

// faultText describes a panic inside bbolt: with debug.SetPanicOnFault a
// fault on the mapped file (a SIGBUS past its end, a SIGSEGV past the map)
// is a runtime.Error with the faulting address.
func faultText(p any) string {
	if e, ok := p.(interface{ Addr() uintptr }); ok {
		return fmt.Sprintf("memory fault at %#x reading the mapped file (a page lies past the end of the file, or a page is garbled)", e.Addr())
	}
	return fmt.Sprint(p)
}

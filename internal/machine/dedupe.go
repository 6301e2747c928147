package machine

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// dedupeChunk is the most btrfs dedupes in one call.
const dedupeChunk = 16 << 20

// Dedupe makes each file at paths (inside the trees, as dpkg lists them)
// in the tree dst share its data with the file at the same path in the
// tree src where both hold the same bytes: for a new layer whose packages
// another layer installed from the same .debs. The kernel compares the
// bytes (btrfs FIDEDUPERANGE); a file that differs, is not a regular file
// in both, or differs in size is left as it is. Paths resolve inside each
// tree (openat2 RESOLVE_IN_ROOT). It returns the bytes now shared; an
// error only when deduplication cannot work at all here.
func Dedupe(dst, src string, paths []string) (int64, error) {
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("dedupe into %s: %w", dst, err)
	}
	defer unix.Close(dfd)
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("dedupe from %s: %w", src, err)
	}
	defer unix.Close(sfd)
	var shared int64
	for _, p := range paths {
		n, err := dedupeFile(dfd, sfd, p)
		shared += n
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTTY) {
			return shared, fmt.Errorf("dedupe %s into %s: %w", src, dst, err)
		}
	}
	return shared, nil
}

// openRegularIn opens path inside the tree dirfd for reading if it is a
// regular file (looked at first through an O_PATH descriptor, so that no
// device or FIFO is ever opened); -1 if it is not.
func openRegularIn(dirfd int, path string) (int, int64) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	pfd, err := unix.Openat2(dirfd, path, &how)
	if err != nil {
		return -1, 0
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size == 0 {
		return -1, 0
	}
	how.Flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat2(dirfd, path, &how)
	if err != nil {
		return -1, 0
	}
	return fd, st.Size
}

func dedupeFile(dfd, sfd int, path string) (int64, error) {
	s, size := openRegularIn(sfd, path)
	if s < 0 {
		return 0, nil
	}
	defer unix.Close(s)
	d, dsize := openRegularIn(dfd, path)
	if d < 0 {
		return 0, nil
	}
	defer unix.Close(d)
	if size != dsize {
		return 0, nil
	}
	var shared int64
	for off := int64(0); off < size; off += dedupeChunk {
		r := unix.FileDedupeRange{Src_offset: uint64(off), Src_length: uint64(min(dedupeChunk, size-off)),
			Info: []unix.FileDedupeRangeInfo{{Dest_fd: int64(d), Dest_offset: uint64(off)}}}
		if err := unix.IoctlFileDedupeRange(s, &r); err != nil {
			return shared, err
		}
		if st := r.Info[0].Status; st != unix.FILE_DEDUPE_RANGE_SAME {
			if st < 0 {
				return shared, unix.Errno(-st)
			}
			return shared, nil
		}
		shared += int64(r.Info[0].Bytes_deduped)
	}
	return shared, nil
}

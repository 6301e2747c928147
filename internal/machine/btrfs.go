package machine

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// btrfs ioctl numbers (linux/btrfs.h); golang.org/x/sys does not define them.
const (
	iocSubvolCreate   = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	iocSnapDestroy    = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocSnapCreateV2   = 0x50009417 // _IOW(0x94, 23, struct btrfs_ioctl_vol_args_v2)
	iocSubvolGetflags = 0x80089419 // _IOR(0x94, 25, __u64)
	iocSubvolSetflags = 0x4008941a // _IOW(0x94, 26, __u64)
	iocGetSubvolInfo  = 0x81f8943c // _IOR(0x94, 60, struct btrfs_ioctl_get_subvol_info_args)

	subvolReadOnly = 1 << 1 // BTRFS_SUBVOL_RDONLY
	firstFreeIno   = 256    // BTRFS_FIRST_FREE_OBJECTID: the inode of every subvolume's root
)

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	fd   int64
	name [4088]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2.
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

// subvolInfoArgs is struct btrfs_ioctl_get_subvol_info_args (504 bytes).
type subvolInfoArgs struct {
	treeid       uint64
	name         [256]byte
	parentID     uint64
	dirid        uint64
	generation   uint64
	flags        uint64
	uuid         [16]byte
	parentUUID   [16]byte
	receivedUUID [16]byte
	transids     [4]uint64    // c, o, s, r
	times        [4][2]uint64 // c, o, s, r: seconds, nanoseconds (the low 32 bits)
	reserved     [8]uint64
}

// subvolInfo is what the kernel says of one subvolume.
type subvolInfo struct {
	UUID         string // its own, "" never
	ReceivedUUID string // the sent subvolume's UUID when it was received; "" otherwise
	Made         time.Time
}

// identity is the UUID that names the subvolume on every host: the one it
// was received as, or its own.
func (si subvolInfo) identity() string {
	if si.ReceivedUUID != "" {
		return si.ReceivedUUID
	}
	return si.UUID
}

// getSubvolInfo reads the subvolume at path (BTRFS_IOC_GET_SUBVOL_INFO,
// which needs no privilege).
func getSubvolInfo(path string) (subvolInfo, error) {
	fd, err := openDir(path)
	if err != nil {
		return subvolInfo{}, err
	}
	defer unix.Close(fd)
	var a subvolInfoArgs
	if err := ioctl(fd, iocGetSubvolInfo, unsafe.Pointer(&a)); err != nil {
		return subvolInfo{}, fmt.Errorf("subvolume info of %s: %w", path, err)
	}
	return subvolInfo{
		UUID:         formatUUID(a.uuid),
		ReceivedUUID: formatUUID(a.receivedUUID),
		Made:         time.Unix(int64(a.times[1][0]), int64(uint32(a.times[1][1]))),
	}, nil
}

// formatUUID writes u as btrfs-progs does, "" for all zeroes.
func formatUUID(u [16]byte) string {
	if u == [16]byte{} {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func openDir(path string) (int, error) {
	return unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
}

// onBtrfs reports whether path is on a btrfs filesystem.
func onBtrfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return uint32(st.Type) == unix.BTRFS_SUPER_MAGIC, nil
}

// isSubvolume reports whether path is the root of a btrfs subvolume.
func isSubvolume(path string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Ino != firstFreeIno {
		return false
	}
	ok, err := onBtrfs(path)
	return err == nil && ok
}

// createSubvolume makes an empty subvolume at path.
func createSubvolume(path string) error {
	dfd, err := openDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("create subvolume %s: %w", path, err)
	}
	defer unix.Close(dfd)
	var a volArgs
	if err := setName(a.name[:], filepath.Base(path)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", path, err)
	}
	if err := ioctl(dfd, iocSubvolCreate, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("create subvolume %s: %w", path, err)
	}
	return nil
}

// snapshot makes dst a snapshot of the subvolume src, read-only if ro.
func snapshot(src, dst string, ro bool) error {
	sfd, err := openDir(src)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	defer unix.Close(sfd)
	dfd, err := openDir(filepath.Dir(dst))
	if err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	defer unix.Close(dfd)
	var a volArgsV2
	a.fd = int64(sfd)
	if ro {
		a.flags = subvolReadOnly
	}
	if err := setName(a.name[:], filepath.Base(dst)); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	if err := ioctl(dfd, iocSnapCreateV2, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("snapshot %s to %s: %w", src, dst, err)
	}
	return nil
}

func setName(buf []byte, name string) error {
	if len(name) >= len(buf) || name == "" {
		return fmt.Errorf("bad subvolume name %q", name)
	}
	copy(buf, name)
	return nil
}

// readOnly reports whether the subvolume at path has the read-only flag.
func readOnly(path string) (bool, error) {
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return false, fmt.Errorf("get flags of subvolume %s: %w", path, err)
	}
	return flags&subvolReadOnly != 0, nil
}

// syncFS writes to disk everything of the filesystem that holds path
// (syncfs(2)).
func syncFS(path string) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", path, err)
	}
	return nil
}

// setReadOnly sets or clears the read-only flag of the subvolume at path.
func setReadOnly(path string, ro bool) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var flags uint64
	if err := ioctl(fd, iocSubvolGetflags, unsafe.Pointer(&flags)); err != nil {
		return fmt.Errorf("get flags of subvolume %s: %w", path, err)
	}
	want := flags &^ subvolReadOnly
	if ro {
		want |= subvolReadOnly
	}
	if want == flags {
		return nil
	}
	if err := ioctl(fd, iocSubvolSetflags, unsafe.Pointer(&want)); err != nil {
		return fmt.Errorf("set read-only=%v on subvolume %s: %w", ro, path, err)
	}
	return nil
}

// deleteSubvolume deletes the subvolume at path, read-only or not, with any
// subvolumes nested inside it.
func deleteSubvolume(path string) error {
	if !isSubvolume(path) {
		return fmt.Errorf("delete subvolume %s: not a btrfs subvolume", path)
	}
	if err := setReadOnly(path, false); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	err := destroy(path)
	if !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	var nested []string
	werr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && d.IsDir() && isSubvolume(p) {
			nested = append(nested, p)
			return filepath.SkipDir
		}
		return nil
	})
	if werr != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, werr)
	}
	for _, n := range nested {
		if err := deleteSubvolume(n); err != nil {
			return err
		}
	}
	return destroy(path)
}

func destroy(path string) error {
	dfd, err := openDir(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	defer unix.Close(dfd)
	var a volArgs
	if err := setName(a.name[:], filepath.Base(path)); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	if err := ioctl(dfd, iocSnapDestroy, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("delete subvolume %s: %w", path, err)
	}
	return nil
}

var _ [504]byte = [unsafe.Sizeof(subvolInfoArgs{})]byte{}

package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sync suppression (Cmd.NoSync): a seccomp filter, installed by the helper
// on all its threads before it starts the command and inherited by
// everything the command starts, makes fsync, fdatasync, sync and syncfs
// return success without doing anything, as systemd-nspawn's
// --suppress-sync does and eatmydata does by LD_PRELOAD; unlike eatmydata
// it needs nothing inside the tree and reaches static and emulated
// programs too. Every other system call, and every call of another ABI
// (x32, i386 on amd64), is allowed as before: the filter is for speed,
// not a boundary.

// auditArch is the seccomp architecture of the native ABI; 0 where the
// filter is not known to fit.
func auditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	case "ppc64le":
		return unix.AUDIT_ARCH_PPC64LE
	case "s390x":
		return unix.AUDIT_ARCH_S390X
	case "riscv64":
		return unix.AUDIT_ARCH_RISCV64
	}
	return 0
}

// noSyncFilter is the BPF program: for the native ABI, the sync calls
// return 0 (SECCOMP_RET_ERRNO with errno 0), everything else is allowed.
func noSyncFilter(arch uint32) []unix.SockFilter {
	syncs := []uint32{unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC, unix.SYS_SYNCFS}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
		// offsets in struct seccomp_data
		offNr   = 0
		offArch = 4
	)
	n := uint8(len(syncs))
	f := []unix.SockFilter{
		{Code: ld, K: offArch},
		{Code: jeq, K: arch, Jt: 0, Jf: n + 1}, // another ABI: allow
		{Code: ld, K: offNr},
	}
	for i, nr := range syncs {
		// A match jumps over the other comparisons and the allow.
		f = append(f, unix.SockFilter{Code: jeq, K: nr, Jt: n - uint8(i), Jf: 0})
	}
	return append(f,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ERRNO | 0},
	)
}

// suppressSync installs the filter on every thread of the process.
func suppressSync() error {
	arch := auditArch()
	if arch == 0 {
		return fmt.Errorf("no seccomp filter for %s", runtime.GOARCH)
	}
	f := noSyncFilter(arch)
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); e != 0 {
		return fmt.Errorf("seccomp: %w", e)
	}
	return nil
}

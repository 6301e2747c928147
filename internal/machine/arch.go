package machine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// A machine of an architecture this host does not run natively is
// emulated: the kernel hands its programs to qemu-user through
// binfmt_misc. Registered with the fix-binary flag (F), the interpreter is
// opened when it is registered, so it works inside every snapshot without
// being copied in, and nothing else in this package (snapshots, layers,
// upgrade, send/receive, clean) knows the difference.

// BinfmtDir is where binfmt_misc is mounted.
const BinfmtDir = "/proc/sys/fs/binfmt_misc"

// qemuNames maps Debian architectures to qemu-user's names for them (the
// binfmt_misc entry is qemu-NAME).
var qemuNames = map[string]string{
	"amd64": "x86_64", "i386": "i386", "arm64": "aarch64", "armhf": "arm", "armel": "arm",
	"ppc64el": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "mips64el": "mips64el", "mipsel": "mipsel",
}

// nativeToo are the architectures a host runs natively beside its own.
var nativeToo = map[string][]string{"amd64": {"i386"}}

var hostArch = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		return "", fmt.Errorf("dpkg --print-architecture: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
})

// HostArch is this host's Debian architecture.
func HostArch() (string, error) { return hostArch() }

// Emulated reports whether a machine of arch runs through qemu-user on
// this host.
func Emulated(arch string) (bool, error) {
	host, err := HostArch()
	if err != nil {
		return false, err
	}
	if arch == host {
		return false, nil
	}
	for _, a := range nativeToo[host] {
		if a == arch {
			return false, nil
		}
	}
	return true, nil
}

// CheckEmulation checks that this host can run programs of arch: natively,
// or through an enabled binfmt_misc entry qemu-NAME with the fix-binary
// flag whose interpreter exists. Its error says what to install or mount.
func CheckEmulation(arch string) error {
	emu, err := Emulated(arch)
	if err != nil || !emu {
		return err
	}
	return checkBinfmt(BinfmtDir, arch)
}

// checkBinfmt is CheckEmulation's look at the binfmt_misc mount dir.
func checkBinfmt(dir, arch string) error {
	q, ok := qemuNames[arch]
	if !ok {
		return fmt.Errorf("architecture %s: no qemu-user emulation known for it", arch)
	}
	if _, err := os.Stat(filepath.Join(dir, "status")); err != nil {
		return fmt.Errorf("architecture %s needs qemu-user through binfmt_misc, which is not mounted: mount -t binfmt_misc binfmt_misc %s", arch, dir)
	}
	if st, err := os.ReadFile(filepath.Join(dir, "status")); err == nil && strings.TrimSpace(string(st)) != "enabled" {
		return fmt.Errorf("architecture %s: binfmt_misc is disabled: echo 1 > %s/status", arch, dir)
	}
	conf := "/usr/lib/binfmt.d/qemu-" + q + ".conf"
	entry, err := os.ReadFile(filepath.Join(dir, "qemu-"+q))
	if err != nil {
		return fmt.Errorf("architecture %s needs qemu-user, and binfmt_misc has no qemu-%s entry: apt-get install qemu-user-static, then register it: cat %s > %s/register (systemd-binfmt or update-binfmts do it at boot)", arch, q, conf, dir)
	}
	var enabled bool
	var interp, flags string
	for _, l := range strings.Split(string(entry), "\n") {
		switch {
		case l == "enabled":
			enabled = true
		case strings.HasPrefix(l, "interpreter "):
			interp = strings.TrimPrefix(l, "interpreter ")
		case strings.HasPrefix(l, "flags: "):
			flags = strings.TrimPrefix(l, "flags: ")
		}
	}
	switch {
	case !enabled:
		return fmt.Errorf("architecture %s: binfmt_misc entry qemu-%s is disabled: echo 1 > %s/qemu-%s", arch, q, dir, q)
	case !strings.Contains(flags, "F"):
		return fmt.Errorf("architecture %s: binfmt_misc entry qemu-%s lacks the fix-binary flag F (flags %q), so its interpreter %s cannot be found inside a machine: echo -1 > %s/qemu-%s, then register it with F: cat %s > %s/register", arch, q, flags, interp, dir, q, conf, dir)
	}
	return nil
}

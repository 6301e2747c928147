package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	if js, ok := os.LookupEnv(specEnv); ok {
		os.Exit(helper(js))
	}
}

// reportFD is the helper's pipe to Run (Cmd.ExtraFiles[0]): the helper
// writes its report there.
const reportFD = 3

// report is what the helper tells Run besides the exit status.
type report struct {
	OOMKills   int           // processes the OOM killer killed in the command's cgroup
	PeakMemory int64         // bytes: the most the command's cgroup held at once (memCgroup.peak); 0 without one
	CPU        time.Duration // user and system time of every process the helper reaped (childrenCPU)
}

// helper is the sandbox's first process (PID 1 of its PID namespace): it
// puts itself into a memory cgroup when the spec has a limit, mounts, runs
// the command, kills and reaps what the command left behind, reports what
// it measured and returns the command's exit status.
func helper(js string) int {
	var sp spec
	if err := json.Unmarshal([]byte(js), &sp); err != nil {
		fmt.Fprintf(os.Stderr, "buildd-sandbox: bad spec: %v\n", err)
		return 125
	}
	syscall.CloseOnExec(reportFD)
	rep := os.NewFile(reportFD, "report")
	var cg *memCgroup
	if sp.MemoryMax > 0 {
		if h, ok := findMemoryHierarchy(); ok {
			var err error
			if cg, err = newMemCgroup(h, sp.MemoryMax); err != nil {
				fmt.Fprintf(os.Stderr, "buildd-sandbox: memory limit not enforced: %v\n", err)
			}
		}
	}
	status := runCommand(&sp)
	killAll()
	r := report{CPU: childrenCPU()}
	if cg != nil {
		r.PeakMemory = cg.peak()
		if r.OOMKills = cg.oomKills(status); r.OOMKills > 0 {
			fmt.Fprintf(os.Stderr, "buildd-sandbox: out of memory: the kernel's OOM killer killed %d process(es) of the command (memory limit %d MiB)\n",
				r.OOMKills, sp.MemoryMax>>20)
		}
		if err := cg.remove(); err != nil {
			fmt.Fprintf(os.Stderr, "buildd-sandbox: %v\n", err)
		}
	}
	if err := json.NewEncoder(rep).Encode(r); err != nil {
		fmt.Fprintf(os.Stderr, "buildd-sandbox: report: %v\n", err)
	}
	return status
}

// childrenCPU is the user and system time of the calling process's
// children that it waited for, and of theirs (getrusage RUSAGE_CHILDREN).
// In the helper, after killAll, that is every process the sandbox ran: the
// orphans were reparented to it and reaped too.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// killAll kills every other process of the PID namespace and reaps them,
// so that the helper is the last one in its cgroup and its children's
// rusage (childrenCPU) covers them all. Only PID 1 of a PID namespace may
// do this: kill(-1) elsewhere would reach the host.
func killAll() {
	if os.Getpid() != 1 {
		return
	}
	unix.Kill(-1, unix.SIGKILL)
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil && err != unix.EINTR {
			return
		}
	}
}

// runCommand mounts the tree and runs the command in it.
func runCommand(sp *spec) int {
	if err := setup(sp); err != nil {
		fmt.Fprintf(os.Stderr, "buildd-sandbox: %s: %v\n", sp.Root, err)
		return 125
	}
	if sp.Nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, sp.Nice); err != nil {
			fmt.Fprintf(os.Stderr, "buildd-sandbox: nice %d: %v\n", sp.Nice, err)
			return 125
		}
	}
	if sp.NoSync {
		// Without the filter the command is slower, not wrong.
		if err := suppressSync(); err != nil {
			fmt.Fprintf(os.Stderr, "buildd-sandbox: syncs not suppressed: %v\n", err)
		}
	}
	cmd := &exec.Cmd{Path: sp.Path, Args: sp.Args, Env: sp.Env, Dir: sp.Dir, Stdout: os.Stdout, Stderr: os.Stderr}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot: sp.Root,
		Setsid: true,
	}
	if sp.UID != 0 || sp.GID != 0 {
		gs := make([]uint32, len(sp.Groups))
		for i, g := range sp.Groups {
			gs[i] = uint32(g)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(sp.UID), Gid: uint32(sp.GID), Groups: gs}
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "buildd-sandbox: %s: %v\n", sp.Path, err)
		return 127
	}
	return 0
}

type mnt struct {
	src, target, fstype string
	flags               uintptr
	data                string
}

func setup(sp *spec) error {
	r := sp.Root
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	dev := filepath.Join(r, "dev")
	for _, m := range []mnt{
		{"proc", filepath.Join(r, "proc"), "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"dev", dev, "tmpfs", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0755,size=1m"},
	} {
		if err := mount(m); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name       string
		major, min uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := filepath.Join(dev, d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.min))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	for _, m := range []mnt{
		{"devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{"shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	} {
		if err := mount(m); err != nil {
			return err
		}
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(r, "tmp"), 0o777|os.ModeSticky); err != nil {
		return err
	}
	for _, d := range sp.Binds {
		if err := bindReadOnly(r, d); err != nil {
			return err
		}
	}
	if sp.Network {
		rc := filepath.Join(r, "etc/resolv.conf")
		if fi, err := os.Lstat(rc); err == nil && fi.Mode().IsRegular() {
			if _, err := os.Stat("/etc/resolv.conf"); err == nil {
				if err := mount(mnt{"/etc/resolv.conf", rc, "", unix.MS_BIND, ""}); err != nil {
					return err
				}
				if err := mount(mnt{"", rc, "", unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY, ""}); err != nil {
					return err
				}
			}
		}
	} else if err := loUp(); err != nil {
		return err
	}
	return unix.Sethostname([]byte("buildd-sandbox"))
}

func mount(m mnt) error {
	if err := unix.Mount(m.src, m.target, m.fstype, m.flags, m.data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.fstype+m.src, m.target, err)
	}
	return nil
}

// loUp brings up the loopback interface of the private network namespace.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

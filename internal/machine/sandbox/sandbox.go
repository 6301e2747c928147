// Package sandbox runs one command inside a build machine's tree (a working
// snapshot or a revision being made) in private namespaces: its own mount
// namespace with /proc, a minimal /dev (null, zero, full, random, urandom,
// tty, ptmx with a private devpts, shm), its own PID namespace (when the
// sandbox's first process dies, the kernel kills everything in it), and,
// unless Network is set, its own network namespace holding only lo. Host
// directories can be bound read-only at the same path inside the tree; like
// every mount of the sandbox they exist only in its mount namespace, which
// the kernel destroys with the sandbox's last process. When the command
// ends, every process it left behind is killed, and Run reports what they
// all used (Usage): CPU time, and with a memory limit the cgroup's peak.
//
// The namespaces are set up by a re-exec of the running binary
// (/proc/self/exe) with the spec in the environment: the package's init
// function recognises it, mounts, and runs the command chrooted, as the
// requested user. Any binary that imports this package can therefore run a
// sandbox: buildd, and the test binaries of the packages that use it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// specEnv carries the JSON spec to the re-executed helper.
const specEnv = "BUILDD_SANDBOX_SPEC"

// Cmd is one command to run inside a tree.
type Cmd struct {
	Root    string    // the tree: the sandbox's /
	Args    []string  // the command; Args[0] is looked up in Root's PATH unless absolute
	User    string    // user name in Root's /etc/passwd; "" runs as root
	Dir     string    // working directory inside the tree; "" is /
	Env     []string  // the whole environment; PATH defaults to the usual one
	Network bool      // keep the host's network; else only a private lo
	Output  io.Writer // stdout and stderr, interleaved; nil discards
	// ReadOnly are host directories (absolute, clean) bound read-only,
	// nosuid, nodev at the same path inside the tree; see CheckBind.
	ReadOnly []string
	// Nice is the nice value of the command and everything it starts
	// (buildd's nice_level); 0 leaves it as it is.
	Nice int
	// MemoryMax (bytes) limits the memory of the command and everything
	// it starts, swap not allowed: the helper makes a memory cgroup
	// buildd/HOSTPID-UNIXNANO under the host's memory hierarchy (cgroup v2
	// memory.max, else v1 memory.limit_in_bytes; see MemoryController),
	// enters it before it starts the command and removes it afterwards.
	// Without a memory controller the command runs unlimited. 0: no limit.
	MemoryMax int64
	// NoSync makes fsync, fdatasync, sync and syncfs of the command and
	// everything it starts return success without writing anything back
	// (nosync.go): for installs into a throwaway snapshot that the caller
	// makes durable once, if it keeps it.
	NoSync bool

	usage Usage // what the last Run measured
}

// Usage is what a command, and everything it started, used: measured by
// the sandbox's first process once the command has ended and it has
// killed and reaped every other process of the sandbox.
type Usage struct {
	// PeakMemory (bytes) is the most the command's memory cgroup held at
	// once, page cache included (cgroup v2 memory.peak, v1
	// memory.max_usage_in_bytes); 0 when unknown: no MemoryMax, no memory
	// controller, or a cgroup v2 kernel before Linux 5.19.
	PeakMemory int64
	// CPU is the user and system time of every process of the sandbox:
	// the first process's getrusage(RUSAGE_CHILDREN) after it reaped them
	// all (orphans are reparented to it), with or without a cgroup.
	CPU time.Duration
}

// Usage is what the last Run of c measured, whether the command succeeded
// or failed; the zero Usage before Run, when Run could not start the
// command, or when ctx was cancelled (the sandbox was killed before it
// could measure).
func (c *Cmd) Usage() Usage { return c.usage }

type spec struct {
	Root      string
	Path      string
	Args      []string
	Env       []string
	Dir       string
	UID       int
	GID       int
	Groups    []int
	Network   bool
	Binds     []string
	Nice      int
	MemoryMax int64
	NoSync    bool
}

// DefaultPath is the PATH inside the sandbox when Env sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ExitError is a command that ran and failed.
type ExitError struct {
	Args   []string
	Status int // exit status, or 128+signal
	// OOMKills is how many of the command's processes the kernel's OOM
	// killer killed because the command reached its MemoryMax.
	OOMKills int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: exit status %d", strings.Join(e.Args, " "), e.Status)
}

// Run runs the command and waits for it; Usage then says what it used. A
// cancelled ctx kills the whole sandbox (every process in it) and returns
// ctx's error.
func (c *Cmd) Run(ctx context.Context) error {
	c.usage = Usage{}
	if len(c.Args) == 0 {
		return errors.New("sandbox: no command")
	}
	env := c.Env
	if !hasVar(env, "PATH") {
		env = append(append([]string(nil), env...), "PATH="+DefaultPath)
	}
	path, err := lookPath(c.Root, c.Args[0], env)
	if err != nil {
		return err
	}
	for _, d := range c.ReadOnly {
		if err := CheckBind(c.Root, d); err != nil {
			return err
		}
	}
	sp := spec{Root: c.Root, Path: path, Args: c.Args, Env: env, Dir: c.Dir, Network: c.Network, Binds: c.ReadOnly, Nice: c.Nice, MemoryMax: c.MemoryMax, NoSync: c.NoSync}
	if sp.Dir == "" {
		sp.Dir = "/"
	}
	if c.User != "" {
		if sp.UID, sp.GID, err = lookupUser(c.Root, c.User); err != nil {
			return err
		}
		sp.Groups = []int{sp.GID}
	}
	js, err := json.Marshal(sp)
	if err != nil {
		return err
	}
	out := c.Output
	if out == nil {
		out = io.Discard
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"buildd-sandbox"}
	cmd.Env = []string{specEnv + "=" + string(js)}
	cmd.Stdout = out
	cmd.Stderr = out
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if !c.Network {
		flags |= unix.CLONE_NEWNET
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	repR, repW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("sandbox %s: %w", c.Root, err)
	}
	defer repR.Close()
	cmd.ExtraFiles = []*os.File{repW} // the helper's reportFD

	// Pdeathsig fires when the thread that started the child exits: keep it.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		started := time.Now()
		err := cmd.Start()
		repW.Close() // the helper's copy is its own
		if err != nil {
			done <- fmt.Errorf("sandbox %s: %w", c.Root, err)
			return
		}
		stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		stop()
		if c.MemoryMax > 0 && ctx.Err() != nil {
			removeKilledHelperCgroup(cmd.Process.Pid, started, time.Now())
		}
		done <- err
	}()
	err = <-done
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The helper wrote its report before it exited (nothing if it was
	// killed or never started); every write end is closed by now, so this
	// cannot block.
	var rep report
	if json.NewDecoder(repR).Decode(&rep) == nil {
		c.usage = Usage{PeakMemory: rep.PeakMemory, CPU: rep.CPU}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		st := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st = 128 + int(ws.Signal())
		}
		return &ExitError{Args: c.Args, Status: st, OOMKills: rep.OOMKills}
	}
	return err
}

func hasVar(env []string, name string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, name+"=") {
			return true
		}
	}
	return false
}

// lookPath finds name in the tree's PATH directories.
func lookPath(root, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	p := DefaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			p = v
		}
	}
	for _, d := range filepath.SplitList(p) {
		full := filepath.Join(d, name)
		if fi, err := os.Stat(filepath.Join(root, full)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return full, nil
		}
	}
	return "", fmt.Errorf("sandbox %s: %s: not found in PATH %s", root, name, p)
}

// lookupUser reads the tree's /etc/passwd.
func lookupUser(root, name string) (uid, gid int, err error) {
	pw := filepath.Join(root, "etc/passwd")
	data, err := os.ReadFile(pw)
	if err != nil {
		return 0, 0, fmt.Errorf("sandbox: user %s: %w", name, err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 4 || f[0] != name {
			continue
		}
		u, err1 := strconv.Atoi(f[2])
		g, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("%s:%d: bad uid or gid for %s", pw, i+1, name)
		}
		return u, g, nil
	}
	return 0, 0, fmt.Errorf("%s: no user %s", pw, name)
}

package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupParent is the directory, under the root of the memory hierarchy,
// that holds one cgroup per running command.
const cgroupParent = "buildd"

// staleCgroupAge is how old an empty cgroup under cgroupParent must be
// before a new command's helper removes it (its helper was SIGKILLed).
const staleCgroupAge = time.Minute

// hierarchy is where the memory controller is mounted.
type hierarchy struct {
	version int    // 2: cgroup2 with memory in cgroup.controllers; 1: cgroup v1 memory
	dir     string // its mount point
}

func (h hierarchy) String() string { return fmt.Sprintf("cgroup v%d %s", h.version, h.dir) }

// MemoryController describes the memory controller that enforces
// Cmd.MemoryMax on this host ("cgroup v2 /sys/fs/cgroup", "cgroup v1
// /sys/fs/cgroup/memory"), or is "" when the host has none: the command
// then runs without a memory limit.
func MemoryController() string {
	h, ok := findMemoryHierarchy()
	if !ok {
		return ""
	}
	return h.String()
}

func findMemoryHierarchy() (hierarchy, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return hierarchy{}, false
	}
	return memoryHierarchy(string(data), func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		return string(b)
	})
}

// memoryHierarchy picks the memory hierarchy from a mountinfo text: the
// first cgroup2 mount whose cgroup.controllers (read by controllers) offers
// memory, else the first cgroup v1 mount with the memory controller.
func memoryHierarchy(mountinfo string, controllers func(dir string) string) (hierarchy, bool) {
	var v1 []string
	for _, l := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		dir := UnescapeMountPath(f[4])
		switch g[0] {
		case "cgroup2":
			if slices.Contains(strings.Fields(controllers(dir)), "memory") {
				return hierarchy{2, dir}, true
			}
		case "cgroup":
			if slices.Contains(strings.Split(g[2], ","), "memory") {
				v1 = append(v1, dir)
			}
		}
	}
	if len(v1) > 0 {
		return hierarchy{1, v1[0]}, true
	}
	return hierarchy{}, false
}

// UnescapeMountPath undoes the octal escapes of a path in
// /proc/*/mountinfo (\040 for a space).
func UnescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// memCgroup is the cgroup a helper made for its command.
type memCgroup struct {
	h      hierarchy
	dir    string // the cgroup
	origin string // the helper's cgroup before it moved in
}

// newMemCgroup makes the cgroup cgroupParent/<host pid>-<unix nanoseconds>
// under h with the memory limit max (bytes, swap not allowed) and moves the
// calling process into it, so that everything it starts from then on is
// inside. It first removes the parent's empty cgroups older than
// staleCgroupAge.
func newMemCgroup(h hierarchy, max int64) (*memCgroup, error) {
	origin, err := ownCgroup(h)
	if err != nil {
		return nil, err
	}
	parent := filepath.Join(h.dir, cgroupParent)
	if h.version == 2 {
		if err := enableMemory(h.dir); err != nil {
			return nil, err
		}
	}
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if h.version == 2 {
		if err := enableMemory(parent); err != nil {
			return nil, err
		}
	}
	removeStale(parent, time.Now())
	self, err := os.Readlink("/proc/self") // the host's pid: /proc is still the host's procfs
	if err != nil {
		return nil, err
	}
	cg := &memCgroup{h: h, dir: filepath.Join(parent, fmt.Sprintf("%s-%d", self, time.Now().UnixNano())), origin: origin}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, err
	}
	lim := strconv.FormatInt(max, 10)
	var files [][2]string
	if h.version == 2 {
		files = [][2]string{{"memory.max", lim}, {"memory.swap.max", "0"}}
	} else {
		files = [][2]string{{"memory.limit_in_bytes", lim}, {"memory.memsw.limit_in_bytes", lim}}
	}
	for i, f := range files {
		err := writeFile(filepath.Join(cg.dir, f[0]), f[1])
		if i > 0 && errors.Is(err, fs.ErrNotExist) {
			continue // no swap accounting
		}
		if err != nil {
			os.Remove(cg.dir)
			return nil, err
		}
	}
	// "0" is the writing process in every PID namespace (the helper is 1
	// in its own, which the kernel would accept too).
	if err := writeFile(filepath.Join(cg.dir, "cgroup.procs"), "0"); err != nil {
		os.Remove(cg.dir)
		return nil, err
	}
	return cg, nil
}

// enableMemory makes the memory controller available to dir's children
// (cgroup v2).
func enableMemory(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	if slices.Contains(strings.Fields(string(b)), "memory") {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+memory")
}

// ownCgroup is the directory of the calling process's cgroup in h.
func ownCgroup(h hierarchy) (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (h.version == 2 && parts[0] == "0" && parts[1] == "") ||
			(h.version == 1 && slices.Contains(strings.Split(parts[1], ","), "memory")) {
			return filepath.Join(h.dir, parts[2]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("/proc/self/cgroup: not in %s", h)
}

// removeStale removes parent's cgroups that are older than staleCgroupAge
// and empty; rmdir refuses those that still hold processes.
func removeStale(parent string, now time.Time) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleCgroupAge {
			unix.Rmdir(filepath.Join(parent, e.Name()))
		}
	}
}

// oomKills is how many processes the OOM killer killed in the cgroup.
// Without an oom_kill counter (cgroup v1 before Linux 4.13) a command
// killed by SIGKILL after the cgroup hit its limit counts as one.
func (cg *memCgroup) oomKills(status int) int {
	if cg.h.version == 2 {
		return counter(filepath.Join(cg.dir, "memory.events"), "oom_kill")
	}
	if n := counter(filepath.Join(cg.dir, "memory.oom_control"), "oom_kill"); n >= 0 {
		return n
	}
	if status == 128+int(unix.SIGKILL) && counter(filepath.Join(cg.dir, "memory.failcnt"), "") > 0 {
		return 1
	}
	return 0
}

// peak is the most memory (bytes) the cgroup held at once, as the kernel
// counts it (page cache included): cgroup v2 memory.peak (Linux 5.19 and
// later), v1 memory.max_usage_in_bytes; 0 when the kernel does not say.
func (cg *memCgroup) peak() int64 {
	name := "memory.max_usage_in_bytes"
	if cg.h.version == 2 {
		name = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(cg.dir, name))
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// counter reads "key N" from a cgroup file ("" key: the file is one
// number); -1 when it is missing.
func counter(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if key == "" && len(f) == 1 {
			n, _ := strconv.Atoi(f[0])
			return n
		}
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// remove moves the calling process back to its former cgroup and removes
// the cgroup, which must hold no other process by then.
func (cg *memCgroup) remove() error {
	if err := writeFile(filepath.Join(cg.origin, "cgroup.procs"), "0"); err != nil {
		return err
	}
	return cg.rmdir()
}

// rmdir removes the empty cgroup, waiting up to a second for the kernel to
// let go of it.
func (cg *memCgroup) rmdir() error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Rmdir(cg.dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("rmdir %s: %w", cg.dir, err)
}

// removeKilledHelperCgroup removes the cgroup of the helper with host pid
// pid that ran from start to end and was killed before it could remove
// it. Its PID namespace died with it, so the cgroup is empty (rmdir
// refuses one that is not); the times keep a later helper that got the
// same pid out of reach.
func removeKilledHelperCgroup(pid int, start, end time.Time) {
	h, ok := findMemoryHierarchy()
	if !ok {
		return
	}
	prefix := strconv.Itoa(pid) + "-"
	dirs, _ := filepath.Glob(filepath.Join(h.dir, cgroupParent, prefix+"*"))
	for _, d := range dirs {
		ns, err := strconv.ParseInt(strings.TrimPrefix(filepath.Base(d), prefix), 10, 64)
		if err == nil && ns >= start.UnixNano() && ns <= end.UnixNano() {
			(&memCgroup{dir: d}).rmdir()
		}
	}
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

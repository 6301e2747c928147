// Package slicing owns how a host's CPUs and RAM are divided among build
// slots, as the Build OS monitor divides them among the toolchains it runs:
// the slice buildd enforces and the watcher's starting mail reports.
package slicing

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Slice is one slot's share of the host, as the Build OS monitor divides
// CPUs and RAM among the toolchains it runs.
type Slice struct {
	CPUs   int   // make -j / DEB_BUILD_OPTIONS=parallel=CPUs
	RAMKiB int64 // memory the slot's build may use
}

// ReserveKiB is the RAM kept for the host itself (root file system,
// tmpfs, the daemon): 4 GiB as the Build OS monitor keeps, but never more
// than a quarter of a small host.
func ReserveKiB(totalKiB int64) int64 {
	r := int64(4 * 1024 * 1024)
	if q := totalKiB / 4; q < r {
		r = q
	}
	return r
}

// Divide gives each of slots jobs its slice of cpus and ramKiB (the host's
// reserve already taken off ramKiB). Every slot gets at least one CPU, so
// with more slots than CPUs the CPUs are overcommitted, never zero.
func Divide(cpus int, ramKiB int64, slots int) Slice {
	if slots < 1 {
		slots = 1
	}
	s := Slice{CPUs: cpus / slots, RAMKiB: ramKiB / int64(slots)}
	if s.CPUs < 1 {
		s.CPUs = 1
	}
	if s.RAMKiB < 0 {
		s.RAMKiB = 0
	}
	return s
}

// HostSlice is Divide over this host: its CPUs and its MemTotal less the
// reserve.
func HostSlice(slots int) (Slice, error) {
	total, err := MemTotalKiB("/proc/meminfo")
	if err != nil {
		return Slice{}, err
	}
	return Divide(runtime.NumCPU(), total-ReserveKiB(total), slots), nil
}

// MemTotalKiB reads MemTotal from a meminfo file.
func MemTotalKiB(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s:%d: bad MemTotal %q", path, line, sc.Text())
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal line", path)
}

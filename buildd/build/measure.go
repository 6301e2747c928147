package build

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"buildd/internal/machine/sandbox"
	"buildd/internal/queue"
)

// What a build measured and what its outcome was caused by: its
// queue.Class, from its stage, status and what its steps saw (the OOM
// killer, a timeout, a full volume), never from the log's text, and its
// queue.Resources.

// classify is the class of a build that ended with status at stage: oom,
// the failed step's command was hit by the OOM killer; timedOut, it was
// killed by build_timeout or no_output_timeout; diskFull, the volume of
// the working snapshot was (nearly) full after the failure (volumeFull).
// A full disk, a cancelled build, and every stage but the build's own and
// its build-dependencies' are the builder's problem, not the package's.
func classify(status Status, stage string, oom, timedOut, diskFull bool) queue.Class {
	switch {
	case status == Successful:
		return queue.ClassOK
	case diskFull:
		return queue.ClassInfra
	case stage == StageBuild && timedOut:
		return queue.ClassTimeout
	case stage == StageBuild && oom:
		return queue.ClassOOM
	case stage == StageBuild && status == Attempted:
		return queue.ClassPackage
	case stage == StageDeps && status == Attempted:
		return queue.ClassDeps
	}
	return queue.ClassInfra
}

// volumeFull reports whether the volume holding dir is full or nearly full
// (nearlyFull, statfs's space available to an unprivileged user: the
// build's). why says how much was available, for the failure's message.
func volumeFull(dir string) (full bool, why string, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, "", fmt.Errorf("free space of %s: %w", dir, err)
	}
	avail, size := int64(st.Bavail)*int64(st.Bsize), int64(st.Blocks)*int64(st.Bsize)
	return nearlyFull(avail, size), fmt.Sprintf("%d MiB of %d MiB free on the volume of %s", avail>>20, size>>20, dir), nil
}

// nearlyFull reports whether a volume of size bytes with avail bytes
// available is full or nearly full: less than 1% of it, or less than
// 64 MiB, available.
func nearlyFull(avail, size int64) bool {
	return avail < 64<<20 || avail*100 < size
}

// measured adds what a step's sandbox measured to the build's resources:
// the peak memory is the largest of any step's, the CPU time the sum.
func (b *builder) measured(u sandbox.Usage) {
	r := &b.res.Resources
	r.PeakMemory = max(r.PeakMemory, (u.PeakMemory+1023)/1024)
	r.CPUTime += u.CPU.Milliseconds()
}

// revisionRoot is the tree of the bare revision the working snapshot was
// taken from (machine's NAME/NAME-N), whichever layer it continued from.
func (b *builder) revisionRoot() string {
	return filepath.Join(b.store.Dir, b.work.Machine, b.work.Revision)
}

// depsKiB is the installed size (KiB) of the packages fully installed
// ("install ok installed") in the tree root that the tree rev (the bare
// revision root was taken from) does not have: the build-dependencies,
// with what they pulled in.
func depsKiB(root, rev string) (int64, error) {
	have, err := dpkgStatus(rev)
	if err != nil {
		return 0, err
	}
	got, err := dpkgStatus(root)
	if err != nil {
		return 0, err
	}
	var kib int64
	for p, i := range got {
		if _, ok := have[p]; !ok && i.full() {
			kib += i.kib
		}
	}
	return kib, nil
}

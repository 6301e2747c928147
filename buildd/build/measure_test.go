package build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"buildd/internal/queue"
)

// TestClassify: each way a build ends maps to its class, from the
// decision's inputs alone.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		status                  Status
		stage                   string
		oom, timedOut, diskFull bool
		want                    queue.Class
	}{
		{name: "built", status: Successful, want: queue.ClassOK},
		{name: "build-failed", status: Attempted, stage: StageBuild, want: queue.ClassPackage},
		{name: "build-out-of-memory", status: Attempted, stage: StageBuild, oom: true, want: queue.ClassOOM},
		{name: "build-timed-out", status: GivenBack, stage: StageBuild, timedOut: true, want: queue.ClassTimeout},
		{name: "build-cancelled", status: GivenBack, stage: StageBuild, want: queue.ClassInfra},
		{name: "build-failed-disk-full", status: GivenBack, stage: StageBuild, diskFull: true, want: queue.ClassInfra},
		{name: "build-out-of-memory-disk-full", status: GivenBack, stage: StageBuild, oom: true, diskFull: true, want: queue.ClassInfra},
		{name: "build-timed-out-disk-full", status: GivenBack, stage: StageBuild, timedOut: true, diskFull: true, want: queue.ClassInfra},
		{name: "deps-unsatisfiable", status: Attempted, stage: StageDeps, want: queue.ClassDeps},
		{name: "deps-apt-failed", status: GivenBack, stage: StageDeps, want: queue.ClassInfra},
		{name: "deps-timed-out", status: GivenBack, stage: StageDeps, timedOut: true, want: queue.ClassInfra},
		{name: "deps-out-of-memory", status: GivenBack, stage: StageDeps, oom: true, want: queue.ClassInfra},
		{name: "deps-disk-full", status: GivenBack, stage: StageDeps, diskFull: true, want: queue.ClassInfra},
		{name: "snapshot", status: GivenBack, stage: StageSnapshot, want: queue.ClassInfra},
		{name: "fetch", status: GivenBack, stage: StageFetch, want: queue.ClassInfra},
		{name: "unpack", status: GivenBack, stage: StageUnpack, want: queue.ClassInfra},
		{name: "collect", status: GivenBack, stage: StageCollect, want: queue.ClassInfra},
		{name: "log", status: GivenBack, stage: StageLog, want: queue.ClassInfra},
		{name: "log-after-out-of-memory", status: GivenBack, stage: StageLog, oom: true, want: queue.ClassInfra},
		{name: "internal", status: GivenBack, stage: "internal", want: queue.ClassInfra},
		{name: "cleanup", status: GivenBack, stage: "cleanup", want: queue.ClassInfra},
		{name: "cancelled-between-steps", status: GivenBack, want: queue.ClassInfra},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.status, tc.stage, tc.oom, tc.timedOut, tc.diskFull); got != tc.want {
				t.Errorf("classify(%s, %q, oom %v, timed out %v, disk full %v) = %s, want %s",
					tc.status, tc.stage, tc.oom, tc.timedOut, tc.diskFull, got, tc.want)
			}
		})
	}
}

// TestNearlyFull: a volume is full with less than 64 MiB or less than 1%
// of it available.
func TestNearlyFull(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	for _, tc := range []struct {
		avail, size int64
		want        bool
	}{
		{0, 0, true},
		{0, 100 * gib, true},
		{63 * mib, 1 * gib, true},
		{64 * mib, 1 * gib, false},
		{9 * gib, 1000 * gib, true},
		{10 * gib, 1000 * gib, false},
		{500 * gib, 1000 * gib, false},
	} {
		if got := nearlyFull(tc.avail, tc.size); got != tc.want {
			t.Errorf("nearlyFull(%d MiB, %d MiB) = %v, want %v", tc.avail/mib, tc.size/mib, got, tc.want)
		}
	}
}

// tmpfs mounts a tmpfs of size (mount's size=) for the test, skipping it
// loudly without root.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		msg := fmt.Sprintf("!!!!! SKIPPED %s: needs root to mount a tmpfs as the working snapshot's volume !!!!!", t.Name())
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "buildd-test-volume", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// TestFailOnFullVolume: a step that fails with the working snapshot's
// volume full (a 1 MiB tmpfs here) is given back, the message says why and
// the class is infrastructure, whatever the step said; on a volume with
// room the step's own outcome stands.
func TestFailOnFullVolume(t *testing.T) {
	const failed = "build of hello_2.10-3 failed: dpkg-buildpackage: exit status 2"
	for _, tc := range []struct {
		size   string
		oom    bool
		status Status
		class  queue.Class
		full   bool
	}{
		{"1m", false, GivenBack, queue.ClassInfra, true},
		{"1m", true, GivenBack, queue.ClassInfra, true},
		{"1g", false, Attempted, queue.ClassPackage, false},
		{"1g", true, Attempted, queue.ClassOOM, false},
	} {
		t.Run(fmt.Sprintf("%s-oom-%v", tc.size, tc.oom), func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "build.log")
			b := testBuilder(t, p)
			b.root = tmpfs(t, tc.size)
			b.oom = tc.oom
			b.fail(Attempted, StageBuild, failed)
			b.finish()
			if b.res.Status != tc.status || b.res.Class != tc.class || b.res.FailStage != StageBuild {
				t.Errorf("result %s/%s class %s, want %s/%s class %s", b.res.Status, b.res.FailStage, b.res.Class, tc.status, StageBuild, tc.class)
			}
			if said := strings.Contains(b.res.Message, "(the volume of the working snapshot is full: "); said != tc.full || !strings.HasPrefix(b.res.Message, failed) {
				t.Errorf("message %q", b.res.Message)
			}
			if kv := summaryOf(t, p); kv["Class"] != string(tc.class) || kv["Status"] != string(tc.status) {
				t.Errorf("summary %v", kv)
			}
		})
	}
}

// TestDepsKiB: the build-dependencies' installed size is that of the
// packages fully installed in the snapshot that its revision does not
// have (by name and architecture: not an upgraded one, not one half
// installed or removed).
func TestDepsKiB(t *testing.T) {
	dir := "testdata/dpkg-status"
	for _, tc := range []struct {
		root, rev string
		want      int64
		err       bool
	}{
		{root: "build-deps", rev: "revision", want: 11000 + 1400 + 300},
		{root: "revision", rev: "revision", want: 0},
		{root: "bookworm-amd64", rev: "bookworm-amd64", want: 0},
		{root: "bookworm-amd64-cross-arm64", rev: "bookworm-amd64", want: 308529},
		{root: "build-deps", rev: "no-such-revision", err: true},
		{root: "no-such-snapshot", rev: "revision", err: true},
	} {
		t.Run(tc.root+"-over-"+tc.rev, func(t *testing.T) {
			got, err := depsKiB(filepath.Join(dir, tc.root), filepath.Join(dir, tc.rev))
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %d KiB, %v; want %d KiB, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// BenchmarkMeasure is the cost of a build's measurement here: the
// installed size of its build-dependencies from the dpkg status of its
// snapshot and of its revision (real ones: a debootstrapped bookworm and
// the same with 66 packages more, a cross toolchain). What each step's
// sandbox measures is the sandbox package's BenchmarkMeasure.
func BenchmarkMeasure(b *testing.B) {
	root, rev := "testdata/dpkg-status/bookworm-amd64-cross-arm64", "testdata/dpkg-status/bookworm-amd64"
	for b.Loop() {
		if _, err := depsKiB(root, rev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/build")
}

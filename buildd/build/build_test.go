package build_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
	"buildd/internal/queue"
)

// sourcePackage makes a source package from testdata/NAME with dpkg-source
// and returns its .dsc.
func sourcePackage(t testing.TB, name string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", filepath.Join("testdata", name), dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cmd := exec.Command("dpkg-source", "-b", name)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-source -b %s: %v\n%s", name, err, out)
	}
	return filepath.Join(dir, name+"_1.0.dsc")
}

func testConfig(t testing.TB, e *machinetest.Env) *config.Config {
	t.Helper()
	c := config.Defaults()
	c.Home = t.TempDir()
	c.MachinesDir = e.Dir
	c.BuilderName = "buildd-test"
	c.MailFrom = "buildd-test@example.org"
	c.NoOutputTime = 60
	c.BuildTimeout = 300
	c.Dists = []config.Dist{{DistName: e.Dist, BuiltArchitecture: e.Arch, Machine: e.Machine}}
	return &c
}

func noWorking(t testing.TB, e *machinetest.Env) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(e.Dir, "*", "work-*")); len(m) != 0 {
		t.Errorf("working snapshots left behind: %v", m)
	}
}

func summary(t testing.TB, log string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(data), "| Summary ")
	if i < 0 {
		t.Fatalf("%s: no Summary section", log)
	}
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(data[i:])))
	sc.Scan()
	sc.Scan()
	sc.Scan()
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ": ")
		kv[k] = v
	}
	return kv
}

func TestBuilds(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	for _, tc := range []struct {
		name         string
		pkg          string // testdata source package, or PKG_VERSION from the archive
		archive      bool
		logLimit     int
		noOutput     int
		buildTimeout int
		limitSays    string // what the job is told when noOutput or buildTimeout stops it, %d the limit
		binNMU       int
		memory       int64 // build.Job.Memory
		status       build.Status
		class        queue.Class
		reason       string // the Fail-Reason, when it matters
		stage        string
		minPeak      int64 // KiB: the least Resources.PeakMemory
		deps         bool  // build-dependencies installed: Resources.Disk beyond BuildSpace
		changes      string
		inLog        []string
		maxLogLen    int64
	}{
		{name: "ok", pkg: "tiny-ok", status: build.Successful, class: queue.ClassOK, changes: "tiny-ok_1.0_amd64.changes",
			inLog: []string{"building tiny-ok", "tiny-ok_1.0_amd64.changes:\n--------------------------\n\nFormat: 1.8", "Status: successful\n"}},
		{name: "binnmu", pkg: "tiny-ok", binNMU: 3, status: build.Successful, class: queue.ClassOK, changes: "tiny-ok_1.0+b3_amd64.changes",
			inLog: []string{"tiny-ok (1.0+b3) bookworm; urgency=low, binary-only=yes", "Version: 1.0+b3\n"}},
		{name: "fails-to-compile", pkg: "tiny-fail", status: build.Attempted, class: queue.ClassPackage, stage: build.StageBuild,
			inLog: []string{"broken.c", "Fail-Stage: build\n"}},
		{name: "build-dep-from-archive", pkg: "tiny-dh", status: build.Successful, class: queue.ClassOK, deps: true, changes: "tiny-dh_1.0_amd64.changes",
			inLog: []string{"Setting up debhelper", "dh_builddeb"}},
		{name: "hangs", pkg: "tiny-hang", noOutput: 3, status: build.GivenBack, class: queue.ClassTimeout, stage: build.StageBuild,
			limitSays: "no output for %d s", inLog: []string{"going to hang"}},
		{name: "job-timeout", pkg: "tiny-hang", buildTimeout: 8, status: build.GivenBack, class: queue.ClassTimeout, stage: build.StageBuild,
			limitSays: "build timeout of %d s exceeded (build_timeout bounds the whole job)", inLog: []string{"going to hang"}},
		{name: "floods", pkg: "tiny-flood", logLimit: 64 * 1024, status: build.Attempted, class: queue.ClassPackage, stage: build.StageBuild,
			inLog: []string{"log truncated:", "FLOOD-END"}, maxLogLen: 64*1024 + 8192},
		{name: "out-of-memory", pkg: "tiny-hog", memory: 128 << 20, status: build.Attempted, class: queue.ClassOOM, stage: build.StageBuild,
			reason: "out of memory: the build needed more than its 128 MiB slice",
			inLog: []string{"Memory limit 128 MiB per step (cgroup v", "hogging memory", "OOM killer",
				"E: out of memory: the build needed more than its 128 MiB slice\n"}},
		{name: "within-memory-slice", pkg: "tiny-hog", memory: 512 << 20, status: build.Successful, class: queue.ClassOK, minPeak: 200 << 10, changes: "tiny-hog_1.0_amd64.changes",
			inLog: []string{"Memory limit 512 MiB per step (cgroup v", "hog survived"}},
		{name: "not-in-archive", pkg: "no-such-package-buildd-test_1.0-1", archive: true, status: build.GivenBack, class: queue.ClassInfra, stage: build.StageFetch,
			inLog: []string{"no-such-package-buildd-test_1.0-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.memory > 0 && sandbox.MemoryController() == "" {
				t.Skip("SKIPPED: NO CGROUP MEMORY CONTROLLER on this host: memory limits cannot be tested here")
			}
			c := *cfg
			var limit *int // the limit meant to stop the case
			if tc.noOutput > 0 {
				c.NoOutputTime, limit = tc.noOutput, &c.NoOutputTime
			}
			if tc.logLimit > 0 {
				c.LogSizeLimit = tc.logLimit
			}
			if tc.buildTimeout > 0 {
				c.BuildTimeout, limit = tc.buildTimeout, &c.BuildTimeout
			}
			job := build.Job{Dist: &c.Dists[0], BinNMU: tc.binNMU, BinNMUChangelog: "Rebuild for the test.", Parallel: 2,
				Memory: tc.memory, LogPath: filepath.Join(t.TempDir(), "build.log")}
			if tc.archive {
				job.PkgVersion = tc.pkg
			} else {
				job.DSC = sourcePackage(t, tc.pkg)
			}
			res, log := runToLimit(t, e, &c, job, limit, tc.limitSays, tc.stage)
			if res.Status != tc.status || res.FailStage != tc.stage {
				t.Fatalf("status %s/%s (%s), want %s/%s\n%s", res.Status, res.FailStage, res.Message, tc.status, tc.stage, log)
			}
			if tc.reason != "" && res.Message != tc.reason {
				t.Errorf("Fail-Reason %q, want %q", res.Message, tc.reason)
			}
			inLog := tc.inLog
			if limit != nil {
				inLog = append(inLog, fmt.Sprintf(tc.limitSays, *limit))
			}
			for _, s := range inLog {
				if !strings.Contains(string(log), s) {
					t.Errorf("log lacks %q", s)
				}
			}
			if tc.maxLogLen > 0 && int64(len(log)) > tc.maxLogLen {
				t.Errorf("log is %d bytes, cap %d", len(log), tc.logLimit)
			}
			kv := summary(t, res.LogPath)
			if kv["Status"] != string(tc.status) || kv["Fail-Stage"] != tc.stage || kv["Machine"] != e.Machine {
				t.Errorf("summary %v", kv)
			}
			r := res.Resources
			if res.Class != tc.class || kv["Class"] != string(tc.class) {
				t.Errorf("class %s, summary's %q, want %s", res.Class, kv["Class"], tc.class)
			}
			if kv["Job-Time"] != fmt.Sprint(r.Wall) || kv["CPU-Time"] != fmt.Sprintf("%.1f", float64(r.CPUTime)/1000) ||
				kv["Peak-Memory"] != fmt.Sprint(r.PeakMemory) || kv["Disk-Space"] != fmt.Sprint(r.Disk) {
				t.Errorf("summary %v, resources %+v", kv, r)
			}
			if r.CPUTime <= 0 || r.PeakMemory < tc.minPeak || tc.memory == 0 && r.PeakMemory != 0 || r.SlotMemory != tc.memory>>10 {
				t.Errorf("resources %+v: want CPU time, a peak memory of at least %d KiB (none without a memory limit), slot memory %d KiB", r, tc.minPeak, tc.memory>>10)
			}
			if r.Disk < res.BuildSpace || (r.Disk > res.BuildSpace) != tc.deps {
				t.Errorf("disk %d KiB, build space %d KiB: want the installed build-dependencies beyond it: %v", r.Disk, res.BuildSpace, tc.deps)
			}
			if tc.changes != "" {
				if filepath.Base(res.ChangesPath) != tc.changes {
					t.Fatalf("changes %s, want %s", res.ChangesPath, tc.changes)
				}
				debs, _ := filepath.Glob(filepath.Join(c.Home, "build", "*.deb"))
				if len(debs) == 0 {
					t.Error("no .deb in home's build/")
				}
			}
		})
	}
}

// runToLimit runs job. A case that means its limit (no_output_timeout or
// build_timeout) to stop the hang in the build stage must not depend on how
// fast the steps before it are: when the limit stopped the job in an earlier
// stage (a loaded host, cold caches), that stop is checked for what an
// admin is told (given back, killed by the limit, no snapshot left), then
// the limit is doubled and the job run again, until the hang is reached.
func runToLimit(t *testing.T, e *machinetest.Env, c *config.Config, job build.Job, limit *int, says, stage string) (*build.Result, []byte) {
	t.Helper()
	for doubled := 0; ; doubled++ {
		res, err := build.Run(context.Background(), c, e.Store, job)
		if err != nil {
			t.Fatal(err)
		}
		noWorking(t, e)
		log, _ := os.ReadFile(res.LogPath)
		if limit == nil || stage != build.StageBuild || res.FailStage == build.StageBuild ||
			res.Status != build.GivenBack || !strings.Contains(res.Message, "killed: ") {
			return res, log
		}
		if !strings.Contains(res.Message, fmt.Sprintf(says, *limit)) {
			t.Fatalf("stopped at %s by something else than the limit: %s", res.FailStage, res.Message)
		}
		if doubled == 5 {
			t.Fatalf("even with the limit at %d s the job stopped at %s: %s", *limit, res.FailStage, res.Message)
		}
		t.Logf("the %d s limit stopped the job at %s, before the hang (%s); doubling it", *limit, res.FailStage, res.Message)
		*limit *= 2
	}
}

func TestBuildMissingMachine(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	cfg.Dists[0].Machine = "no-such-machine"
	res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-ok")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != build.GivenBack || res.FailStage != build.StageSnapshot || res.Class != queue.ClassInfra || !strings.Contains(res.Message, "no-such-machine") {
		t.Errorf("got %s/%s class %s: %s", res.Status, res.FailStage, res.Class, res.Message)
	}
}

// TestCancel: a cancelled build (the daemon's TERM) is given back and its
// snapshot deleted.
func TestCancel(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	res, err := build.Run(ctx, cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-slow")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != build.GivenBack || res.Class != queue.ClassInfra || !strings.Contains(res.Message, "cancelled") {
		t.Errorf("got %s/%s class %s: %s", res.Status, res.FailStage, res.Class, res.Message)
	}
	noWorking(t, e)
}

func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "buildd")
	cmd := exec.Command("go", "build", "-o", bin, "buildd/buildd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKillThenClean SIGKILLs a real `buildd build` mid-build; `buildd
// machine clean` then deletes its snapshot and touches nothing else.
func TestKillThenClean(t *testing.T) {
	e := machinetest.New(t)
	bin := buildBinary(t)
	cfg := testConfig(t, e)
	conf := filepath.Join(t.TempDir(), "buildd.conf")
	os.WriteFile(conf, []byte("home = \""+cfg.Home+"\"\nmachines_dir = \""+e.Dir+"\"\nno_output_timeout = 600\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \""+e.Arch+"\"\n"), 0o644)
	foreign := filepath.Join(e.Dir, "admin-notes.txt")
	os.WriteFile(foreign, []byte("not buildd's\n"), 0o644)
	logPath := filepath.Join(t.TempDir(), "build.log")
	cmd := exec.Command(bin, "build", "--config", conf, "--dist", "bookworm", "--log", logPath, "--dsc", sourcePackage(t, "tiny-hang"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the build to hang", time.Minute, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), "going to hang")
	})
	work, _ := filepath.Glob(filepath.Join(e.Dir, "*", "work-*[^k]"))
	if len(work) != 1 {
		t.Fatalf("working snapshots: %v", work)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	out, err := exec.Command(bin, "machine", "--machines-dir", e.Dir, "clean").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "deleted "+work[0]+"\n") || !strings.Contains(string(out), "left alone "+foreign) {
		t.Fatalf("clean: %v\n%s", err, out)
	}
	noWorking(t, e)
	for _, p := range []string{foreign, filepath.Join(e.Dir, e.Machine, e.Machine+"-1"), filepath.Join(e.Dir, e.Machine, "current")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("clean touched %s", p)
		}
	}
	// buildd's death kills the sandbox's first process (its parent-death
	// signal), and the kernel then kills the rest of its PID namespace,
	// which takes a moment.
	var ps []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ps, _ = exec.Command("pgrep", "-f", "sleep 3600").Output(); len(ps) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(ps) != 0 {
		t.Errorf("build processes survived buildd's SIGKILL by 30 s: %s", ps)
	}
}

// TestUpgradeDuringBuild: the running build finishes on the old revision,
// the next build uses the new one, and the old revision goes afterwards
// (after two upgrades: the newest revision before current is kept as the
// parent of an incremental push).
func TestUpgradeDuringBuild(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	type out struct {
		res *build.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-slow")})
		done <- out{res, err}
	}()
	waitFor(t, "the working snapshot", time.Minute, func() bool {
		m, _ := filepath.Glob(filepath.Join(e.Dir, "*", "work-1-*[^k]"))
		return len(m) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for range 2 {
		if err := e.Store.Upgrade(ctx, e.Machine); err != nil {
			t.Fatal(err)
		}
	}
	old := filepath.Join(e.Dir, e.Machine, e.Machine+"-1")
	o := <-done
	if o.err != nil || o.res.Status != build.Successful || o.res.Revision != e.Machine+"-1" {
		t.Fatalf("build during upgrade: %+v %v", o.res, o.err)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("old revision deleted while in use: %v", err)
	}
	res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-ok")})
	if err != nil || res.Status != build.Successful || res.Revision != e.Machine+"-3" {
		t.Fatalf("build after upgrade: %+v %v", res, err)
	}
	rep, err := e.Store.Clean(context.Background())
	if err != nil || len(rep.Deleted) != 1 || rep.Deleted[0] != old {
		t.Fatalf("clean after upgrade: %+v %v", rep, err)
	}
	ms, _ := e.Store.List()
	if len(ms[0].Revisions) != 2 || ms[0].Current != e.Machine+"-3" || ms[0].Revisions[0].Name != e.Machine+"-2" || !ms[0].Revisions[0].ReadOnly {
		t.Errorf("after upgrade and clean: %+v", ms[0])
	}
	noWorking(t, e)
}

// TestArchiveBuild fetches a real source package from the dist's archive.
func TestArchiveBuild(t *testing.T) {
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], PkgVersion: "hello_2.10-3", Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != build.Successful || filepath.Base(res.ChangesPath) != "hello_2.10-3_"+e.Arch+".changes" {
		log, _ := os.ReadFile(res.LogPath)
		t.Fatalf("%+v\n%s", res, log)
	}
	noWorking(t, e)
}

// TestBuildLogDiskFull: the volume holding the build log fills up during
// the build (a 64 KiB tmpfs, and tiny-flood writes megabytes to its log).
// A full disk is the builder's problem, not the package's: the build is
// given back at stage log (tiny-flood would be attempted, its binary
// target fails), and the working snapshot is deleted as always.
func TestBuildLogDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := fmt.Sprintf("!!!!! SKIPPED %s: needs root to mount a tmpfs for the full log volume !!!!!", t.Name())
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	e := machinetest.New(t)
	cfg := testConfig(t, e)
	vol := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "buildd-test-log", vol).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s: %v\n%s", vol, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", vol).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", vol, err, out)
			exec.Command("umount", "-l", vol).Run()
		}
	})
	logPath := filepath.Join(vol, "build.log")
	res, err := build.Run(context.Background(), cfg, e.Store, build.Job{Dist: &cfg.Dists[0], DSC: sourcePackage(t, "tiny-flood"), Parallel: 2, LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	noWorking(t, e)
	log, _ := os.ReadFile(logPath)
	want := "cannot write the build log " + logPath + ": no space left on device"
	if res.Status != build.GivenBack || res.FailStage != build.StageLog || res.Class != queue.ClassInfra || res.Message != want {
		t.Fatalf("got %s/%s class %s %q, want %s/%s class %s %q\n%s", res.Status, res.FailStage, res.Class, res.Message, build.GivenBack, build.StageLog, queue.ClassInfra, want, log)
	}
	if res.ChangesPath != "" {
		t.Errorf("changes %s from a build that failed", res.ChangesPath)
	}
	// The log filled in the build step (not before it): the failure is the
	// one the package's build would otherwise have been blamed for.
	if !strings.Contains(string(log), "flooding the log") || len(log) > 64*1024 {
		t.Errorf("log of %d bytes, from the flood? %q", len(log), log[max(0, len(log)-300):])
	}
}

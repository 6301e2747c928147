// Package build runs one build: a package version from the distribution's
// archive (or a given .dsc) built with dpkg-buildpackage inside a fresh
// working snapshot of the dist's build machine, in private namespaces, as
// the machine's unprivileged user, with no network during the build step.
// It owns the build log (sbuild-like sections, a summary block, the .changes),
// the mapping of what happened to a Status and to a queue.Class (measure.go),
// and what the build used (queue.Resources).
package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/machine/sandbox"
	"buildd/internal/queue"
)

// Status is a build's outcome as the queue sees it (queue.Outcome).
type Status = queue.Outcome

// The outcomes, as the build's Status names them.
const (
	Successful = queue.Successful
	Attempted  = queue.Attempted
	GivenBack  = queue.GivenBack
)

// Fail stages, as in the log's Fail-Stage line.
const (
	StageSnapshot = "create-snapshot"
	StageFetch    = "fetch-src"
	StageUnpack   = "unpack"
	StageDeps     = "install-deps"
	StageBuild    = "build"
	StageCollect  = "collect"
	StageLog      = "log" // the build log could not be written (a full disk): given back, whatever the build did
)

// Job is one build to do.
type Job struct {
	Dist            *config.Dist
	PkgVersion      string // "hello_2.10-3" (epoch allowed: "foo_1:2.0-1"); with DSC, may be ""
	DSC             string // a .dsc on the host to build instead of fetching PkgVersion
	BinNMU          int    // >0: build as binNMU +bN with BinNMUChangelog as the changelog entry
	BinNMUChangelog string
	Parallel        int    // DEB_BUILD_OPTIONS=parallel=N; <1 is 1
	Memory          int64  // bytes: the memory limit of every step (sandbox.Cmd.MemoryMax); 0 is none
	LogPath         string // "" is home's logs/PKG_VERSION_ARCH-YYYYMMDD-HHMMSS.build
}

// Result is what happened.
type Result struct {
	Status      Status
	FailStage   string        // "" when successful
	Message     string        // one line: why it failed, "" when successful
	BuildTime   time.Duration // the dpkg-buildpackage step
	InstallTime time.Duration // the build-dependencies step: resolving, and installing or taking the layer
	PackageTime time.Duration // from fetching the source to collecting the results
	Layer       string        // the layer the build continued from, or made: layer-N-KEY; "" if none
	LayerNew    bool          // Layer was made by this build
	LayerFrom   string        // the layer (or "the revision NAME-N") a new Layer was grown from; "" if installed on the bare revision
	Downloaded  int64         // bytes of build-dependencies apt had to download (not in the package cache)
	BuildSpace  int64         // KiB used by the unpacked, built source tree
	ChangesPath string        // the .changes copied into home's build/, "" if none
	LogPath     string
	Machine     string // the machine, and the revision the snapshot was taken from
	Revision    string
	// RevisionUUID names Revision on every host that holds it (a revision
	// shipped by push keeps it).
	RevisionUUID string
	// Mode is how it was built for its architecture: native, emulated
	// (through qemu-user) or cross.
	Mode      string
	UnmetDeps string // Fail-Stage install-deps, attempted: the relations apt could not satisfy ("a (>= 2), b | c"), if it named them
	// Class is what the outcome was caused by (classify), from what the
	// build saw.
	Class queue.Class
	// Resources are what the build used: the largest peak memory of its
	// steps and their CPU time (what their sandboxes measured: peak memory
	// only with a memory controller and Job.Memory), BuildSpace plus the
	// installed size of the build-dependencies (measured after the build
	// step, 0 when it did not run), the job's wall time (Job-Time) and
	// Job.Memory.
	Resources queue.Resources
}

// Run builds job with cfg's timeouts and log limit in a working snapshot of
// store's machine job.Dist.Machine. The snapshot is deleted on every path.
// Every outcome of the build itself, fetch and dependency failures included,
// is a Result; an error means the job could not be started at all (bad job,
// log file not writable) and nothing was done.
func Run(ctx context.Context, cfg *config.Config, store *machine.Store, job Job) (*Result, error) {
	b, err := newBuilder(cfg, store, job)
	if err != nil {
		return nil, err
	}
	return b.run(ctx), nil
}

type builder struct {
	cfg      *config.Config
	store    *machine.Store
	job      Job
	src      debversion.PkgVersion // the source package, its version with epoch as in the archive
	bin      debversion.PkgVersion // src as its binaries carry it: +bN for a binNMU
	arch     string
	target   target
	log      *logFile
	res      Result
	binds    []string        // the file: directories of the dist's apt_sources, bound for the apt steps
	pending  []*pendingLayer // layers being kept while the build goes on
	work     *machine.Working
	root     string // the snapshot: work's path
	srcDir   string // inside the sandbox: /build/PKG-VERSION
	start    time.Time
	oom      bool // the last step's command was hit by the OOM killer
	timedOut bool // the last step was killed by build_timeout or no_output_timeout
	diskFull bool // the working snapshot's volume was (nearly) full after the failure (volumeFull)
}

func newBuilder(cfg *config.Config, store *machine.Store, job Job) (*builder, error) {
	if job.Dist == nil {
		return nil, fmt.Errorf("build: job has no dist")
	}
	if store == nil {
		return nil, fmt.Errorf("build %s: no machine store", job.PkgVersion)
	}
	b := &builder{cfg: cfg, store: store, job: job, arch: job.Dist.BuiltArchitecture, target: targetOf(job.Dist), start: time.Now()}
	if job.DSC != "" {
		src, err := dscIdentity(job.DSC)
		if err != nil {
			return nil, err
		}
		b.src = src
		if job.PkgVersion != "" && job.PkgVersion != src.String() {
			return nil, fmt.Errorf("build: %s is %s, not %s", job.DSC, src, job.PkgVersion)
		}
	} else {
		b.src = debversion.SplitPkgVersion(job.PkgVersion)
		if b.src.Name == "" || b.src.Version == "" || strings.ContainsAny(job.PkgVersion, " /\t\n") {
			return nil, fmt.Errorf("build: %q is not PACKAGE_VERSION", job.PkgVersion)
		}
	}
	b.bin = b.src.WithBinNMU(job.BinNMU)
	if job.Parallel < 1 {
		b.job.Parallel = 1
	}
	lp := job.LogPath
	if lp == "" {
		lp = filepath.Join(home.New(cfg.Home).LogsDir(), home.LogName(b.src.String(), b.arch, b.start)+".build")
	}
	if err := os.MkdirAll(filepath.Dir(lp), 0o755); err != nil {
		return nil, fmt.Errorf("build %s: log: %w", b.src, err)
	}
	lf, err := openLog(lp, int64(cfg.LogSizeLimit))
	if err != nil {
		return nil, fmt.Errorf("build %s: log: %w", b.src, err)
	}
	b.log = lf
	b.res.LogPath = lp
	b.res.Machine = job.Dist.Machine
	return b, nil
}

// fail records the first failure. If the log failed (during the step that
// fails, or before), that is the failure instead: the step's own
// classification cannot be trusted, its output may be what went missing.
// A failure with the working snapshot's volume full or nearly full
// (volumeFull) is given back whatever the step said: a full disk is never
// the package's fault.
func (b *builder) fail(st Status, stage, msg string) {
	if b.res.Status != "" || b.logFailed(true) {
		return
	}
	if b.root != "" {
		full, why, err := volumeFull(b.root)
		if err != nil {
			fmt.Fprintf(b.log, "W: %v\n", err)
		}
		if full {
			b.diskFull = true
			st, msg = GivenBack, msg+" (the volume of the working snapshot is full: "+why+")"
		}
	}
	b.record(st, stage, msg)
}

// record records the first failure as it is.
func (b *builder) record(st Status, stage, msg string) {
	if b.res.Status != "" {
		return
	}
	b.res.Status, b.res.FailStage, b.res.Message = st, stage, msg
	fmt.Fprintf(b.log, "\nE: %s\n", msg)
}

// logFailed reports whether the build log failed (logFile.failed: a write
// error, ENOSPC on a full home volume say). A log that cannot be written
// is a local problem and an incomplete log cannot be signed off: the
// build is given back at stage log, over an attempted or successful
// outcome (or none yet), never over an earlier give-back. note tries to
// say so in the log.
func (b *builder) logFailed(note bool) bool {
	err := b.log.failed()
	if err == nil {
		return false
	}
	if b.res.Status != GivenBack {
		b.res.Status, b.res.FailStage = GivenBack, StageLog
		b.res.Message = fmt.Sprintf("cannot write the build log %s: %v", b.res.LogPath, err)
		if note {
			fmt.Fprintf(b.log, "\nE: %s\n", b.res.Message)
		}
	}
	return true
}

func (b *builder) run(ctx context.Context) (res *Result) {
	defer func() {
		if p := recover(); p != nil {
			b.record(GivenBack, "internal", fmt.Sprintf("internal error: %v", p))
		}
		b.finish()
		res = &b.res
	}()
	b.header()
	b.section("Create working snapshot")
	m, err := b.store.Machine(b.job.Dist.Machine)
	if err == nil {
		b.res.Mode, err = b.target.check(m)
	}
	if err != nil {
		b.fail(GivenBack, StageSnapshot, err.Error())
		return
	}
	w, err := b.store.NewWorking(b.job.Dist.Machine, b.src.String())
	if err != nil {
		b.fail(GivenBack, StageSnapshot, err.Error())
		return
	}
	b.work = w
	defer func() {
		b.section("Cleanup")
		b.settleLayers()
		w := b.work
		err := mountedUnder(w.Path())
		if err == nil {
			err = w.Delete()
		}
		if err != nil {
			fmt.Fprintf(b.log, "E: deleting working snapshot: %v\n", err)
			if b.res.Status == "" || b.res.Status == Successful {
				b.res.Status, b.res.FailStage, b.res.Message = GivenBack, "cleanup", err.Error()
			}
		} else {
			fmt.Fprintf(b.log, "Deleted working snapshot %s\n", w.Path())
		}
	}()
	b.root = w.Path()
	b.res.Revision, b.res.RevisionUUID = w.Revision, w.UUID
	fmt.Fprintf(b.log, "Machine %s, revision %s (UUID %s), %s build for %s\nWorking snapshot %s\n", w.Machine, w.Revision, w.UUID, b.res.Mode, b.arch, w.Path())
	if b.job.Memory > 0 {
		if ctl := sandbox.MemoryController(); ctl != "" {
			fmt.Fprintf(b.log, "Memory limit %d MiB per step (%s)\n", b.job.Memory>>20, ctl)
		} else {
			fmt.Fprintf(b.log, "memory limit not enforced: no cgroup memory controller\n")
		}
	}
	steps := []func(context.Context) bool{b.fetch, b.unpack, b.binNMU, b.deps, b.build, b.collect}
	t0 := time.Now()
	defer func() { b.res.PackageTime = time.Since(t0) }()
	for _, step := range steps {
		if b.logFailed(true) {
			return
		}
		if ctx.Err() != nil {
			b.fail(GivenBack, b.res.FailStage, "build cancelled: "+ctx.Err().Error())
			return
		}
		if !step(ctx) {
			return
		}
	}
	if b.logFailed(true) {
		return
	}
	b.res.Status = Successful
	return
}

func (b *builder) header() {
	title := fmt.Sprintf("%s %s (%s)", b.src.Name, b.bin.Version, b.arch)
	fmt.Fprintf(b.log, "%s\n", boxed(title, b.start, '='))
	fmt.Fprintf(b.log, "\nPackage: %s\nVersion: %s\nSource-Version: %s\nDistribution: %s\nArchitecture: %s\nMachine: %s\nBuilder: %s\n",
		b.src.Name, b.bin.Version, b.src.Version, b.job.Dist.DistName, b.arch, b.job.Dist.Machine, b.cfg.BuilderName)
	if b.job.DSC != "" {
		fmt.Fprintf(b.log, "Source: %s\n", b.job.DSC)
	}
}

func (b *builder) section(name string) {
	fmt.Fprintf(b.log, "\n%s\n\n", boxed(name, time.Now(), '-'))
}

// boxed is sbuild's section header: a 80-column box with the title on the
// left and the time on the right.
func boxed(title string, t time.Time, c byte) string {
	ts := t.UTC().Format(time.RFC1123Z)
	line := "+" + strings.Repeat(string(c), 78) + "+"
	pad := 76 - len(title) - len(ts)
	if pad < 1 {
		pad = 1
	}
	return fmt.Sprintf("%s\n| %s%s%s |\n%s", line, title, strings.Repeat(" ", pad), ts, line)
}

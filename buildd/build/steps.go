package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/machine/sandbox"
	"buildd/internal/queue"
)

// step is one command run in the snapshot.
type step struct {
	user    string // "" is root
	network bool
	dir     string
	script  string
	env     []string
	binds   []string  // host directories bound read-only (sandbox.Cmd.ReadOnly)
	capture io.Writer // also gets the output, besides the log
	quiet   bool      // the output goes to capture only, not to the log
	noSync  bool      // syncs suppressed (sandbox.Cmd.NoSync)
	name    string    // the command a failure names; "" is the script's first word
}

// sh runs script in the snapshot; see runStep.
func (b *builder) sh(ctx context.Context, user string, network bool, dir, script string, env ...string) (string, bool) {
	return b.runStep(ctx, step{user: user, network: network, dir: dir, script: script, env: env})
}

// apt runs an apt script as root with the network and the dist's local
// archives bound read-only; capture, if not nil, also gets the output.
func (b *builder) apt(ctx context.Context, script string, capture io.Writer) (string, bool) {
	return b.runStep(ctx, step{network: true, dir: machine.BuildHome, script: script, binds: b.binds, capture: capture})
}

// install runs an apt-get command that installs packages (installScript)
// as apt does, syncs suppressed; capture, if not nil, also gets the output.
func (b *builder) install(ctx context.Context, command string, capture io.Writer) (string, bool) {
	return b.runStep(ctx, step{network: true, dir: machine.BuildHome, script: installScript(command), binds: b.binds,
		capture: capture, noSync: true, name: "apt-get"})
}

// runStep runs one command in the snapshot within the job's build timeout
// (build_timeout bounds the whole job, from its start) and under the
// no-output watchdog. It returns "" on success, else why it failed, and
// whether it was killed (timeout, watchdog, cancel) rather than failing.
func (b *builder) runStep(ctx context.Context, st step) (string, bool) {
	user, script := st.user, st.script
	fmt.Fprintf(b.log, "+ %s\n", script)
	timeout := time.Duration(b.cfg.BuildTimeout) * time.Second
	if timeout <= 0 {
		timeout = 4 * time.Hour
	}
	sctx, cancel := context.WithDeadlineCause(ctx, b.start.Add(timeout), fmt.Errorf("build timeout of %d s exceeded (build_timeout bounds the whole job)", b.cfg.BuildTimeout))
	defer cancel()
	quiet := time.Duration(b.cfg.NoOutputTime) * time.Second
	wctx, wcancel := context.WithCancelCause(sctx)
	defer wcancel(nil)
	if quiet > 0 {
		b.log.mu.Lock()
		b.log.last = time.Now()
		b.log.mu.Unlock()
		tick := min(quiet/4, time.Second)
		go func() {
			t := time.NewTicker(tick)
			defer t.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-t.C:
					if time.Since(b.log.lastOutput()) > quiet {
						wcancel(fmt.Errorf("no output for %d s (no_output_timeout)", b.cfg.NoOutputTime))
						return
					}
				}
			}
		}()
	}
	base := []string{"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "PATH=" + sandbox.DefaultPath}
	if user == "" {
		base = append(base, "HOME=/root", "USER=root", "LOGNAME=root")
	} else {
		base = append(base, "HOME="+machine.BuildHome, "USER="+user, "LOGNAME="+user)
	}
	var out io.Writer = b.log
	switch {
	case st.capture != nil && st.quiet:
		out = st.capture
	case st.capture != nil:
		out = io.MultiWriter(b.log, st.capture)
	}
	c := &sandbox.Cmd{Root: b.root, Args: []string{"/bin/sh", "-ec", script}, User: user, Dir: st.dir,
		Env: append(base, st.env...), Network: st.network, Output: out, ReadOnly: st.binds,
		Nice: b.cfg.NiceLevel, MemoryMax: b.job.Memory, NoSync: st.noSync}
	b.oom, b.timedOut = false, false
	err := c.Run(wctx)
	b.measured(c.Usage())
	if err == nil {
		return "", false
	}
	if wctx.Err() != nil {
		cause := context.Cause(wctx)
		if ctx.Err() != nil {
			cause = fmt.Errorf("cancelled: %w", context.Cause(ctx))
		} else {
			b.timedOut = true
		}
		return fmt.Sprintf("killed: %v", cause), true
	}
	var ee *sandbox.ExitError
	if errors.As(err, &ee) {
		b.oom = ee.OOMKills > 0
		name := st.name
		if name == "" {
			name = firstWord(script)
		}
		return fmt.Sprintf("%s: exit status %d", name, ee.Status), false
	}
	return err.Error(), true
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \n"); i > 0 {
		return s[:i]
	}
	return s
}

// inBuild is a path under the snapshot's build home.
func (b *builder) inBuild(elem ...string) string {
	return filepath.Join(append([]string{b.root, machine.BuildHome}, elem...)...)
}

func (b *builder) fetch(ctx context.Context) bool {
	b.section("Fetch source files")
	if !b.extraSources() {
		return false
	}
	if b.job.DSC != "" {
		if err := b.copyDSC(); err != nil {
			b.fail(GivenBack, StageFetch, err.Error())
			return false
		}
		// The machine's own lists stay as its revision has them (machine
		// upgrade refreshes them), as for every .dsc build; only the
		// dist's extra sources are read afresh.
		if len(b.job.Dist.AptSources) > 0 {
			script := "apt-get -q -o Dir::Etc::SourceList=" + extraSourcesFile + " -o Dir::Etc::SourceParts=- -o APT::Get::List-Cleanup=false update"
			if msg, _ := b.apt(ctx, script, nil); msg != "" {
				b.fail(GivenBack, StageFetch, "cannot update the package lists of "+b.job.Dist.DistName+": "+msg)
				return false
			}
		}
		return true
	}
	msg, shared := b.updateLists(ctx, false)
	if msg != "" {
		b.fail(GivenBack, StageFetch, "cannot update the package lists of "+b.job.Dist.DistName+": "+msg)
		return false
	}
	// Source-Symlinks=false: from a file: archive apt would otherwise leave
	// symlinks into the bound directory, dangling once the step ends.
	script := fmt.Sprintf("apt-get -q -o Acquire::Source-Symlinks=false source --download-only '%s=%s'", b.src.Name, b.src.Version)
	msg, _ = b.apt(ctx, script, nil)
	if msg != "" && shared {
		// Shared lists older than the upload (the queue merged it since):
		// the archive may have it. Refresh them, for later builds too,
		// and fetch again.
		fmt.Fprintf(b.log, "%s is not in the shared package lists: refreshing them\n", b.src)
		if msg, _ = b.updateLists(ctx, true); msg == "" {
			msg, _ = b.apt(ctx, script, nil)
		}
	}
	if msg != "" {
		b.fail(GivenBack, StageFetch, fmt.Sprintf("cannot fetch %s from the archive of %s: %s", b.src, b.job.Dist.DistName, msg))
		return false
	}
	if err := chownTree(b.inBuild()); err != nil {
		b.fail(GivenBack, StageFetch, err.Error())
		return false
	}
	return true
}

// copyDSC copies the .dsc and the files it lists into the build home.
func (b *builder) copyDSC() error {
	data, err := os.ReadFile(b.job.DSC)
	if err != nil {
		return err
	}
	f, err := controlFields(b.job.DSC, data)
	if err != nil {
		return err
	}
	files, err := filesField(b.job.DSC, f["files"])
	if err != nil {
		return err
	}
	src := filepath.Dir(b.job.DSC)
	names := []string{filepath.Base(b.job.DSC)}
	for _, fe := range files {
		names = append(names, fe.name)
	}
	for _, n := range names {
		if err := copyFile(filepath.Join(src, n), b.inBuild(n), machine.BuildUID); err != nil {
			return err
		}
		fmt.Fprintf(b.log, "Copied %s\n", n)
	}
	return nil
}

func (b *builder) dscName() string { return b.src.NoEpoch().String() + ".dsc" }

func (b *builder) unpack(ctx context.Context) bool {
	b.section("Unpack source")
	b.srcDir = filepath.Join(machine.BuildHome, b.src.Name+"-"+b.src.NoEpoch().Version)
	dsc := b.dscName()
	if b.job.DSC != "" {
		dsc = filepath.Base(b.job.DSC)
	}
	script := fmt.Sprintf("dpkg-source --no-check -x '%s' '%s'", dsc, b.srcDir)
	if msg, _ := b.sh(ctx, machine.BuildUser, false, machine.BuildHome, script); msg != "" {
		b.fail(GivenBack, StageUnpack, "cannot unpack "+dsc+": "+msg)
		return false
	}
	return true
}

// binNMU writes the binNMU changelog stanza on top of debian/changelog.
func (b *builder) binNMU(ctx context.Context) bool {
	if b.job.BinNMU <= 0 {
		return true
	}
	b.section("binNMU changelog entry")
	rel := filepath.Join(b.srcDir, "debian/changelog")
	cl := filepath.Join(b.root, rel)
	if err := fileInTree(b.root, rel); err != nil {
		b.fail(GivenBack, StageUnpack, "binNMU changelog: "+err.Error())
		return false
	}
	old, err := os.ReadFile(cl)
	if err != nil {
		b.fail(GivenBack, StageUnpack, err.Error())
		return false
	}
	maint := b.job.Dist.MaintainerName
	if maint == "" {
		maint = fmt.Sprintf("%s Build Daemon (%s) <%s>", b.arch, b.cfg.BuilderName, b.cfg.MailFrom)
	}
	text := strings.TrimSpace(b.job.BinNMUChangelog)
	if text == "" {
		text = "Rebuild."
	}
	stanza := fmt.Sprintf("%s (%s) %s; urgency=low, binary-only=yes\n\n  * Binary-only non-maintainer upload for %s; no source changes.\n  * %s\n\n -- %s  %s\n\n",
		b.src.Name, b.bin.Version, b.job.Dist.DistName, b.arch, strings.ReplaceAll(text, "\n", "\n    "), maint, time.Now().Format(time.RFC1123Z))
	if err := os.WriteFile(cl, append([]byte(stanza), old...), 0o644); err != nil {
		b.fail(GivenBack, StageUnpack, err.Error())
		return false
	}
	io.WriteString(b.log, stanza)
	return true
}

func (b *builder) archOnly() bool { return !b.job.Dist.BuildArchAll }

// deps installs the build-dependencies, or continues from a layer that has
// exactly the packages apt would install (depcache.go), or grows a layer
// that has some of them (grow.go). Build-dependencies apt cannot satisfy
// are the package's problem (attempted: the admin answers dep-wait,
// gathering the relations from the log); anything else is given back.
func (b *builder) deps(ctx context.Context) bool {
	b.section("Install build dependencies")
	t0 := time.Now()
	defer func() { b.res.InstallTime = time.Since(t0) }()
	opt := b.target.aptOptions(b.archOnly())
	files := b.resolve(ctx, opt)
	key := ""
	if files != nil {
		size := sizeOf(files)
		key = layerKey(b.work.Revision, b.target.layerVariant(b.archOnly()), files)
		fmt.Fprintf(b.log, "%d packages to install (%d bytes); layer key %s\n", len(files), size, key)
		if len(files) > 0 && b.cfg.LayerCacheSize > 0 && b.fromLayer(key) {
			b.res.Layer = b.work.Layer
			fmt.Fprintf(b.log, "Installed from layer %s: working snapshot %s\n", b.work.Layer, b.root)
			return true
		}
		if len(files) > 0 && b.cfg.LayerCacheSize > 0 && b.grow(ctx, opt, files, key) {
			return true
		}
		cached := b.cacheIn(files)
		b.res.Downloaded = size - cached
		fmt.Fprintf(b.log, "%d bytes from the machine's package cache, %d to download\n", cached, size-cached)
	}
	out := &tailBuffer{max: 1 << 20}
	msg, killed := b.install(ctx, fmt.Sprintf("%sbuild-dep '%s'", opt, b.srcDir), out)
	if msg == "" {
		if files != nil {
			b.cacheOut(files)
			if len(files) > 0 && b.cfg.LayerCacheSize > 0 {
				b.addLayer(key, files, files)
			}
		}
		return true
	}
	if !killed {
		if unsat, unmet := depsFailure(out.String()); unsat {
			b.res.UnmetDeps = unmet
			why := "apt cannot satisfy them"
			if unmet != "" {
				fmt.Fprintf(b.log, "\nUnmet build dependencies: %s\n", unmet)
				why = unmet
			}
			st, cross := b.target.unmet()
			if cross != "" {
				why += "; " + b.src.String() + " " + cross
			}
			b.fail(st, StageDeps, "unmet build dependencies of "+b.src.String()+": "+why)
			return false
		}
	}
	b.fail(GivenBack, StageDeps, "cannot install the build dependencies of "+b.src.String()+": "+msg)
	return false
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

func (b *builder) build(ctx context.Context) bool {
	b.section("Build")
	script := fmt.Sprintf("dpkg-buildpackage -us -uc %s -rfakeroot", b.target.buildOptions(b.archOnly()))
	t0 := time.Now()
	msg, killed := b.sh(ctx, machine.BuildUser, false, b.srcDir, script, b.target.buildOptionsEnv(b.job.Parallel))
	b.res.BuildTime = time.Since(t0)
	b.res.BuildSpace = treeKiB(filepath.Join(b.root, b.srcDir))
	deps, err := depsKiB(b.root, b.revisionRoot())
	if err != nil {
		fmt.Fprintf(b.log, "W: installed size of the build dependencies: %v\n", err)
	}
	b.res.Resources.Disk = b.res.BuildSpace + deps
	switch {
	case msg == "":
		return true
	case killed:
		b.fail(GivenBack, StageBuild, "build of "+b.src.String()+" "+msg)
	case b.oom:
		b.fail(Attempted, StageBuild, fmt.Sprintf("out of memory: the build needed more than its %d MiB slice", b.job.Memory>>20))
	default:
		b.fail(Attempted, StageBuild, "build of "+b.src.String()+" failed: "+msg)
	}
	return false
}

func (b *builder) changesName() string {
	return home.ChangesName(b.bin, b.arch)
}

// collect copies the .changes and the files it lists into home's build/.
func (b *builder) collect(ctx context.Context) bool {
	b.section("Collect results")
	cp := b.inBuild(b.changesName())
	err := fileInTree(b.root, filepath.Join(machine.BuildHome, b.changesName()))
	var data []byte
	if err == nil {
		data, err = os.ReadFile(cp)
	}
	if err != nil {
		b.fail(GivenBack, StageCollect, "no "+b.changesName()+" after the build: "+err.Error())
		return false
	}
	f, err := controlFields(cp, data)
	if err == nil {
		var files []fileEntry
		if files, err = filesField(cp, f["files"]); err == nil {
			dest := home.New(b.cfg.Home).BuildDir()
			if err = os.MkdirAll(dest, 0o755); err == nil {
				for _, fe := range files {
					if err = fileInTree(b.root, filepath.Join(machine.BuildHome, fe.name)); err != nil {
						break
					}
					if err = copyFile(b.inBuild(fe.name), filepath.Join(dest, fe.name), -1); err != nil {
						break
					}
					fmt.Fprintf(b.log, "%s\n", fe.name)
				}
				if err == nil {
					b.res.ChangesPath = filepath.Join(dest, b.changesName())
					err = copyFile(cp, b.res.ChangesPath, -1)
				}
			}
		}
	}
	if err != nil {
		b.fail(GivenBack, StageCollect, err.Error())
		return false
	}
	fmt.Fprintf(b.log, "%s\n", b.changesName())
	return true
}

// finish writes the summary and the .changes, and closes the log. A log
// that failed by then (logFailed) makes the build given back, and the
// summary says so if it can still be written; one that fails while the
// summary is written makes it given back too, though the summary (what of
// it reached the log) said otherwise. The summary's Class is the build's
// (classify); Build-Space, Disk-Space (Resources.Disk) and Peak-Memory are
// KiB; the times are whole seconds but CPU-Time, seconds with one decimal.
func (b *builder) finish() {
	b.log.endBody()
	b.logFailed(true)
	if b.res.Status == "" {
		b.res.Status, b.res.FailStage, b.res.Message = GivenBack, "internal", "build ended without a status"
	}
	now := time.Now()
	b.res.Class = b.class()
	b.res.Resources.Wall = int64(now.Sub(b.start).Round(time.Second) / time.Second)
	b.res.Resources.SlotMemory = b.job.Memory / 1024
	fmt.Fprintf(b.log, "\n%s\n\n", boxed("Summary", now, '-'))
	fail := b.res.FailStage
	kv := [][2]string{
		{"Package", b.src.Name},
		{"Version", b.bin.Version},
		{"Source-Version", b.src.Version},
		{"Distribution", b.job.Dist.DistName},
		{"Architecture", b.arch},
		{"Machine", b.res.Machine},
		{"Revision", b.res.Revision},
		{"Revision-UUID", b.res.RevisionUUID},
		{"Build-Mode", b.res.Mode},
		{"Build-Time", seconds(b.res.BuildTime)},
		{"Build-Space", fmt.Sprintf("%d", b.res.BuildSpace)},
		{"Disk-Space", fmt.Sprintf("%d", b.res.Resources.Disk)},
		{"Install-Time", seconds(b.res.InstallTime)},
		{"Install-Layer", b.layerSummary()},
		{"Package-Time", seconds(b.res.PackageTime)},
		{"Job-Time", fmt.Sprintf("%d", b.res.Resources.Wall)},
		{"CPU-Time", cpuSeconds(b.res.Resources.CPUTime)},
		{"Peak-Memory", fmt.Sprintf("%d", b.res.Resources.PeakMemory)},
		{"Status", string(b.res.Status)},
		{"Class", string(b.res.Class)},
		{"Fail-Stage", fail},
		{"Fail-Reason", b.res.Message},
	}
	for _, p := range kv {
		if p[1] == "" && (p[0] == "Fail-Stage" || p[0] == "Fail-Reason" || p[0] == "Revision" || p[0] == "Revision-UUID" || p[0] == "Build-Mode") {
			continue
		}
		fmt.Fprintf(b.log, "%s: %s\n", p[0], p[1])
	}
	if b.res.ChangesPath != "" {
		if data, err := os.ReadFile(b.res.ChangesPath); err == nil {
			fmt.Fprintf(b.log, "\n%s\n\n%s:\n%s\n\n%s", boxed("Changes", now, '-'), b.changesName(), strings.Repeat("-", len(b.changesName())+1), data)
		}
	}
	fmt.Fprintf(b.log, "\n%s\n", boxed("Finished", now, '='))
	b.log.Close()
	if b.logFailed(false) {
		b.res.Class = b.class() // given back by now
	}
}

// class is the build's class as it stands (classify).
func (b *builder) class() queue.Class {
	return classify(b.res.Status, b.res.FailStage, b.oom, b.timedOut, b.diskFull)
}

// seconds is d in whole seconds, as the summary gives times.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%d", int64(d.Round(time.Second)/time.Second))
}

// cpuSeconds is the summary's CPU-Time of ms milliseconds: seconds with
// one decimal.
func cpuSeconds(ms int64) string {
	return fmt.Sprintf("%.1f", float64(ms)/1000)
}

// layerSummary is the summary's Install-Layer: the layer the build
// continued from ("layer-N-KEY"), the one it made ("layer-N-KEY (new)", or
// "layer-N-KEY (new, grown from layer-N-KEY2)"), or "none".
func (b *builder) layerSummary() string {
	switch {
	case b.res.Layer == "":
		return "none"
	case b.res.LayerNew && b.res.LayerFrom != "":
		return b.res.Layer + " (new, grown from " + b.res.LayerFrom + ")"
	case b.res.LayerNew:
		return b.res.Layer + " (new)"
	}
	return b.res.Layer
}

// copyFile copies src to dst with atomicfile.Create (temporary file, fsync,
// rename); uid >= 0 makes that user own the copy.
func copyFile(src, dst string, uid int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if uid >= 0 {
		if err := out.Chown(uid, uid); err != nil {
			return err
		}
	}
	return out.Commit()
}

func chownTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, machine.BuildUID, machine.BuildUID)
	})
}

func treeKiB(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return (n + 1023) / 1024
}

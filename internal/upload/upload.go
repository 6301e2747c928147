// Package upload owns buildd-uploader: for each upload queue under home,
// every approved .changes that has no .upload marker beside it is uploaded
// with the configured tool (dput or dupload), marked with its .upload, and
// reported to wanna-build as Uploaded in every distribution it names, in
// the queue of the architecture it was built for (see queues). A
// failed upload is mailed to the admin ("dupload errors", with the tool's
// output) and left without its marker, so the next run tries again. The
// lock buildd-uploader.lock in home keeps to one run at a time.
//
// From just before the tool runs until every distribution's queue was
// told, the upload also has its .untold marker (home.UploadQueue.SetUntold)
// naming the queues (DIST/ARCH) still to tell, so that a run killed in between,
// or a queue that cannot be reached, does not leave the package Built for
// ever: each run first tells the queues an earlier run left untold (or,
// for an upload the tool never finished, drops the marker and uploads it
// again). A queue's refusal (the package is no longer this builder's
// Built one) is final: mailed, and not tried again. Any other failure is
// mailed once ("wanna-build --uploaded errors") and tried by every run
// until it succeeds or the archive takes the upload (buildd-mail then
// removes it with its markers).
package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"buildd/internal/config"
	"buildd/internal/control"
	"buildd/internal/daemonlog"
	"buildd/internal/debversion"
	"buildd/internal/flock"
	"buildd/internal/home"
	"buildd/internal/mailer"
	wb "buildd/internal/queue"
	"buildd/internal/queue/port"
)

// ErrRunning is returned by Run when another buildd-uploader holds the lock.
var ErrRunning = errors.New("another buildd-uploader is still running")

// Uploader uploads the queues of one home.
type Uploader struct {
	Cfg  *config.Config
	Home home.Home
	Mail *mailer.Mailer
	Log  *daemonlog.Log
}

// New returns the uploader for cfg, logging to log.
func New(cfg *config.Config, log *daemonlog.Log) *Uploader {
	return &Uploader{Cfg: cfg, Home: home.New(cfg.Home), Mail: mailer.New(cfg), Log: log}
}

// Queue is one upload queue: a directory and the tool's target ("" for the
// tool's default host).
type Queue struct {
	Dir    string // as configured: relative to home, or absolute
	Target string
}

// Queues are the [[upload_queue]] tables, then the queue directories of
// the dists that none of them names (uploaded to the tool's default host).
func Queues(cfg *config.Config) []Queue {
	var out []Queue
	seen := map[string]bool{}
	for _, q := range cfg.UploadQueues {
		if !seen[q.DuploadLocalQueueDir] {
			seen[q.DuploadLocalQueueDir] = true
			out = append(out, Queue{q.DuploadLocalQueueDir, q.DuploadArchiveName})
		}
	}
	for _, d := range cfg.Dists {
		if !seen[d.DuploadLocalQueueDir] {
			seen[d.DuploadLocalQueueDir] = true
			out = append(out, Queue{Dir: d.DuploadLocalQueueDir})
		}
	}
	return out
}

// Result is what happened to one .changes: uploaded by this run, or, when
// Earlier, uploaded by an earlier run that left queues untold, which this
// run told.
type Result struct {
	Queue   string
	Changes string // base name
	PkgV    string // source_version, as given to --uploaded
	// Earlier: the upload was made by an earlier run; this one only told
	// the queues that run left untold.
	Earlier bool
	// Err: the upload failed (nil: uploaded and marked); of an Earlier
	// one, its .untold marker or its .changes could not be read.
	Err error
	// Output is the tool's output.
	Output string
	// Dists are the queues, DIST/ARCH, of the distributions the
	// .changes names for the architecture it was built for; of an
	// Earlier upload, those its .untold marker named.
	Dists []string
	// Told lists the queues (DIST/ARCH) this run set to Uploaded.
	Told []string
	// NotMarked lists the queues whose --uploaded failed, with why.
	NotMarked []NotTold
}

// NotTold is a queue (DIST/ARCH) that was not told of an upload, and why.
// A refusal (queue.IsRefused) is final; any other failure leaves the
// queue in the upload's .untold marker, for the next runs to tell.
type NotTold struct {
	Dist string
	Err  error
}

// Run uploads every queue once.
func (u *Uploader) Run(ctx context.Context) ([]Result, error) {
	lock, err := home.TryLock(u.Home.Path("buildd-uploader"))
	if errors.Is(err, flock.ErrLocked) {
		u.Log.Printf("exiting; %v", ErrRunning)
		return nil, ErrRunning
	}
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if _, err := u.Mail.Flush(); err != nil {
		u.Log.Printf("mail spool: %v", err)
	}
	var all []Result
	uploaded := map[string][]string{}
	for _, q := range Queues(u.Cfg) {
		rs, err := u.queue(ctx, q)
		if err != nil {
			u.Log.Printf("%s: %v", q.Dir, err)
		}
		for _, r := range rs {
			for _, d := range u.marked(r) {
				uploaded[d] = append(uploaded[d], r.PkgV)
			}
		}
		all = append(all, rs...)
	}
	dists := make([]string, 0, len(uploaded))
	for d := range uploaded {
		dists = append(dists, d)
	}
	sort.Strings(dists)
	for _, d := range dists {
		u.Log.Printf("Set to Uploaded(%s): %s", d, strings.Join(uploaded[d], " "))
	}
	return all, ctx.Err()
}

// marked lists the arch/dist names whose queue a result told.
func (u *Uploader) marked(r Result) []string {
	var out []string
	for _, q := range r.Told {
		if dist, arch, err := home.SplitDistArch(q); err == nil {
			out = append(out, arch+"/"+dist)
		}
	}
	return out
}

// queue processes one queue directory: first the uploads whose queues an
// earlier run left untold (retell), then the pending ones. Its results are
// those of both, also when err (the queue's directory could not be read
// or locked) stopped it.
func (u *Uploader) queue(ctx context.Context, q Queue) ([]Result, error) {
	uq := u.Home.UploadQueue(q.Dir)
	all, err := u.retell(ctx, q, uq)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	todo, err := uq.Pending()
	switch {
	case err != nil:
	case len(todo) == 0:
		u.Log.Printf("Nothing to do for %s", q.Dir)
	default:
		u.Log.Printf("%d jobs to upload in %s: %s", len(todo), q.Dir, strings.Join(todo, " "))
		var results []Result
		for _, name := range todo {
			if ctx.Err() != nil {
				break
			}
			results = append(results, u.one(ctx, q, uq, name))
		}
		u.report(results)
		all = append(all, results...)
	}
	u.mailNotTold(all)
	return all, err
}

// report mails the failed uploads among one queue's results of this run
// to the admin ("dupload errors") and counts the successful ones in
// stats/uploads.
func (u *Uploader) report(results []Result) {
	var failed, output []string
	var errs strings.Builder
	ok := 0
	for _, r := range results {
		if r.Err == nil {
			ok++
			continue
		}
		failed = append(failed, r.Changes)
		fmt.Fprintf(&errs, "%v\n", r.Err)
		fmt.Fprintf(&errs, "Removed %s to reupload later.\n", home.UploadMarker(r.Changes))
		if r.Output != "" {
			output = append(output, fmt.Sprintf("--- %s:\n%s", r.Changes, r.Output))
		}
	}
	if len(failed) > 0 {
		u.Log.Printf("The following jobs were not processed (successfully):\n%s", strings.Join(failed, " "))
		tool := u.Cfg.UploadTool
		body := errs.String() + "\nComplete output from " + tool + ":\n\n" + strings.Join(output, "\n")
		u.mail("dupload errors", body)
	} else {
		u.Log.Printf("%s successful.", u.Cfg.UploadTool)
	}
	if ok > 0 {
		if err := u.Home.Stats().Add("uploads", int64(ok)); err != nil {
			u.Log.Printf("%v", err)
		}
	}
}

// mailNotTold mails the admin, once for one queue's results, the dists
// whose queue was not told of an upload ("wanna-build --uploaded
// errors"): every refusal, and a failure that left the dist in the
// upload's .untold marker only when it was first left, not on the
// earlier upload's retries.
func (u *Uploader) mailNotTold(results []Result) {
	var lines []string
	for _, r := range results {
		for _, n := range r.NotMarked {
			refused := wb.IsRefused(n.Err)
			if r.Earlier && !refused {
				continue
			}
			line := fmt.Sprintf("%s (%s): %s: %v", r.PkgV, r.Changes, n.Dist, n.Err)
			if !refused {
				line += fmt.Sprintf(" (kept in %s: the next runs tell it again)", home.UntoldMarker(r.Changes))
			}
			lines = append(lines, line)
		}
	}
	if len(lines) > 0 {
		u.mail("buildd-uploader: wanna-build --uploaded errors",
			"The uploads succeeded, but wanna-build was not told for:\n\n  "+strings.Join(lines, "\n  ")+"\n")
	}
}

// retell tells the queues an earlier run left untold, for each upload of
// uq with an .untold marker (run killed between the upload and telling,
// queue unreachable): one that is marked uploaded has each dist its marker
// still names told (see tell); one that is not (the tool never finished)
// has its marker removed, as it is still pending and this run uploads it.
// err is a failure to list the markers (wrapping os.ErrNotExist when the
// queue's directory does not exist).
func (u *Uploader) retell(ctx context.Context, q Queue, uq *home.UploadQueue) ([]Result, error) {
	names, err := uq.Untold()
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		if !uq.Uploaded(name) {
			if err := uq.RemoveUntold(name); err != nil {
				u.Log.Printf("%s: %v", q.Dir, err)
			} else {
				u.Log.Printf("Removed %s: %s was not uploaded; this run uploads it.", home.UntoldMarker(name), name)
			}
			continue
		}
		r := Result{Queue: q.Dir, Changes: name, Earlier: true}
		dists, err := uq.ReadUntold(name)
		var c *control.Changes
		if err == nil {
			c, err = readChanges(uq, name)
		}
		var arches []string
		if err == nil {
			arches, err = uploadArches(name, c)
		}
		if err != nil {
			r.Err = fmt.Errorf("cannot tell the queue that %s was uploaded: %w", name, err)
			u.Log.Printf("%v", r.Err)
			results = append(results, r)
			continue
		}
		r.PkgV, r.Dists = pkgVersion(c), queues(dists, arches)
		u.tell(ctx, uq, &r)
		results = append(results, r)
	}
	return results, nil
}

// tell tells each queue of r.Dists (DIST/ARCH) that r.PkgV was uploaded,
// filling r.Told and r.NotMarked, then leaves in the upload's .untold
// marker the queues that failed other than by refusing, removing it when
// there are none.
func (u *Uploader) tell(ctx context.Context, uq *home.UploadQueue, r *Result) {
	var left []string
	for _, d := range r.Dists {
		if r.Earlier {
			u.Log.Printf("Telling the queue of %s that %s was uploaded (left untold by an earlier run)", d, r.PkgV)
		}
		dist, arch, _ := home.SplitDistArch(d)
		err := u.uploaded(ctx, dist, arch, r.PkgV)
		switch {
		case err == nil:
			r.Told = append(r.Told, d)
			continue
		case wb.IsRefused(err):
			u.Log.Printf("wanna-build --uploaded --dist=%s --arch=%s %s: %v (refused: not told again)", dist, arch, r.PkgV, err)
		default:
			u.Log.Printf("wanna-build --uploaded --dist=%s --arch=%s %s: %v (kept in %s for the next run)", dist, arch, r.PkgV, err, home.UntoldMarker(r.Changes))
			left = append(left, d)
		}
		r.NotMarked = append(r.NotMarked, NotTold{Dist: d, Err: err})
	}
	if err := uq.SetUntold(r.Changes, left); err != nil {
		u.Log.Printf("%s: %v", r.Changes, err)
	}
}

// one uploads one .changes of the queue uq: its .untold marker, naming
// the queues of the .changes's dists (see queues), is written before the
// tool runs and removed with
// the .upload marker if the upload fails; once uploaded and marked, the
// dists are told (see tell).
func (u *Uploader) one(ctx context.Context, q Queue, uq *home.UploadQueue, name string) (r Result) {
	r = Result{Queue: q.Dir, Changes: name}
	defer func() {
		if r.Err != nil {
			u.Log.Printf("%v", r.Err)
			if err := uq.Unmark(name); err == nil {
				u.Log.Printf("Removed %s due to upload errors.", home.UploadMarker(name))
			}
			if err := uq.RemoveUntold(name); err != nil {
				u.Log.Printf("%s: %v", name, err)
			}
		}
	}()
	c, err := readChanges(uq, name)
	if err != nil {
		r.Err = fmt.Errorf("upload error on file %s: %w", name, err)
		return r
	}
	r.PkgV = pkgVersion(c)
	arches, err := uploadArches(name, c)
	if err != nil {
		r.Err = fmt.Errorf("upload error on file %s: %w", name, err)
		return r
	}
	r.Dists = queues(strings.Fields(c.Distribution), arches)
	if err := checkFiles(uq, c); err != nil {
		r.Err = fmt.Errorf("upload error on file %s: %w", name, err)
		return r
	}
	if err := uq.SetUntold(name, r.Dists); err != nil {
		r.Err = fmt.Errorf("upload error on file %s: %w", name, err)
		return r
	}
	out, err := u.runTool(ctx, q, uq.Dir(), name)
	r.Output = out
	if err != nil {
		r.Err = fmt.Errorf("upload error on file %s (%s): %w", name, q.describe(), err)
		return r
	}
	if err := uq.AdoptToolLog(name, q.Target); err != nil {
		u.Log.Printf("%v", err)
	}
	marked := uq.Uploaded(name)
	if !marked && u.Cfg.UploadTool == "dupload" {
		r.Err = fmt.Errorf("upload error on file %s (%s): dupload wrote no %s: not uploaded", name, q.describe(), home.UploadMarker(name))
		return r
	}
	if !marked {
		text := fmt.Sprintf("Successfully uploaded %s to %s with %s at %s.\n", name, q.describe(), u.Cfg.UploadTool, time.Now().UTC().Format(time.RFC3339))
		if err := uq.Mark(name, text); err != nil {
			r.Err = fmt.Errorf("upload of %s done, but: %w", name, err)
			return r
		}
	}
	u.Log.Printf("Uploaded %s to %s", name, q.describe())
	u.tell(ctx, uq, &r)
	return r
}

// readChanges reads and parses the queue's .changes name.
func readChanges(uq *home.UploadQueue, name string) (*control.Changes, error) {
	path := uq.Path(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return control.ParseChanges(path, data)
}

// pkgVersion is the upload's source_version, as the queue names it.
func pkgVersion(c *control.Changes) string {
	return debversion.PkgVersion{Name: c.Source, Version: c.Version}.String()
}

// uploadArches are the architectures the upload name, whose .changes is
// c, was built for: those its Architecture field names but all and
// source; for an upload of Architecture: all packages only, the ARCH of
// its name, NAME_VERSION_ARCH.changes (buildd-mail names it for the
// architecture of the build).
func uploadArches(name string, c *control.Changes) ([]string, error) {
	var arches []string
	for _, a := range c.Architecture {
		if a != "all" && a != "source" && !slices.Contains(arches, a) {
			arches = append(arches, a)
		}
	}
	if len(arches) > 0 {
		return arches, nil
	}
	parts := strings.Split(strings.TrimSuffix(name, ".changes"), "_")
	arch := parts[len(parts)-1]
	if len(parts) < 3 || arch == "multi" || debversion.CheckName(arch) != nil {
		return nil, fmt.Errorf("%s: no architecture: its Architecture field names only %q, and its name none", name, strings.Join(c.Architecture, " "))
	}
	return []string{arch}, nil
}

// queues are the queues, DIST/ARCH, of dists for arches. A dist named
// alone (a line of an .untold marker written before markers named the
// architecture) is in the queue of each of arches; one named with its
// architecture stays as it is.
func queues(dists, arches []string) []string {
	var out []string
	for _, d := range dists {
		if _, arch, err := home.SplitDistArch(d); err != nil || arch != "" {
			out = append(out, d)
			continue
		}
		for _, a := range arches {
			out = append(out, home.JoinDistArch(d, a))
		}
	}
	return out
}

func (q Queue) describe() string {
	if q.Target == "" {
		return "the default host"
	}
	return q.Target
}

// uploaded tells the queue of dist for arch that pkgv was uploaded.
func (u *Uploader) uploaded(ctx context.Context, dist, arch, pkgv string) error {
	d, ok := u.Cfg.DistArch(dist, arch)
	if !ok {
		return fmt.Errorf("distribution %s for %s is not in %s", dist, arch, u.Cfg.File)
	}
	q := port.Open(u.Cfg, d)
	defer q.Close()
	return q.Uploaded(ctx, pkgv)
}

// checkFiles checks that every file of the .changes is in the queue with
// its size, so that a half-filled queue entry is not half uploaded.
func checkFiles(uq *home.UploadQueue, c *control.Changes) error {
	var bad []string
	for _, f := range c.Files {
		st, err := os.Stat(uq.Path(f.Name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			bad = append(bad, f.Name+" is missing")
		case err != nil:
			bad = append(bad, err.Error())
		case st.Size() != f.Size:
			bad = append(bad, fmt.Sprintf("%s has %d bytes, the .changes says %d", f.Name, st.Size(), f.Size))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// duploadFailure are the lines by which dupload -k reports a job it
// skipped while still exiting 0.
var duploadFailure = regexp.MustCompile(`(?i)(MD5sum mismatch for \S+, skipping \S+|dupload fatal error[^\n]*|Timeout at \S+ line \d+|skipped: \S+)`)

// runTool runs the upload tool on one .changes in dir, killing its whole
// process group after upload_timeout seconds.
func (u *Uploader) runTool(ctx context.Context, q Queue, dir, name string) (string, error) {
	var argv []string
	switch u.Cfg.UploadTool {
	case "dput":
		argv = []string{"dput", "--unchecked"}
		if u.Cfg.UploadToolConfig != "" {
			argv = append(argv, "-c", u.Cfg.UploadToolConfig)
		}
		if q.Target != "" {
			argv = append(argv, q.Target)
		}
	case "dupload":
		argv = []string{"dupload", "-k", "--nomail"}
		if u.Cfg.UploadToolConfig != "" {
			argv = append(argv, "--configfile", u.Cfg.UploadToolConfig)
		}
		if q.Target != "" {
			argv = append(argv, "--to", q.Target)
		}
	default:
		return "", fmt.Errorf("%s: upload_tool %q: must be \"dput\" or \"dupload\"", u.Cfg.File, u.Cfg.UploadTool)
	}
	argv = append(argv, name)
	timeout := time.Duration(u.Cfg.UploadTimeout) * time.Second
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	text := string(out)
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return text, fmt.Errorf("upload timeout: %s killed after %v", argv[0], timeout)
	case err != nil:
		return text, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	case u.Cfg.UploadTool == "dupload" && duploadFailure.MatchString(text):
		return text, fmt.Errorf("dupload: %s", duploadFailure.FindString(text))
	}
	return text, nil
}

func (u *Uploader) mail(subject, body string) {
	if err := u.Mail.Send(&mailer.Message{To: []string{u.Cfg.AdminMail}, Subject: subject, Body: body,
		Header: map[string]string{"Auto-Submitted": "auto-generated"}}); err != nil {
		u.Log.Printf("mail %q: %v", subject, err)
	}
}

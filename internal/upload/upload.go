// Package upload owns buildd-uploader: for each upload queue under home,
// every approved .changes that has no .upload marker beside it is uploaded
// with the configured tool (dput or dupload), marked with its .upload, and
// reported to wanna-build as Uploaded in every distribution it names. A
// failed upload is mailed to the admin ("dupload errors", with the tool's
// output) and left without its marker, so the next run tries again. The
// lock buildd-uploader.lock in home keeps to one run at a time.
package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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

// Result is what happened to one .changes.
type Result struct {
	Queue   string
	Changes string // base name
	PkgV    string // source_version, as given to --uploaded
	Err     error  // the upload failed (nil: uploaded and marked)
	// Output is the tool's output.
	Output string
	// Dists are the distributions the .changes names.
	Dists []string
	// NotMarked lists the dists whose --uploaded failed, with why.
	NotMarked []string
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
			continue
		}
		for _, r := range rs {
			if r.Err == nil {
				for _, d := range u.marked(r) {
					uploaded[d] = append(uploaded[d], r.PkgV)
				}
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

// marked lists the arch/dist names a successful result was marked in.
func (u *Uploader) marked(r Result) []string {
	var out []string
	for _, d := range r.Dists {
		if !contains(r.NotMarked, d) {
			if dc, ok := u.Cfg.Dist(d); ok {
				out = append(out, dc.BuiltArchitecture+"/"+d)
			}
		}
	}
	return out
}

// queue uploads one queue directory.
func (u *Uploader) queue(ctx context.Context, q Queue) ([]Result, error) {
	uq := u.Home.UploadQueue(q.Dir)
	todo, err := uq.Pending()
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(todo) == 0 {
		u.Log.Printf("Nothing to do for %s", q.Dir)
		return nil, nil
	}
	u.Log.Printf("%d jobs to upload in %s: %s", len(todo), q.Dir, strings.Join(todo, " "))
	var results []Result
	for _, name := range todo {
		if ctx.Err() != nil {
			break
		}
		results = append(results, u.one(ctx, q, uq, name))
	}
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
	var marks []string
	for _, r := range results {
		for _, m := range r.NotMarked {
			marks = append(marks, fmt.Sprintf("%s (%s): %s", r.PkgV, r.Changes, m))
		}
	}
	if len(marks) > 0 {
		u.mail("buildd-uploader: wanna-build --uploaded errors",
			"The uploads succeeded, but wanna-build was not told for:\n\n  "+strings.Join(marks, "\n  ")+"\n")
	}
	if ok > 0 {
		if err := u.Home.Stats().Add("uploads", int64(ok)); err != nil {
			u.Log.Printf("%v", err)
		}
	}
	return results, nil
}

// one uploads one .changes of the queue uq.
func (u *Uploader) one(ctx context.Context, q Queue, uq *home.UploadQueue, name string) (r Result) {
	r = Result{Queue: q.Dir, Changes: name}
	path := uq.Path(name)
	defer func() {
		if r.Err != nil {
			u.Log.Printf("%v", r.Err)
			if err := uq.Unmark(name); err == nil {
				u.Log.Printf("Removed %s due to upload errors.", home.UploadMarker(name))
			}
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		r.Err = fmt.Errorf("upload error on file %s: %w", name, err)
		return r
	}
	c, err := control.ParseChanges(path, data)
	if err != nil {
		r.Err = fmt.Errorf("upload error on file %s: %w", name, err)
		return r
	}
	r.PkgV = debversion.PkgVersion{Name: c.Source, Version: c.Version}.String()
	r.Dists = strings.Fields(c.Distribution)
	if err := checkFiles(uq, c); err != nil {
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
	for _, d := range r.Dists {
		if err := u.uploaded(ctx, d, r.PkgV); err != nil {
			u.Log.Printf("wanna-build --uploaded --dist=%s %s: %v", d, r.PkgV, err)
			r.NotMarked = append(r.NotMarked, fmt.Sprintf("%s: %v", d, err))
		}
	}
	return r
}

func (q Queue) describe() string {
	if q.Target == "" {
		return "the default host"
	}
	return q.Target
}

// uploaded tells the dist's queue that pkgv was uploaded.
func (u *Uploader) uploaded(ctx context.Context, dist, pkgv string) error {
	d, ok := u.Cfg.Dist(dist)
	if !ok {
		return fmt.Errorf("distribution %s is not in %s", dist, u.Cfg.File)
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

func contains(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix+":") {
			return true
		}
	}
	return false
}

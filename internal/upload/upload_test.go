package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/control"
	"buildd/internal/daemonlog"
	"buildd/internal/home"
	"buildd/internal/hosttest"
	wb "buildd/internal/queue"
	"buildd/internal/queue/port"
)

// need skips loudly when a Debian tool the test drives is missing.
func need(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("SKIPPING: %s is not installed (make deps installs it): %v", p, err)
		}
	}
}

// run runs a command with a time limit, failing the test on error.
func run(t *testing.T, dir string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// running is false for a dead or zombie process.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && !strings.HasPrefix(string(b[i+1:]), " Z")
}

// buildPackage builds the binary package hello at version for arch with
// the real dpkg-buildpackage from testdata/hello (its rules compile
// nothing: any arch builds here) and returns the directory holding
// hello_VERSION_ARCH.{changes,deb,buildinfo}.
func buildPackage(t *testing.T, version, arch string) string {
	t.Helper()
	out := t.TempDir()
	src := filepath.Join(out, "hello")
	run(t, ".", "cp", "-r", "testdata/hello", src)
	cl := filepath.Join(src, "debian", "changelog")
	b, err := os.ReadFile(cl)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(cl, []byte(strings.Replace(string(b), "(1.0-1)", "("+version+")", 1)), 0o644)
	run(t, src, "dpkg-buildpackage", "-b", "-us", "-uc", "-d", "--host-arch="+arch)
	return out
}

// archive makes an unsigned reprepro archive with an incoming directory,
// and a dput config naming it as the host "local".
func archive(t *testing.T) (dir, dputCf string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "archive")
	for _, d := range []string{"conf", "incoming", "tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	for _, f := range []string{"distributions", "incoming"} {
		b, err := os.ReadFile("testdata/reprepro-" + f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "conf", f), b, 0o644)
	}
	dputCf = writeDputCf(t, filepath.Join(dir, "incoming"), "")
	return dir, dputCf
}

func writeDputCf(t *testing.T, incoming, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dput.cf")
	text := "[local]\nmethod = local\nincoming = " + incoming + "\nallow_unsigned_uploads = 1\nrun_lintian = 0\n" + extra
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// newUploader makes a host whose upload queue "upload" goes to the host
// "local" of the dput (or, with upload_tool in extra, dupload) config cf.
func newUploader(t *testing.T, cf, extra string) (*hosttest.Host, *Uploader) {
	t.Helper()
	if !strings.Contains(extra, "upload_tool =") {
		extra += "\nupload_tool = \"dput\""
	}
	h := hosttest.New(t, "upload_tool_config = \""+cf+"\"\n"+extra+
		"\n[[upload_queue]]\ndupload_local_queue_dir = \"upload\"\ndupload_archive_name = \"local\"\n")
	log, err := daemonlog.Open(h.Cfg.DaemonLogFile, "buildd-uploader")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return h, New(h.Cfg, log)
}

// queue copies a built package's files (built for arch) into the upload
// queue, the .changes last, as buildd-mail does.
func queue(t *testing.T, h *hosttest.Host, built, version, arch string) string {
	t.Helper()
	q := h.Home.UploadDir("upload")
	os.MkdirAll(q, 0o755)
	base := "hello_" + version + "_" + arch
	for _, ext := range []string{".deb", ".buildinfo", ".changes"} {
		run(t, ".", "cp", filepath.Join(built, base+ext), q)
	}
	return filepath.Join(q, base+".changes")
}

// takeAndBuild puts the package in Built in the local queue database of
// bookworm/amd64.
func takeAndBuild(t *testing.T, h *hosttest.Host, pkgv string) wb.Port {
	t.Helper()
	d, _ := h.Cfg.DistArch("bookworm", "amd64")
	return takeAndBuildAs(t, h, pkgv, d.WannaBuildDBUser)
}

// takeAndBuildAs puts the package in Built by the builder user in the
// local queue database of bookworm/amd64.
func takeAndBuildAs(t *testing.T, h *hosttest.Host, pkgv, user string) wb.Port {
	t.Helper()
	return takeAndBuildIn(t, h, "amd64", pkgv, user)
}

// takeAndBuildIn puts the package in Built by the builder user in the
// local queue database of bookworm for arch.
func takeAndBuildIn(t *testing.T, h *hosttest.Host, arch, pkgv, user string) wb.Port {
	t.Helper()
	d, _ := h.Cfg.DistArch("bookworm", arch)
	as := *d
	as.WannaBuildDBUser = user
	c := port.Open(h.Cfg, &as)
	ctx := context.Background()
	if err := c.Take(ctx, pkgv); err != nil {
		t.Fatalf("take %s: %v", pkgv, err)
	}
	if err := c.Built(ctx, pkgv); err != nil {
		t.Fatalf("built %s: %v", pkgv, err)
	}
	return c
}

func state(t *testing.T, c wb.Port, name string) wb.State {
	t.Helper()
	info, err := c.Info(context.Background(), name)
	if err != nil {
		t.Fatalf("info %s: %v", name, err)
	}
	return info.State
}

// goBuild builds one of the suite's programs for a test to run for real.
func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	run(t, ".", "go", "build", "-o", bin, pkg)
	return bin
}

// merge runs the real `wanna-build --merge-v3` of the archive's indexes.
func merge(t *testing.T, wb string, h *hosttest.Host, packages string) {
	t.Helper()
	sources, err := filepath.Abs("testdata/Sources")
	if err != nil {
		t.Fatal(err)
	}
	run(t, ".", wb, "--db", h.Cfg.WannaBuildDB, "-A", "amd64", "--dist=bookworm", "--merge-v3", packages, ".", sources)
}

// TestUploadIntoReprepro follows a build from the queue to the archive and
// back: the queue has it Built, buildd-uploader uploads it with dput into
// the incoming directory of a reprepro archive and marks it Uploaded,
// reprepro takes it in, merging the archive's Packages moves it to
// Installed, and the archive's ACCEPTED mail through buildd-mail empties
// the upload queue.
func TestUploadIntoReprepro(t *testing.T) {
	need(t, "dput", "reprepro", "dpkg-buildpackage", "go")
	built := buildPackage(t, "1.0-1", "amd64")
	arch, dputCf := archive(t)
	h, u := newUploader(t, dputCf, "")
	wb := goBuild(t, "buildd/wannabuild/wanna-build")
	empty := filepath.Join(t.TempDir(), "Packages")
	os.WriteFile(empty, nil, 0o644)
	merge(t, wb, h, empty)
	d, _ := h.Cfg.DistArch("bookworm", "amd64")
	if s := state(t, port.Open(h.Cfg, d), "hello"); s != "Needs-Build" {
		t.Fatalf("after the first merge: %s", s)
	}
	c := takeAndBuild(t, h, "hello_1.0-1")
	changes := queue(t, h, built, "1.0-1", "amd64")

	res, err := u.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != nil || len(res[0].NotMarked) != 0 || res[0].PkgV != "hello_1.0-1" {
		t.Fatalf("results %+v", res)
	}
	mark := strings.TrimSuffix(changes, ".changes") + ".upload"
	if b, err := os.ReadFile(mark); err != nil || !strings.Contains(string(b), "Successfully uploaded") {
		t.Fatalf("marker %s: %q %v", mark, b, err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(changes), "*.local.upload")); len(m) != 0 {
		t.Errorf("dput's own log left in the queue: %q", m)
	}
	if s := state(t, c, "hello"); s != "Uploaded" {
		t.Errorf("queue state %s, want Uploaded", s)
	}
	if b, _ := os.ReadFile(h.Home.Path("stats", "uploads")); string(b) != "1\n" {
		t.Errorf("stats/uploads = %q", b)
	}
	for _, f := range []string{"hello_1.0-1_amd64.changes", "hello_1.0-1_amd64.deb"} {
		if _, err := os.Stat(filepath.Join(arch, "incoming", f)); err != nil {
			t.Errorf("incoming lacks %s", f)
		}
	}
	// The archive takes it in.
	run(t, arch, "reprepro", "-b", ".", "processincoming", "default")
	pk, err := os.ReadFile(filepath.Join(arch, "dists", "bookworm", "main", "binary-amd64", "Packages"))
	if err != nil || !strings.Contains(string(pk), "Package: hello\nVersion: 1.0-1\n") {
		t.Fatalf("archive Packages: %v\n%s", err, pk)
	}
	// A second run has nothing to do.
	if res, err := u.Run(context.Background()); err != nil || len(res) != 0 {
		t.Errorf("second run: %+v %v", res, err)
	}
	if m := h.Mails(t); len(m) != 0 {
		t.Errorf("mails on success: %+v", m)
	}

	merge(t, wb, h, filepath.Join(arch, "dists", "bookworm", "main", "binary-amd64", "Packages"))
	if s := state(t, c, "hello"); s != "Installed" {
		t.Errorf("after merging the archive: %s, want Installed", s)
	}

	bm := goBuild(t, "buildd/buildd-mail")
	mail := "From: archive@example.org\nTo: buildd@example.org\nSubject: hello_1.0-1_amd64.changes ACCEPTED\n" +
		"Message-ID: <accepted-1@example.org>\nDate: " + time.Now().Format(time.RFC1123Z) + "\n\nAccepted:\nhello_1.0-1_amd64.deb\n"
	cmd := exec.Command(bm, "--config", h.Cfg.File)
	cmd.Stdin = strings.NewReader(mail)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buildd-mail: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(filepath.Dir(changes)); len(left) != 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("upload queue not emptied by the ACCEPTED mail: %q", names)
	}
}

func TestUploadFailures(t *testing.T) {
	need(t, "dput", "dpkg-buildpackage")
	built := buildPackage(t, "1.0-1", "amd64")
	for _, tc := range []struct {
		name    string
		dput    func(t *testing.T, incoming string) string
		after   func(t *testing.T, incoming string)
		extra   string
		break_  func(t *testing.T, changes string)
		wantErr string
		inMail  []string
	}{
		{
			name: "tool fails",
			dput: func(t *testing.T, incoming string) string {
				return writeDputCf(t, filepath.Join(incoming, "does-not-exist"), "")
			},
			wantErr: "exit status",
			inMail:  []string{"Removed hello_1.0-1_amd64.upload to reupload later.", "Complete output from dput:", "does-not-exist"},
		},
		{
			name: "tool hangs",
			dput: func(t *testing.T, incoming string) string {
				return writeDputCf(t, incoming, "pre_upload_command = sh -c 'echo $$ > "+incoming+".pid; exec sleep 600'\n")
			},
			after: func(t *testing.T, incoming string) {
				pid, err := home.ReadPID(incoming + ".pid")
				if err != nil || pid == 0 {
					t.Fatalf("hanging command did not start: %v", err)
				}
				for i := 0; i < 100 && running(pid); i++ {
					time.Sleep(50 * time.Millisecond) // SIGKILL is delivered, then init reaps it
				}
				if running(pid) {
					t.Errorf("hanging command %d still running after the timeout", pid)
				}
			},
			extra:   "upload_timeout = 2",
			wantErr: "upload timeout: dput killed after 2s",
			inMail:  []string{"upload timeout"},
		},
		{
			name: "changes names missing files",
			dput: func(t *testing.T, incoming string) string { return writeDputCf(t, incoming, "") },
			break_: func(t *testing.T, changes string) {
				os.Remove(strings.TrimSuffix(changes, ".changes") + ".deb")
			},
			wantErr: "hello_1.0-1_amd64.deb is missing",
			inMail:  []string{"hello_1.0-1_amd64.deb is missing"},
		},
		{
			name: "changes unparsable",
			dput: func(t *testing.T, incoming string) string { return writeDputCf(t, incoming, "") },
			break_: func(t *testing.T, changes string) {
				os.WriteFile(changes, []byte("Source: hello\nFiles:\n ../../etc/passwd\n"), 0o644)
			},
			wantErr: "hello_1.0-1_amd64.changes:",
			inMail:  []string{"hello_1.0-1_amd64.changes:"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			incoming := t.TempDir()
			h, u := newUploader(t, tc.dput(t, incoming), tc.extra)
			c := takeAndBuild(t, h, "hello_1.0-1")
			changes := queue(t, h, built, "1.0-1", "amd64")
			if tc.break_ != nil {
				tc.break_(t, changes)
			}
			start := time.Now()
			res, err := u.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("run took %v", time.Since(start))
			}
			if len(res) != 1 || res[0].Err == nil || !strings.Contains(res[0].Err.Error(), tc.wantErr) {
				t.Fatalf("results %+v, want error %q", res, tc.wantErr)
			}
			if _, err := os.Stat(strings.TrimSuffix(changes, ".changes") + ".upload"); err == nil {
				t.Error(".upload marker left after a failure")
			}
			if s := state(t, c, "hello"); s != "Built" {
				t.Errorf("queue state %s, want Built", s)
			}
			m := h.MailsAbout(t, "dupload errors")
			if len(m) != 1 {
				t.Fatalf("mails %+v", h.Mails(t))
			}
			for _, s := range tc.inMail {
				if !strings.Contains(m[0].Body, s) {
					t.Errorf("mail lacks %q:\n%s", s, m[0].Body)
				}
			}
			if ents, _ := os.ReadDir(incoming); len(ents) != 0 && tc.name != "tool fails" {
				t.Errorf("incoming got files: %v", ents)
			}
			if tc.after != nil {
				tc.after(t, incoming)
			}
			// Retried at the next run.
			res, _ = u.Run(context.Background())
			if len(res) != 1 {
				t.Errorf("not retried: %+v", res)
			}
		})
	}
}

func TestUploadRetryAfterFailure(t *testing.T) {
	need(t, "dput", "dpkg-buildpackage")
	built := buildPackage(t, "1.0-1", "amd64")
	incoming := t.TempDir()
	cf := writeDputCf(t, filepath.Join(incoming, "later"), "")
	h, u := newUploader(t, cf, "")
	c := takeAndBuild(t, h, "hello_1.0-1")
	queue(t, h, built, "1.0-1", "amd64")
	if res, _ := u.Run(context.Background()); len(res) != 1 || res[0].Err == nil {
		t.Fatalf("first run %+v", res)
	}
	os.Mkdir(filepath.Join(incoming, "later"), 0o755)
	res, err := u.Run(context.Background())
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("retry %+v %v", res, err)
	}
	if s := state(t, c, "hello"); s != "Uploaded" {
		t.Errorf("state %s", s)
	}
}

func TestUploaderSingleInstance(t *testing.T) {
	_, u := newUploader(t, "/nonexistent", "")
	l, err := home.TryLock(u.Home.Path("buildd-uploader"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := u.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Fatalf("err %v", err)
	}
}

func TestUploadWithDupload(t *testing.T) {
	need(t, "dupload", "dpkg-buildpackage")
	built := buildPackage(t, "1.0-1", "amd64")
	for _, tc := range []struct {
		name    string
		corrupt bool
		wantErr string
	}{
		{name: "uploaded"},
		{name: "checksum mismatch", corrupt: true, wantErr: "MD5sum mismatch for hello_1.0-1_amd64.deb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			incoming := t.TempDir()
			tmpl, err := os.ReadFile("testdata/dupload.conf")
			if err != nil {
				t.Fatal(err)
			}
			cf := filepath.Join(t.TempDir(), "dupload.conf")
			os.WriteFile(cf, []byte(strings.ReplaceAll(string(tmpl), "@INCOMING@", incoming)), 0o644)
			h, u := newUploader(t, cf, `upload_tool = "dupload"`)
			c := takeAndBuild(t, h, "hello_1.0-1")
			changes := queue(t, h, built, "1.0-1", "amd64")
			if tc.corrupt {
				deb := strings.TrimSuffix(changes, ".changes") + ".deb"
				b, _ := os.ReadFile(deb)
				b[len(b)-1] ^= 1 // same size, other contents
				os.WriteFile(deb, b, 0o644)
			}
			res, err := u.Run(context.Background())
			if err != nil || len(res) != 1 {
				t.Fatalf("%+v %v", res, err)
			}
			_, markErr := os.Stat(strings.TrimSuffix(changes, ".changes") + ".upload")
			if tc.wantErr == "" {
				if res[0].Err != nil || markErr != nil {
					t.Fatalf("result %+v, marker %v\n%s", res[0], markErr, res[0].Output)
				}
				if _, err := os.Stat(filepath.Join(incoming, "hello_1.0-1_amd64.deb")); err != nil {
					t.Error("not in incoming")
				}
				if s := state(t, c, "hello"); s != "Uploaded" {
					t.Errorf("state %s", s)
				}
				return
			}
			if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), tc.wantErr) || markErr == nil {
				t.Fatalf("result %+v, marker %v", res[0], markErr)
			}
			if m := h.MailsAbout(t, "dupload errors"); len(m) != 1 || !strings.Contains(m[0].Body, "Complete output from dupload:") {
				t.Errorf("mails %+v", h.Mails(t))
			}
			if s := state(t, c, "hello"); s != "Built" {
				t.Errorf("state %s", s)
			}
		})
	}
}

// daemonLog is what the uploader logged so far.
func daemonLog(t *testing.T, h *hosttest.Host) string {
	t.Helper()
	b, err := os.ReadFile(h.Cfg.DaemonLogFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUploadTellsQueueLater cuts the uploader off from its queue (its
// bbolt file in a directory that is not there) while it uploads: the
// .untold marker is there while the tool runs, the upload is done and
// marked, the queue left untold in the marker,
// and the admin mailed once; a run still cut off tries again without
// mailing; the first run that reaches the queue tells it, removes the
// marker and logs it as set to Uploaded, without counting a new upload.
func TestUploadTellsQueueLater(t *testing.T) {
	need(t, "dput", "dpkg-buildpackage")
	built := buildPackage(t, "1.0-1", "amd64")
	incoming := t.TempDir()
	seen := filepath.Join(t.TempDir(), "untold-while-uploading")
	h, u := newUploader(t, writeDputCf(t, incoming, "pre_upload_command = sh -c 'cp hello_1.0-1_amd64.untold "+seen+"'\n"), "")
	c := takeAndBuild(t, h, "hello_1.0-1")
	changes := queue(t, h, built, "1.0-1", "amd64")
	untold := strings.TrimSuffix(changes, ".changes") + ".untold"
	reachable := h.Cfg.WannaBuildDB
	h.Cfg.WannaBuildDB = filepath.Join(t.TempDir(), "unmounted", "wanna-build.db")

	for run := 1; run <= 2; run++ {
		res, err := u.Run(context.Background())
		if err != nil || len(res) != 1 || res[0].Err != nil || len(res[0].NotMarked) != 1 || wb.IsRefused(res[0].NotMarked[0].Err) || len(res[0].Told) != 0 {
			t.Fatalf("run %d: %+v %v", run, res, err)
		}
		if res[0].Earlier != (run == 2) {
			t.Errorf("run %d: Earlier %v", run, res[0].Earlier)
		}
		if b, err := os.ReadFile(untold); string(b) != "bookworm/amd64\n" {
			t.Fatalf("run %d: %s: %q %v", run, untold, b, err)
		}
		if !strings.Contains(daemonLog(t, h), "hello_1.0-1: ") {
			t.Errorf("run %d: failure not logged:\n%s", run, daemonLog(t, h))
		}
	}
	if b, err := os.ReadFile(seen); string(b) != "bookworm/amd64\n" {
		t.Errorf("%s while dput ran: %q %v", untold, b, err)
	}
	m := h.MailsAbout(t, "wanna-build --uploaded errors")
	if len(m) != 1 || !strings.Contains(m[0].Body, "hello_1.0-1 (hello_1.0-1_amd64.changes): bookworm/amd64: ") ||
		!strings.Contains(m[0].Body, "kept in hello_1.0-1_amd64.untold") {
		t.Fatalf("mails %+v", h.Mails(t))
	}
	if strings.Count(daemonLog(t, h), "Telling the queue of bookworm/amd64 that hello_1.0-1 was uploaded (left untold by an earlier run)") != 1 {
		t.Errorf("retry not logged:\n%s", daemonLog(t, h))
	}

	h.Cfg.WannaBuildDB = reachable
	res, err := u.Run(context.Background())
	if err != nil || len(res) != 1 || !res[0].Earlier || res[0].Err != nil || len(res[0].NotMarked) != 0 || !slices.Equal(res[0].Told, []string{"bookworm/amd64"}) {
		t.Fatalf("run with the queue back: %+v %v", res, err)
	}
	if s := state(t, c, "hello"); s != "Uploaded" {
		t.Errorf("queue state %s, want Uploaded", s)
	}
	if _, err := os.Lstat(untold); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left: %v", untold, err)
	}
	if !strings.Contains(daemonLog(t, h), "Set to Uploaded(amd64/bookworm): hello_1.0-1\n") {
		t.Errorf("not logged as set to Uploaded:\n%s", daemonLog(t, h))
	}
	if b, _ := os.ReadFile(h.Home.Path("stats", "uploads")); string(b) != "1\n" {
		t.Errorf("stats/uploads = %q", b)
	}
	if m := h.Mails(t); len(m) != 1 {
		t.Errorf("mails %+v", m)
	}
	if res, err := u.Run(context.Background()); err != nil || len(res) != 0 {
		t.Errorf("run after: %+v %v", res, err)
	}
}

// TestUploadUntold runs the uploader on an upload in each state its
// .untold marker can be in: written by this run (fresh), left by a run
// killed after the upload was marked, left by a run killed while the tool
// ran, damaged; with the package Built by this builder or by another one
// (the queue refuses).
func TestUploadUntold(t *testing.T) {
	need(t, "dput", "dpkg-buildpackage")
	built := buildPackage(t, "1.0-1", "amd64")
	const refusedLine = "hello_1.0-1 (hello_1.0-1_amd64.changes): bookworm/amd64: "
	for _, tc := range []struct {
		name string
		// left writes what an earlier run left beside the queued upload.
		left    func(t *testing.T, uq *home.UploadQueue, changes string)
		other   bool // another builder has the package Built
		earlier bool // the result is an Earlier one
		// uploaded: this run uploaded it; told: it told the queue.
		uploaded, told bool
		wantErr        string // in the result's Err
		mail           string // in the only mail, "" for none
	}{
		{name: "fresh", uploaded: true, told: true},
		{name: "fresh, refused", other: true, uploaded: true, mail: refusedLine},
		{
			name: "killed between the marker and telling",
			left: func(t *testing.T, uq *home.UploadQueue, changes string) {
				uq.Mark(changes, "Successfully uploaded\n")
				if err := uq.SetUntold(changes, []string{"bookworm/amd64"}); err != nil {
					t.Fatal(err)
				}
			},
			earlier: true, told: true,
		},
		{
			name: "killed between the marker and telling, a marker naming the dist alone",
			left: func(t *testing.T, uq *home.UploadQueue, changes string) {
				uq.Mark(changes, "Successfully uploaded\n")
				if err := uq.SetUntold(changes, []string{"bookworm"}); err != nil {
					t.Fatal(err)
				}
			},
			earlier: true, told: true,
		},
		{
			name: "killed between the marker and telling, refused",
			left: func(t *testing.T, uq *home.UploadQueue, changes string) {
				uq.Mark(changes, "Successfully uploaded\n")
				uq.SetUntold(changes, []string{"bookworm"})
			},
			other: true, earlier: true, mail: refusedLine,
		},
		{
			name: "killed while the tool ran",
			left: func(t *testing.T, uq *home.UploadQueue, changes string) {
				uq.SetUntold(changes, []string{"bookworm"})
			},
			uploaded: true, told: true,
		},
		{
			name: "damaged marker",
			left: func(t *testing.T, uq *home.UploadQueue, changes string) {
				uq.Mark(changes, "Successfully uploaded\n")
				os.WriteFile(uq.Path(home.UntoldMarker(changes)), []byte("bookw"), 0o644)
			},
			earlier: true, wantErr: "hello_1.0-1_amd64.untold: not one distribution name a line",
		},
		{
			name: "marker naming no queue",
			left: func(t *testing.T, uq *home.UploadQueue, changes string) {
				uq.Mark(changes, "Successfully uploaded\n")
				os.WriteFile(uq.Path(home.UntoldMarker(changes)), []byte("bookworm/\n"), 0o644)
			},
			earlier: true, wantErr: `hello_1.0-1_amd64.untold: "bookworm/" is not DIST/ARCH`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			incoming := t.TempDir()
			h, u := newUploader(t, writeDputCf(t, incoming, ""), "")
			c := takeAndBuild(t, h, "hello_1.0-1")
			if tc.other {
				c.GiveBack(context.Background(), "hello_1.0-1")
				takeAndBuildAs(t, h, "hello_1.0-1", "buildd_other")
			}
			changes := queue(t, h, built, "1.0-1", "amd64")
			uq := h.Home.UploadQueue("upload")
			name := filepath.Base(changes)
			untold := uq.Path(home.UntoldMarker(name))
			if tc.left != nil {
				tc.left(t, uq, name)
			}
			before, _ := os.ReadFile(untold)
			res, err := u.Run(context.Background())
			if err != nil || len(res) != 1 || res[0].Earlier != tc.earlier || res[0].PkgV != "hello_1.0-1" && tc.wantErr == "" {
				t.Fatalf("results %+v %v", res, err)
			}
			r := res[0]
			if tc.wantErr != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tc.wantErr) || !strings.Contains(r.Err.Error(), untold) {
					t.Errorf("result error %v, want %q naming %s", r.Err, tc.wantErr, untold)
				}
				if after, _ := os.ReadFile(untold); string(after) != string(before) {
					t.Errorf("damaged marker changed: %q -> %q", before, after)
				}
				if !strings.Contains(daemonLog(t, h), untold) {
					t.Errorf("damaged marker not logged:\n%s", daemonLog(t, h))
				}
			} else {
				if r.Err != nil {
					t.Fatalf("result %+v", r)
				}
				if _, err := os.Lstat(untold); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left: %v", untold, err)
				}
			}
			if !uq.Uploaded(name) {
				t.Error("not marked uploaded")
			}
			if _, err := os.Stat(filepath.Join(incoming, "hello_1.0-1_amd64.deb")); (err == nil) != tc.uploaded {
				t.Errorf("in incoming: %v, want uploaded %v", err, tc.uploaded)
			}
			want := wb.State("Built")
			if tc.told {
				want = "Uploaded"
			}
			if s := state(t, c, "hello"); s != want {
				t.Errorf("queue state %s, want %s", s, want)
			}
			if tc.told != slices.Equal(r.Told, []string{"bookworm/amd64"}) {
				t.Errorf("told %q", r.Told)
			}
			if tc.mail != "" && (len(r.NotMarked) != 1 || !wb.IsRefused(r.NotMarked[0].Err)) {
				t.Errorf("not marked %+v, want a refusal", r.NotMarked)
			}
			if tc.earlier && tc.wantErr == "" && !strings.Contains(daemonLog(t, h), "Telling the queue of bookworm/amd64 that hello_1.0-1 was uploaded (left untold by an earlier run)") {
				t.Errorf("retry log:\n%s", daemonLog(t, h))
			}
			m := h.Mails(t)
			switch {
			case tc.mail == "" && len(m) != 0:
				t.Errorf("mails %+v", m)
			case tc.mail != "" && (len(m) != 1 || !strings.Contains(m[0].Body, tc.mail) || strings.Contains(m[0].Body, "kept in")):
				t.Errorf("mails %+v, want one with %q", m, tc.mail)
			}
		})
	}
}

// TestUploadSeveralArches: a host builds bookworm for amd64 and arm64,
// and hello_1.0-1 is Built in both queues. The arm64 upload is uploaded
// and only the arm64 queue is told; the amd64 one, left by an earlier run
// killed before it told the queue with a marker naming the dist alone
// (written before markers named the architecture), tells only the amd64
// queue. Neither touches the other architecture's queue.
func TestUploadSeveralArches(t *testing.T) {
	need(t, "dput", "dpkg-buildpackage")
	arm64Built := buildPackage(t, "1.0-1", "arm64")
	amd64Built := buildPackage(t, "1.0-1", "amd64")
	incoming := t.TempDir()
	h, u := newUploader(t, writeDputCf(t, incoming, ""),
		"upload_tool = \"dput\"\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"arm64\"\n")
	amd64 := takeAndBuild(t, h, "hello_1.0-1")
	arm64 := takeAndBuildIn(t, h, "arm64", "hello_1.0-1", h.Cfg.BuilderName)

	queue(t, h, arm64Built, "1.0-1", "arm64")
	res, err := u.Run(context.Background())
	if err != nil || len(res) != 1 || res[0].Err != nil || res[0].Changes != "hello_1.0-1_arm64.changes" ||
		!slices.Equal(res[0].Told, []string{"bookworm/arm64"}) || len(res[0].NotMarked) != 0 {
		t.Fatalf("arm64 upload: %+v %v", res, err)
	}
	if s, o := state(t, arm64, "hello"), state(t, amd64, "hello"); s != "Uploaded" || o != "Built" {
		t.Fatalf("after the arm64 upload: arm64 %s, amd64 %s; want Uploaded, Built", s, o)
	}
	if _, err := os.Stat(filepath.Join(incoming, "hello_1.0-1_arm64.deb")); err != nil {
		t.Errorf("arm64 .deb not uploaded: %v", err)
	}

	uq := h.Home.UploadQueue("upload")
	changes := filepath.Base(queue(t, h, amd64Built, "1.0-1", "amd64"))
	uq.Mark(changes, "Successfully uploaded\n")
	if err := uq.SetUntold(changes, []string{"bookworm"}); err != nil {
		t.Fatal(err)
	}
	res, err = u.Run(context.Background())
	if err != nil || len(res) != 1 || !res[0].Earlier || res[0].Err != nil ||
		!slices.Equal(res[0].Told, []string{"bookworm/amd64"}) || len(res[0].NotMarked) != 0 {
		t.Fatalf("amd64 left untold: %+v %v", res, err)
	}
	if s := state(t, amd64, "hello"); s != "Uploaded" {
		t.Errorf("amd64 is %s after its queue was told, want Uploaded", s)
	}
	if !strings.Contains(daemonLog(t, h), "Telling the queue of bookworm/amd64 that hello_1.0-1 was uploaded (left untold by an earlier run)") ||
		strings.Contains(daemonLog(t, h), "Telling the queue of bookworm/arm64") {
		t.Errorf("daemon.log:\n%s", daemonLog(t, h))
	}
	if m := h.Mails(t); len(m) != 0 {
		t.Errorf("mails %+v", m)
	}
}

// TestUploadArches: the architectures of an upload are those its
// .changes names but all and source, or, for Architecture: all packages
// only, the one its name names; an .untold line naming a dist alone is in
// the queue of each.
func TestUploadArches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arch  []string
		want  string // the arches, or the error's end
		dists []string
		queue string
	}{
		{"hello_1.0-1_arm64.changes", []string{"arm64"}, "arm64", []string{"bookworm"}, "bookworm/arm64"},
		{"hello_1.0-1_arm64.changes", []string{"source", "all", "arm64"}, "arm64", []string{"bookworm/arm64", "sid"}, "bookworm/arm64 sid/arm64"},
		{"hello_1.0-1_amd64.changes", []string{"all"}, "amd64", []string{"bookworm"}, "bookworm/amd64"},
		{"hello_1.0-1_multi.changes", []string{"amd64", "arm64"}, "amd64 arm64", []string{"bookworm"}, "bookworm/amd64 bookworm/arm64"},
		{"hello_1.0-1_multi.changes", []string{"all"}, `no architecture: its Architecture field names only "all", and its name none`, nil, ""},
		{"hello.changes", []string{"all"}, `no architecture: its Architecture field names only "all", and its name none`, nil, ""},
	} {
		got, err := uploadArches(tc.name, &control.Changes{Architecture: tc.arch})
		if err != nil {
			if !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("uploadArches(%s, %v): %v, want %q", tc.name, tc.arch, err, tc.want)
			}
			continue
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("uploadArches(%s, %v) = %v, want %s", tc.name, tc.arch, got, tc.want)
		}
		if q := strings.Join(queues(tc.dists, got), " "); q != tc.queue {
			t.Errorf("queues(%v, %v) = %s, want %s", tc.dists, got, q, tc.queue)
		}
	}
}

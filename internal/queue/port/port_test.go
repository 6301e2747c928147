package port_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store/storetest"
	"buildd/internal/sshtest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wb-client-test-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "wanna-build")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../wannabuild/wanna-build").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := storetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// newPort returns the port of a fresh queue (testdata/queue.export) for
// dist sid/amd64 as buildd_a, and the queue's wanna_build_db. kind "bolt"
// and "postgres" open the store in-process (a bbolt file; a database of a
// real PostgreSQL cluster, as its admin); "ssh" runs the real wanna-build
// through a real sshd on 127.0.0.1 with the classic ssh command line;
// "ssh-socket" does the same through a control master started on the
// dist's wanna_build_ssh_socket, with no key for the client's own ssh, so
// only the master can get in.
func newPort(t testing.TB, kind string) (queue.Port, string) {
	dir := t.TempDir()
	storeKind := "bolt"
	if kind == "postgres" {
		storeKind = kind
	}
	db := storetest.NewOf(t, storeKind)
	if out, err := exec.Command(bin, "--db", db, "-d", "sid", "-A", "amd64", "--import", "testdata/queue.export").CombinedOutput(); err != nil {
		t.Fatalf("import: %v: %s", err, out)
	}
	cfg := &config.Config{Home: dir, WannaBuildDB: db}
	d := config.Dist{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: "buildd_a"}
	switch kind {
	case "ssh":
		s := startSSHD(t, db)
		d.WannaBuildSSHHost, d.WannaBuildSSHUser = "127.0.0.1", "root"
		d.WannaBuildSSHOptions = append([]string{"-i", s.Key}, s.Options()...)
	case "ssh-socket":
		s := startSSHD(t, db)
		d.WannaBuildSSHHost, d.WannaBuildSSHUser = "127.0.0.1", "root"
		d.WannaBuildSSHSocket = filepath.Join(dir, "master.sock")
		d.WannaBuildSSHOptions = append(s.Options(), "-o", "IdentitiesOnly=yes")
		cfg.Dists = []config.Dist{d}
		if _, err := port.Open(cfg, &cfg.Dists[0]).NeedsBuild(context.Background()); err == nil || !strings.Contains(err.Error(), "Permission denied") {
			t.Fatalf("ssh without the master and without a key: got %v, want Permission denied (else the socket test proves nothing)", err)
		}
		s.startMaster(t, d.WannaBuildSSHSocket)
	}
	cfg.Dists = []config.Dist{d}
	p := port.Open(cfg, &cfg.Dists[0])
	t.Cleanup(func() { p.Close() })
	return p, db
}

// kinds are the ways to reach a queue: the conformance suite of the port.
var kinds = []string{"bolt", "postgres", "ssh", "ssh-socket"}

// sshServer is a real sshd (sshtest) that lets root in with its key and
// runs commands with the test-built wanna-build first on PATH and
// $WANNA_BUILD_DB set to the test's queue.
type sshServer struct{ *sshtest.Server }

func startSSHD(t testing.TB, db string) *sshServer {
	t.Helper()
	return &sshServer{sshtest.Start(t, fmt.Sprintf("SetEnv PATH=%s:/usr/bin:/bin WANNA_BUILD_DB=%s", filepath.Dir(bin), db))}
}

// startMaster starts a control master on sock (ssh -M -S sock -N, kept in
// the foreground so the test owns and reaps it) and stops it when the test
// ends.
func (s *sshServer) startMaster(t testing.TB, sock string) {
	t.Helper()
	args := append([]string{"-M", "-S", sock, "-N", "-i", s.Key}, s.Options()...)
	var log bytes.Buffer
	cmd := exec.Command("ssh", append(args, "root@127.0.0.1")...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		exec.CommandContext(ctx, "ssh", "-S", sock, "-O", "exit", "root@127.0.0.1").Run()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("ssh %s: exited: %v\n%s", strings.Join(args, " "), err, log.String())
		default:
		}
		if exec.Command("ssh", "-S", sock, "-O", "check", "root@127.0.0.1").Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh %s: no master on %s after 15s\n%s", strings.Join(args, " "), sock, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPort(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			p, _ := newPort(t, kind)
			testPort(t, p)
		})
	}
}

func refusal(err error) string {
	var r *queue.Refused
	if errors.As(err, &r) {
		return r.Pkg + ": " + r.Msg
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func testPort(t *testing.T, c queue.Port) {
	ctx := context.Background()
	list, err := c.NeedsBuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.PkgVersion())
	}
	if want := []string{"nb2_2.0-1", "nb_1.0-1", "nmu_1.0-1", "nb3_3.0-1"}; !reflect.DeepEqual(names, want) {
		t.Errorf("NeedsBuild = %v, want %v", names, want)
	}
	if list[2].BinNMU != 1 || list[1].Notes != "out-of-date" || list[0].Section != "utils" || list[0].CalPrio < list[3].CalPrio {
		t.Errorf("NeedsBuild details: %+v", list)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"take", func() error { return c.Take(ctx, "nb_1.0-1") }, "ok"},
		{"take again", func() error { return c.Take(ctx, "nb_1.0-1") }, "ok"},
		{"take other's", func() error { return c.Take(ctx, "bld_1.0-1") }, "ok"},
		{"take failed", func() error { return c.Take(ctx, "fail_1.0-1") }, "fail: build of 1.0-1 failed previously:\n    does not build\n    with gcc-13"},
		{"take dep-wait", func() error { return c.Take(ctx, "dw_1.0-1") }, "dw: not all source dependencies available yet"},
		{"built", func() error { return c.Built(ctx, "nb_1.0-1") }, "ok"},
		{"built wrong version", func() error { return c.Built(ctx, "nb_2.0-1") }, "nb: version mismatch (1.0-1 by buildd_a)"},
		{"built wrong state", func() error { return c.Built(ctx, "inst_1.0-1") }, "inst: skiping: state is Installed, not in Building, Build-Attempted"},
		{"uploaded", func() error { return c.Uploaded(ctx, "nb_1.0-1") }, "ok"},
		{"attempted", func() error { return c.Attempted(ctx, "att_1.0-1") }, "ok"},
		{"failed", func() error { return c.Failed(ctx, "att_1.0-1", "it's broken\nreally") }, "ok"},
		{"give back", func() error { return c.GiveBack(ctx, "bt_1.0-1") }, "ok"},
		{"give back installed", func() error { return c.GiveBack(ctx, "inst_1.0-1") }, "inst: not taken for building (state is Installed). Skipping."},
		{"give back bd-uninst", func() error { return c.GiveBack(ctx, "bdu_1.0-1") }, "bdu: has uninstallable build-dependencies. Skipping\n  (use --override to clear dependency list and give back anyway)"},
		{"dep-wait bad", func() error { return c.DepWait(ctx, "bld_1.0-1", "a | b") }, "bld: Bad dependency list"},
		{"dep-wait", func() error { return c.DepWait(ctx, "bld_1.0-1", "libx (>= 1)") }, "ok"},
		{"dep-wait installed", func() error { return c.DepWait(ctx, "inst_1.0-1", "libx") }, "inst: add_one_depwait: inst: skiping in state Installed"},
		{"no-build", func() error { return c.NoBuild(ctx, "anfu_1.0-1") }, "ok"},
		{"not registered", func() error { return c.Built(ctx, "nothere_1.0-1") }, "nothere: not registered yet."},
	} {
		if got := refusal(tc.call()); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if err := c.Built(ctx, "nothere_1.0-1"); !errors.Is(err, queue.ErrNotRegistered) {
		t.Errorf("Built(nothere) = %v, want ErrNotRegistered", err)
	}
	if _, err := c.Info(ctx, "nothere"); !errors.Is(err, queue.ErrNotRegistered) {
		t.Errorf("Info(nothere) = %v, want ErrNotRegistered", err)
	}
	for _, tc := range []struct {
		name string
		want queue.Info
		last string // LastChange without its time
	}{
		{"nb", queue.Info{Name: "nb", Version: "1.0-1", State: "Uploaded", Builder: "buildd_a", Section: "libs", Priority: "optional",
			InstalledVersion: "0.9-1", PreviousState: "Built", Notes: "out-of-date"}, "--uploaded by buildd_a"},
		{"att_1.0-1", queue.Info{Name: "att", Version: "1.0-1", State: "Failed", Builder: "buildd_a", Section: "devel", Priority: "optional",
			PreviousState: "Build-Attempted", FailedText: "it's broken\nreally"}, "--failed by buildd_a"},
		{"bld", queue.Info{Name: "bld", Version: "1.0-1", State: "Dep-Wait", Builder: "buildd_a", Section: "devel", Priority: "optional",
			PreviousState: "Building", Depends: "libx (>= 1)", Notes: "uncompiled"}, "--dep-wait by buildd_a"},
		{"nmu", queue.Info{Name: "nmu", Version: "1.0-1", State: "Needs-Build", Section: "libs", Priority: "optional",
			InstalledVersion: "1.0-1", BinNMU: 1, BinNMUChangelog: "Rebuild against libfoo2", Notes: "out-of-date"}, ""},
	} {
		got, err := c.Info(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if last, _, _ := strings.Cut(got.LastChange, " at "); last != tc.last || tc.last != "" && !strings.HasSuffix(got.LastChange, " UTC") {
			t.Errorf("Info(%s).LastChange = %q, want %q at TIME UTC", tc.name, got.LastChange, tc.last)
		}
		got.StateChange, got.CalPrio, got.LastChange = "", 0, ""
		if *got != tc.want {
			t.Errorf("Info(%s) =\n%+v, want\n%+v", tc.name, *got, tc.want)
		}
	}
}

// TestLeases: a take holds a lease that the builder renews; once another
// builder has given the package back, renewing reports it lost; a lease
// that ended is given back by ExpireLeases. On each store and over ssh.
func TestLeases(t *testing.T) {
	for _, kind := range kinds[:3] {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			c, db := newPort(t, kind)
			wb := func(env string, args ...string) {
				t.Helper()
				cmd := exec.Command(bin, append([]string{"--db", db, "-d", "sid", "-A", "amd64"}, args...)...)
				cmd.Env = append(os.Environ(), "BUILDD_CONF=", env)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("wanna-build %v: %v\n%s", args, err, out)
				}
			}
			if err := c.Take(ctx, "nb_1.0-1"); err != nil {
				t.Fatal(err)
			}
			if lost, err := c.Renew(ctx, "nb_1.0-1"); err != nil || len(lost) != 0 {
				t.Fatalf("renew: lost %v, %v", lost, err)
			}
			wb("", "-U", "buildd_z", "-o", "--give-back", "nb_1.0-1")
			if lost, err := c.Renew(ctx, "nb_1.0-1"); err != nil || len(lost) != 1 || lost[0] != "nb_1.0-1" {
				t.Fatalf("renew after a give-back: lost %v, %v; want [nb_1.0-1]", lost, err)
			}
			// buildd_z took nb2 100 s ago with a 1-second lease.
			wb(fmt.Sprintf("WANNA_BUILD_NOW=%d", time.Now().Unix()-100), "-U", "buildd_z", "--take", "--lease=1", "nb2_2.0-1")
			expired, err := c.ExpireLeases(ctx)
			if err != nil || len(expired) != 1 || expired[0].Package != "nb2" || expired[0].Builder != "buildd_z" {
				t.Fatalf("expire: %+v, %v", expired, err)
			}
			if info, err := c.Info(ctx, "nb2"); err != nil || info.State != "Needs-Build" {
				t.Fatalf("nb2 after expiry: %+v, %v", info, err)
			}
		})
	}
}

// TestOldQueueHost: a queue host whose wanna-build does not know --json
// (the classic one, or this suite's before it) is an error that says what
// the queue host needs, not a misread answer.
func TestOldQueueHost(t *testing.T) {
	old := filepath.Join(t.TempDir(), "ssh")
	script := "#!/bin/sh\necho 'Unknown option: json' >&2\necho 'Usage: wanna-build <options...> <package_version...>'\nexit 2\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Home: t.TempDir()}
	cfg.Dists = []config.Dist{{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: "buildd_a", WannaBuildSSHHost: "queue.example.org"}}
	p := port.Open(cfg, &cfg.Dists[0])
	p.(*port.Remote).SSH = old
	_, err := p.NeedsBuild(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the queue host's wanna-build must be this suite's, with --json (protocol 1)") ||
		!strings.Contains(err.Error(), "Unknown option: json") {
		t.Errorf("an old queue host: %v", err)
	}
}

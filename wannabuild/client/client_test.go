package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"buildd/buildd/config"
	"buildd/wannabuild/cli"
	"buildd/wannabuild/client"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wb-client-test-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "wanna-build")
	if out, err := exec.Command("go", "build", "-o", bin, "../wanna-build").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newClient returns a client on a fresh queue (cli/testdata/queue.export)
// for dist sid/amd64 as buildd_a: local, or "remote" through a stand-in
// for ssh that drops the ssh options and runs the real wanna-build through
// a shell, as sshd would.
func newClient(t *testing.T, remote bool) *client.Client {
	dir := t.TempDir()
	db := filepath.Join(dir, "wb.db")
	var out, errb strings.Builder
	if code := cli.Main([]string{"--db", db, "-d", "sid", "-A", "amd64", "--import", "../cli/testdata/queue.export"},
		strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("import: %s", errb.String())
	}
	cfg := &config.Config{Home: dir, WannaBuildDB: db}
	d := config.Dist{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: "buildd_a"}
	if remote {
		d.WannaBuildSSHHost, d.WannaBuildSSHUser = "wb.example.org", "buildd_amd64"
		d.WannaBuildSSHOptions = []string{"-o", "BatchMode=yes"}
	}
	cfg.Dists = []config.Dist{d}
	c := client.New(cfg, &cfg.Dists[0])
	if remote {
		ssh := filepath.Join(dir, "ssh")
		os.WriteFile(ssh, []byte(`#!/bin/sh
while [ "$1" != wanna-build ]; do shift; done
shift
eval exec "`+bin+`" --db "`+db+`" "$@"
`), 0o755)
		c.SSH = ssh
	}
	return c
}

func TestClient(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(map[bool]string{false: "local", true: "ssh"}[remote], func(t *testing.T) {
			testClient(t, newClient(t, remote))
		})
	}
}

func refusal(err error) string {
	var r *client.Refused
	if errors.As(err, &r) {
		return r.Pkg + ": " + r.Msg
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func testClient(t *testing.T, c *client.Client) {
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
	if err := c.Built(ctx, "nothere_1.0-1"); !errors.Is(err, client.ErrNotRegistered) {
		t.Errorf("Built(nothere) = %v, want ErrNotRegistered", err)
	}
	if _, err := c.Info(ctx, "nothere"); !errors.Is(err, client.ErrNotRegistered) {
		t.Errorf("Info(nothere) = %v, want ErrNotRegistered", err)
	}
	for _, tc := range []struct {
		name string
		want client.Info
	}{
		{"nb", client.Info{Name: "nb", Version: "1.0-1", State: "Uploaded", Builder: "buildd_a", Section: "libs", Priority: "optional",
			InstalledVersion: "0.9-1", PreviousState: "Built", Notes: "out-of-date"}},
		{"att_1.0-1", client.Info{Name: "att", Version: "1.0-1", State: "Failed", Builder: "buildd_a", Section: "devel", Priority: "optional",
			PreviousState: "Build-Attempted", FailedText: "it's broken\nreally"}},
		{"bld", client.Info{Name: "bld", Version: "1.0-1", State: "Dep-Wait", Builder: "buildd_a", Section: "devel", Priority: "optional",
			PreviousState: "Building", Depends: "libx (>= 1)", Notes: "uncompiled"}},
		{"nmu", client.Info{Name: "nmu", Version: "1.0-1", State: "Needs-Build", Section: "libs", Priority: "optional",
			InstalledVersion: "1.0-1", BinNMU: 1, BinNMUChangelog: "Rebuild against libfoo2", Notes: "out-of-date"}},
	} {
		got, err := c.Info(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got.StateChange, got.CalPrio = "", 0
		if *got != tc.want {
			t.Errorf("Info(%s) =\n%+v, want\n%+v", tc.name, *got, tc.want)
		}
	}
}

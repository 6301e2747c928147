package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/sshtest"
)

// TestPush: two build hosts on this machine, each its own btrfs volume,
// the second reached through a real sshd. `buildd machine push` ships the
// machine whole, then an upgrade incrementally, then nothing (up to date);
// the received trees are identical to the sent ones. A push whose
// receiving end is killed halfway leaves current untouched, and `buildd
// machine clean` there removes the remains; the next push goes through.
func TestPush(t *testing.T) {
	a := machinetest.New(t)
	bDir := machinetest.NewDir(t)
	bin := buildBuildd(t)
	srv := sshtest.Start(t, "")
	cut, err := filepath.Abs("testdata/cut-receive.sh")
	if err != nil {
		t.Fatal(err)
	}
	conf := func(command ...string) string {
		p := filepath.Join(t.TempDir(), "buildd.conf")
		q := func(l []string) string { return `["` + strings.Join(l, `", "`) + `"]` }
		text := fmt.Sprintf("home = %q\nmachines_dir = %q\npush_hosts = [\"root@127.0.0.1\"]\npush_ssh_options = %s\npush_command = %s\n[[dist]]\ndist_name = %q\nbuilt_architecture = %q\nmachine = %q\n",
			t.TempDir(), a.Dir, q(append(srv.Options(), "-i", srv.Key)), q(command), a.Dist, a.Arch, a.Machine)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := conf(bin, "machine", "--machines-dir", bDir)
	cli := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr strings.Builder
		if code := machineCLI(args, &stdout, &stderr); code != want {
			t.Fatalf("buildd machine %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	bs, err := machine.Open(bDir)
	if err != nil {
		t.Fatal(err)
	}
	same := func() {
		t.Helper()
		ar, _ := a.Store.Current(a.Machine)
		br, err := bs.Current(a.Machine)
		if err != nil || br.UUID != ar.UUID {
			t.Fatalf("the host holds %+v (%v), want UUID %s", br, err, ar.UUID)
		}
		diffs, err := machinetest.DiffTrees(filepath.Join(a.Dir, a.Machine, ar.Name), filepath.Join(bDir, a.Machine, br.Name), 20)
		if err != nil || len(diffs) > 0 {
			t.Fatalf("the trees differ (%v):\n%s", err, strings.Join(diffs, "\n"))
		}
	}
	pushed := regexp.MustCompile(`^root@127\.0\.0\.1: pushed (\S+) \(UUID \S+\) (whole|incremental from \S+), `)
	out := cli(0, "--config", good, "push", a.Machine)
	if g := pushed.FindStringSubmatch(out); g == nil || g[2] != "whole" {
		t.Fatalf("first push: %q", out)
	}
	same()
	upgrade := func() {
		t.Helper()
		cli(0, "--config", good, "upgrade", a.Machine)
	}
	upgrade()
	out = cli(0, "--config", good, "push", a.Machine)
	if g := pushed.FindStringSubmatch(out); g == nil || g[2] != "incremental from "+a.Machine+"-1" {
		t.Fatalf("push after an upgrade: %q", out)
	}
	same()
	if out = cli(0, "--config", good, "push", a.Machine); !strings.Contains(out, ": up to date (") {
		t.Fatalf("push again: %q", out)
	}

	upgrade()
	before, _ := bs.Current(a.Machine)
	cli(1, "--config", conf(cut, bin, bDir), "push", a.Machine)
	if now, err := bs.Current(a.Machine); err != nil || now.UUID != before.UUID {
		t.Fatalf("after a push killed halfway current is %+v (%v), was %+v", now, err, before)
	}
	stages, _ := filepath.Glob(filepath.Join(bDir, a.Machine, ".recv-*"))
	if len(stages) != 1 {
		t.Fatalf("the killed receive left %v", stages)
	}
	if out = cli(0, "--machines-dir", bDir, "clean"); !strings.Contains(out, "deleted "+stages[0]+"\n") {
		t.Errorf("clean: %q", out)
	}
	if _, err := os.Stat(stages[0]); err == nil {
		t.Errorf("%s is still there", stages[0])
	}
	out = cli(0, "--config", good, "push", a.Machine)
	if g := pushed.FindStringSubmatch(out); g == nil || g[2] != "incremental from "+a.Machine+"-2" {
		t.Fatalf("push after the killed one: %q", out)
	}
	same()
}

// buildBuildd builds this program for the other end of ssh.
func buildBuildd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "buildd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestMaint: `buildd machine maint` over two machines, one of which cannot
// be made (its dist does not exist), pushing to a host through a real sshd:
// the plan (-n), a run that stops after the failure (-j 1), one that keeps
// going (-j 2 -k) and pushes the other machine, one with a target; each
// job's log file, and the failed job's tail printed.
func TestMaint(t *testing.T) {
	a := machinetest.New(t)
	bDir := machinetest.NewDir(t)
	bin := buildBuildd(t)
	srv := sshtest.Start(t, "")
	home := t.TempDir()
	q := func(l []string) string { return `["` + strings.Join(l, `", "`) + `"]` }
	conf := filepath.Join(t.TempDir(), "buildd.conf")
	text := fmt.Sprintf(`home = %q
machines_dir = %q
push_hosts = ["root@127.0.0.1"]
push_ssh_options = %s
push_command = %s
[[dist]]
dist_name = "nosuchdist"
built_architecture = %q
machine = "broken"
[[dist]]
dist_name = %q
built_architecture = %q
machine = %q
`, home, a.Dir, q(append(srv.Options(), "-i", srv.Key)), q([]string{bin, "machine", "--machines-dir", bDir}), a.Arch, a.Dist, a.Arch, a.Machine)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m := a.Machine
	host := "root@127.0.0.1"
	run := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr strings.Builder
		if code := machineCLI(append([]string{"--config", conf, "maint"}, args...), &stdout, &stderr); code != want {
			t.Fatalf("maint %v: exit %d, want %d\n%s%s", args, code, want, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	logs := func() []string {
		l, _ := filepath.Glob(filepath.Join(home, "maint", "*.log"))
		return l
	}

	plan := run(0, "-n")
	want := "create:broken\nprune:broken  after create:broken\npush:broken:" + host + "  after create:broken\nprune:" + m + "\npush:" + m + ":" + host + "\n"
	if plan != want || len(logs()) != 0 {
		t.Fatalf("-n printed\n%s\nwant\n%s\nlogs %v", plan, want, logs())
	}

	out := run(1, "-j", "1")
	t.Logf("maint -j 1:\n%s", out)
	for _, s := range []string{
		"FAILED create:broken", "nosuchdist",
		"skip prune:broken: depends on failed create:broken",
		"not started prune:" + m,
		"not started push:" + m + ":" + host,
	} {
		if !strings.Contains(out, s) {
			t.Errorf("-j 1 output lacks %q:\n%s", s, out)
		}
	}
	if l := logs(); len(l) != 1 || !strings.HasSuffix(l[0], "-create_broken.log") {
		t.Errorf("logs after -j 1: %v", l)
	}
	if _, err := os.Stat(filepath.Join(bDir, m)); err == nil {
		t.Errorf("-j 1 pushed %s after the failure", m)
	}
	failed := out[strings.Index(out, "FAILED create:broken"):]
	if tail := strings.Count(strings.SplitN(failed, "\nskip ", 2)[0], "\n"); tail > 21 {
		t.Errorf("the failed job's tail is %d lines:\n%s", tail, failed)
	}

	out = run(1, "-j", "2", "-k")
	t.Logf("maint -j 2 -k:\n%s", out)
	for _, s := range []string{"FAILED create:broken", "ok prune:" + m, "ok push:" + m + ":" + host} {
		if !strings.Contains(out, s) {
			t.Errorf("-j 2 -k output lacks %q:\n%s", s, out)
		}
	}
	if l := logs(); len(l) != 4 {
		t.Errorf("logs after -j 2 -k: %v", l)
	}
	ar, _ := a.Store.Current(m)
	bs, _ := machine.Open(bDir)
	if br, err := bs.Current(m); err != nil || br.UUID != ar.UUID {
		t.Errorf("the host holds %+v (%v), want UUID %s", br, err, ar.UUID)
	}
	for _, l := range logs() {
		if strings.HasSuffix(l, "-push_"+m+"_root_127.0.0.1.log") {
			if data, _ := os.ReadFile(l); !strings.Contains(string(data), "pushed "+ar.Name) {
				t.Errorf("%s:\n%s", l, data)
			}
		}
	}

	if out = run(0, "-j", "2", m); !strings.Contains(out, "ok push:"+m) || strings.Contains(out, "broken") {
		t.Errorf("maint %s:\n%s", m, out)
	}
}

// BenchmarkPush: the bytes and time of a whole push of a machine to a
// build host (a second btrfs volume through a real sshd, as root) beside
// an incremental push of one `machine upgrade` of it, in each round:
//
//	go test -run '^$' -bench Push -benchtime 3x ./buildd/
func BenchmarkPush(b *testing.B) {
	a := machinetest.New(b)
	hostDir := machinetest.NewDir(b)
	host, err := machine.Open(hostDir)
	if err != nil {
		b.Fatal(err)
	}
	srv := sshtest.Start(b, "")
	opt := machine.PushOptions{SSH: append([]string{"ssh"}, append(srv.Options(), "-i", srv.Key)...),
		Remote: []string{buildBuildd(b), "machine", "--machines-dir", hostDir}}
	ctx := context.Background()
	var full, inc machine.PushResult
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := host.Current(a.Machine); err == nil {
			if err := host.Delete(ctx, a.Machine); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		r, err := a.Store.Push(ctx, a.Machine, "root@127.0.0.1", opt)
		if err != nil || r.Parent != "" {
			b.Fatalf("whole push: %v %v", r, err)
		}
		full.Bytes, full.Took = full.Bytes+r.Bytes, full.Took+r.Took
		b.StopTimer()
		if err := a.Store.Upgrade(ctx, a.Machine); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if r, err = a.Store.Push(ctx, a.Machine, "root@127.0.0.1", opt); err != nil || r.Parent == "" {
			b.Fatalf("incremental push: %v %v", r, err)
		}
		inc.Bytes, inc.Took = inc.Bytes+r.Bytes, inc.Took+r.Took
	}
	n := float64(b.N)
	b.ReportMetric(float64(full.Bytes)/n/(1<<20), "whole_MiB/op")
	b.ReportMetric(full.Took.Seconds()/n, "whole_s/op")
	b.ReportMetric(float64(inc.Bytes)/n/(1<<20), "incremental_MiB/op")
	b.ReportMetric(inc.Took.Seconds()/n, "incremental_s/op")
}

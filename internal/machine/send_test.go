package machine_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
)

// sendTo pipes Send of rev (incremental from parent) into Receive on dst,
// returning the stream's size and what Receive returned.
func sendTo(t *testing.T, src, dst *machine.Store, name, rev, parent string, opt machine.CreateOptions, limit int64) (int64, machine.Revision, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	cw := &counter{w: pw, limit: limit}
	sent := make(chan error, 1)
	go func() {
		err := src.Send(ctx, name, rev, parent, cw)
		pw.CloseWithError(err)
		sent <- err
	}()
	r, err := dst.Receive(ctx, name, pr, opt)
	pr.Close()
	<-sent
	return cw.n, r, err
}

// counter counts what goes through it and ends the stream (as a killed
// sender does) after limit bytes when limit > 0.
type counter struct {
	w     *io.PipeWriter
	n     int64
	limit int64
}

func (c *counter) Write(p []byte) (int, error) {
	if c.limit > 0 && c.n+int64(len(p)) > c.limit {
		p = p[:c.limit-c.n]
		c.w.Write(p)
		c.n += int64(len(p))
		c.w.Close()
		return len(p), io.ErrClosedPipe
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func currentPath(t *testing.T, s *machine.Store, name string) (string, machine.Revision) {
	t.Helper()
	r, err := s.Current(name)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(s.Dir, name, r.Name), r
}

func sameTrees(t *testing.T, a, b string) {
	t.Helper()
	diffs, err := machinetest.DiffTrees(a, b, 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("%s and %s differ:\n%s", a, b, strings.Join(diffs, "\n"))
	}
}

// TestSendReceive ships a machine from one machines_dir to another: whole,
// then an upgrade incrementally; the received trees are identical to the
// sent ones file by file and keep the sent UUID. A stream cut short, an
// incremental stream whose parent the receiver lacks, a tree that is not
// a build machine and one of another architecture change nothing current;
// what a killed receive leaves is Clean's.
func TestSendReceive(t *testing.T) {
	a := machinetest.New(t)
	bs, err := machine.Open(machinetest.NewDir(t))
	if err != nil {
		t.Fatal(err)
	}
	name := a.Machine
	opt := machine.CreateOptions{Dist: a.Dist, Arch: a.Arch}

	full, r1, err := sendTo(t, a.Store, bs, name, "", "", opt, 0)
	if err != nil {
		t.Fatal(err)
	}
	ap, ar := currentPath(t, a.Store, name)
	bp, br := currentPath(t, bs, name)
	if r1.UUID != ar.UUID || br.UUID != ar.UUID || !br.Received || ar.Received || !br.ReadOnly {
		t.Errorf("sent %+v, received %+v (Receive said %+v)", ar, br, r1)
	}
	sameTrees(t, ap, bp)

	var log strings.Builder
	a.Store.Log = &log
	if err := a.Store.Upgrade(context.Background(), name); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	ap2, ar2 := currentPath(t, a.Store, name)
	if ar2.UUID == ar.UUID {
		t.Fatalf("the upgrade kept UUID %s", ar.UUID)
	}

	t.Run("parent-missing", func(t *testing.T) {
		other, err := machine.Open(machinetest.NewDir(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sendTo(t, a.Store, other, name, "", ar.Name, opt, 0); err == nil {
			t.Fatal("an incremental stream was received without its parent")
		}
		noneLeft(t, other, name)
	})
	t.Run("cut-short", func(t *testing.T) {
		if _, _, err := sendTo(t, a.Store, bs, name, "", ar.Name, opt, 64*1024); err == nil {
			t.Fatal("a stream cut short was received")
		}
		if _, r := currentPath(t, bs, name); r.UUID != ar.UUID {
			t.Errorf("current is now %+v", r)
		}
		noneLeft(t, bs, name)
	})
	t.Run("wrong-arch", func(t *testing.T) {
		if _, _, err := sendTo(t, a.Store, bs, name, "", ar.Name, machine.CreateOptions{Dist: a.Dist, Arch: "s390x"}, 0); err == nil || !strings.Contains(err.Error(), "s390x") {
			t.Fatalf("received as s390x: %v", err)
		}
		if _, r := currentPath(t, bs, name); r.UUID != ar.UUID {
			t.Errorf("current is now %+v", r)
		}
	})

	inc, r2, err := sendTo(t, a.Store, bs, name, "", ar.Name, opt, 0)
	if err != nil {
		t.Fatal(err)
	}
	bp2, br2 := currentPath(t, bs, name)
	if r2.UUID != ar2.UUID || br2.UUID != ar2.UUID {
		t.Errorf("sent %+v, received %+v", ar2, br2)
	}
	sameTrees(t, ap2, bp2)
	if inc >= full/2 {
		t.Errorf("the incremental stream is %d bytes, the full one %d", inc, full)
	}
	t.Logf("full stream %d bytes, incremental %d", full, inc)
	if m, _ := bs.List(); len(m) != 1 || len(m[0].Revisions) != 2 {
		t.Errorf("the receiver keeps %+v, want the current revision and its parent", m)
	}

	t.Run("not-a-machine", func(t *testing.T) {
		dir := filepath.Join(a.Dir, "stray")
		run(t, "btrfs", "subvolume", "create", dir)
		if err := os.WriteFile(filepath.Join(dir, "hello"), []byte("hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "btrfs", "property", "set", "-ts", dir, "ro", "true")
		t.Cleanup(func() {
			run(t, "btrfs", "property", "set", "-ts", dir, "ro", "false")
			run(t, "btrfs", "subvolume", "delete", dir)
		})
		c := exec.Command("btrfs", "send", "-q", dir)
		stream, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		_, err = bs.Receive(context.Background(), name, stream, opt)
		c.Wait()
		if err == nil || !strings.Contains(err.Error(), "not a build machine") {
			t.Fatalf("a tree that is no machine was received: %v", err)
		}
		if _, r := currentPath(t, bs, name); r.UUID != ar2.UUID {
			t.Errorf("current is now %+v", r)
		}
		noneLeft(t, bs, name)
	})
	t.Run("killed-receive-cleaned", func(t *testing.T) {
		stage := filepath.Join(bs.Dir, name, ".recv-9")
		if err := os.Mkdir(stage, 0o700); err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		go func() {
			err := a.Store.Send(context.Background(), name, "", "", &counter{w: pw, limit: 1 << 20})
			pw.CloseWithError(err)
		}()
		c := exec.Command("btrfs", "receive", "-e", stage)
		c.Stdin = pr
		c.Run()
		pr.Close()
		if ents, _ := os.ReadDir(stage); len(ents) != 1 {
			t.Fatalf("the cut receive left %d entries in %s", len(ents), stage)
		}
		if _, r := currentPath(t, bs, name); r.UUID != ar2.UUID {
			t.Errorf("current is now %+v", r)
		}
		rep, err := bs.Clean(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Deleted) != 1 || rep.Deleted[0] != stage || len(rep.NotUnderstood) != 0 {
			t.Errorf("Clean: %+v", rep)
		}
		noneLeft(t, bs, name)
	})
}

// noneLeft checks that no half-received revision is left in name.
func noneLeft(t *testing.T, s *machine.Store, name string) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(s.Dir, name, ".recv-*")); len(m) != 0 {
		t.Errorf("left behind: %v", m)
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// TestParseRevisions: what push reads from the other host is checked line
// by line.
func TestParseRevisions(t *testing.T) {
	const u = "0b7c6a1e-3f2d-4c5b-9a8e-7d6c5b4a3f2e"
	tests := []struct {
		name, in string
		want     []machine.RemoteRevision
		wantErr  string
	}{
		{"none", "", nil, ""},
		{"two", "m-1 " + u + " -\nm-2 " + u + " current\n", []machine.RemoteRevision{{Name: "m-1", UUID: u}, {Name: "m-2", UUID: u, Current: true}}, ""},
		{"bad uuid", "m-1 not-a-uuid current\n", nil, `line 1: bad line "m-1 not-a-uuid current"`},
		{"bad name", "../m " + u + " -\n", nil, "line 1: bad line"},
		{"extra field", "m-1 " + u + " current x\n", nil, "line 1: bad line"},
		{"bad flag", "m-1 " + u + " yes\n", nil, "line 1: bad line"},
		{"too many", strings.Repeat("m-1 "+u+" -\n", 1001), nil, "line 1001: more than 1000 revisions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := machine.ParseRevisions(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}

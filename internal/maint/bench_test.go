package maint_test

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

	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/maint"
	"buildd/internal/sshtest"
)

// BenchmarkMaint times `buildd machine maint` of a day on 4 machines: each
// older than upgrade_after, so upgraded, pruned and pushed incrementally
// to a build host (a second btrfs volume through a real sshd), at -j 1 and
// -j 2, the two alternating round by round from the same fresh state (4
// machines imported, the host holding each one's current revision). Run:
//
//	go test -run '^$' -bench Maint -benchtime 2x ./internal/maint/
func BenchmarkMaint(b *testing.B) {
	e := machinetest.New(b)
	tar := machinetest.Tarball(b)
	hostDir := machinetest.NewDir(b)
	host, err := machine.Open(hostDir)
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "buildd")
	if out, err := exec.Command("go", "build", "-o", bin, "buildd/buildd").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	srv := sshtest.Start(b, "")
	cfg := config.Defaults()
	cfg.Home, cfg.MachinesDir = b.TempDir(), e.Dir
	cfg.PushHosts = []string{"root@127.0.0.1"}
	cfg.PushSSHOptions = append(srv.Options(), "-i", srv.Key)
	cfg.PushCommand = []string{bin, "machine", "--machines-dir", hostDir}
	names := []string{"m1", "m2", "m3", "m4"}
	for _, n := range names {
		cfg.Dists = append(cfg.Dists, config.Dist{DistName: e.Dist, BuiltArchitecture: e.Arch, Machine: n})
	}
	ctx := context.Background()
	fresh := func() {
		for _, s := range []*machine.Store{e.Store, host} {
			for _, n := range names {
				if _, err := s.Current(n); err == nil {
					if err := s.Delete(ctx, n); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		for _, n := range names {
			if err := e.Store.Import(ctx, n, tar, machine.CreateOptions{Dist: e.Dist, Arch: e.Arch}); err != nil {
				b.Fatal(err)
			}
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(e.Store.Send(ctx, n, "", "", pw)) }()
			if _, err := host.Receive(ctx, n, pr, machine.CreateOptions{Dist: e.Dist, Arch: e.Arch}); err != nil {
				b.Fatal(err)
			}
		}
	}
	took := map[int]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, j := range []int{1, 2} {
			b.StopTimer()
			fresh()
			b.StartTimer()
			var out strings.Builder
			start := time.Now()
			res, err := maint.Run(ctx, &cfg, e.Store, maint.Options{Jobs: j, Out: &out, Now: time.Now().Add(48 * time.Hour)})
			took[j] += time.Since(start)
			if err != nil || !res.OK() || len(res.Succeeded) != 12 {
				b.Fatalf("maint -j %d: %+v %v\n%s", j, res, err, out.String())
			}
			if !strings.Contains(out.String(), "ok push:m4:") {
				b.Fatalf("maint -j %d:\n%s", j, out.String())
			}
		}
	}
	b.StopTimer()
	for _, j := range []int{1, 2} {
		b.ReportMetric(took[j].Seconds()/float64(b.N), fmt.Sprintf("j%d_s/op", j))
	}
	os.RemoveAll(cfg.Home)
}

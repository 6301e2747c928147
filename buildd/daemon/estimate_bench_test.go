package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
)

// BenchmarkEstimatedStart replays the test builds: four real builders
// (one slot each) on a PostgreSQL queue build sixteen small packages of
// known lengths (sleep 2 to 30 s); then new versions of the same
// packages are merged while the builders are stopped (SIGSTOP), the
// status web (`wanna-build --web`) is asked each package's estimated
// start, and the builders go on (SIGCONT). Each package's real start is
// its --take in the queue's history. It reports the mean and the
// largest difference between the estimated and the real start, and the
// mean real start, in seconds from the moment the builders went on.
func BenchmarkEstimatedStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		mean, worst, start := estimatedStart(b)
		b.ReportMetric(mean, "s-mean-error")
		b.ReportMetric(worst, "s-max-error")
		b.ReportMetric(start, "s-mean-start")
	}
}

func estimatedStart(b *testing.B) (meanErr, maxErr, meanStart float64) {
	const builders, npkgs = 4, 16
	lengths := make([]int, npkgs)
	pkgsOf := func(version string) []srcPkg {
		var pkgs []srcPkg
		for i := range npkgs {
			lengths[i] = 2 + (i*7)%29 // 2..30 s, spread
			pkgs = append(pkgs, srcPkg{fmt.Sprintf("replay%02d", i), version, "misc", fmt.Sprintf("sleep %d", lengths[i])})
		}
		return pkgs
	}
	nw := newNetwork(b, builders, "", pkgsOf("1.0")...)
	nw.start()
	nw.merge()
	built := func(version string) func(queueView) bool {
		return func(v queueView) bool {
			for i := range npkgs {
				r := v.recs[fmt.Sprintf("replay%02d", i)]
				if r == nil || r.Version != version || r.State != queue.Built {
					return false
				}
			}
			return true
		}
	}
	nw.waitQueue(20*time.Minute, "the first versions built", built("1.0"))

	sock := filepath.Join(b.TempDir(), "web.sock")
	web := exec.Command(wannaBuild(b), "--db", nw.db.URL(pgtest.Admin), "--web", sock)
	if err := web.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { web.Process.Kill(); web.Wait() }()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	waitFor(b, time.Minute, "the status web", func() bool {
		resp, err := client.Get("http://web/api/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	for _, n := range nw.nodes {
		n.proc.cmd.Process.Signal(syscall.SIGSTOP)
	}
	second := newArchive(b, pkgsOf("1.1")...) // the archive server serves it from now on
	second.merge(b, nw.db.URL(pgtest.Admin))
	asked := time.Now()
	estimate := map[string]float64{}
	for i := range npkgs {
		name := fmt.Sprintf("replay%02d", i)
		resp, err := client.Get("http://web/api/package/" + name)
		if err != nil {
			b.Fatal(err)
		}
		var page struct {
			Cells []struct {
				State     string `json:"state"`
				StartUnix int64  `json:"estimated_start_unix"`
				Why       string `json:"why"`
			} `json:"cells"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || len(page.Cells) != 1 || page.Cells[0].StartUnix == 0 {
			b.Fatalf("%s: %+v, %v: want its estimated start", name, page, err)
		}
		estimate[name] = float64(page.Cells[0].StartUnix) - float64(asked.Unix())
	}
	went := time.Now()
	for _, n := range nw.nodes {
		n.proc.cmd.Process.Signal(syscall.SIGCONT)
	}
	v := nw.waitQueue(20*time.Minute, "the new versions built", built("1.1"))
	var lines []string
	var sum, sumStart float64
	for i := range npkgs {
		name := fmt.Sprintf("replay%02d", i)
		takes := v.actions(name, "--take")
		real := float64(takes[len(takes)-1].Time) - float64(went.Unix())
		diff := math.Abs(real - estimate[name])
		sum += diff
		sumStart += real
		maxErr = max(maxErr, diff)
		lines = append(lines, fmt.Sprintf("%s (sleep %2d): estimated start %5.0f s, real %5.0f s", name, lengths[i], estimate[name], real))
	}
	slices.Sort(lines)
	b.Logf("estimated and real starts, from when the builders went on:\n  %s", strings.Join(lines, "\n  "))
	nw.stop()
	return sum / npkgs, maxErr, sumStart / npkgs
}

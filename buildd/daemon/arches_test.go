package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/machine/machinetest"
	"buildd/internal/queue/port"
)

// TestTwoArchesRealBuilds: one host builds bookworm for amd64 natively and
// for arm64 in an emulated machine (qemu-user). `buildd --once` takes the
// package from both queues and builds it twice at once, each in its own
// machine: two .changes of their architectures, both queues Built, a log
// mail for each naming its architecture.
func TestTwoArchesRealBuilds(t *testing.T) {
	a := newArchive(t, srcPkg{"twoarch", "1.0", "misc", "echo building twoarch for $$(dpkg-architecture -qDEB_HOST_ARCH)"})
	m := machinetest.New(t)
	arm := m.AddArch(t, "arm64")
	var dists strings.Builder
	for _, d := range []struct{ arch, machine string }{{m.Arch, m.Machine}, {"arm64", arm}} {
		fmt.Fprintf(&dists, "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = %q\nmachine = %q\napt_sources = [\n  \"deb [trusted=yes] %s bookworm main\",\n  \"deb-src [trusted=yes] %s bookworm main\",\n]\n",
			d.arch, d.machine, a.url, a.url)
	}
	e := newEnv(t, m.Dir, "max_build = 2", dists.String())
	c, err := config.Load(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	a.mergeArch(t, c.WannaBuildDB, m.Arch)
	a.mergeArch(t, c.WannaBuildDB, "arm64")
	p := e.start("--once")
	if code := p.wait(t, 30*time.Minute); code != 0 {
		t.Fatalf("buildd --once exit %d:\n%s\n%s", code, p.stderr, e.daemonLog())
	}
	for i, arch := range []string{m.Arch, "arm64"} {
		q := port.Open(c, &c.Dists[i])
		info, err := q.Info(context.Background(), "twoarch")
		q.Close()
		if err != nil || info.State != "Built" {
			t.Errorf("bookworm/%s: twoarch %+v %v\n%s", arch, info, err, jobLogs(e))
		}
		deb := e.path("build", "twoarch_1.0_"+arch+".deb")
		if out, err := exec.Command("dpkg-deb", "-f", deb, "Architecture").Output(); err != nil || strings.TrimSpace(string(out)) != arch {
			t.Errorf("%s: Architecture %q %v", deb, out, err)
		}
	}
	if log := jobLogs(e); !strings.Contains(log, "building twoarch for arm64") || !strings.Contains(log, "emulated build for arm64") {
		t.Errorf("the arm64 build did not run emulated:\n%s", log)
	}
	mails := e.smtp.Wait(2, time.Minute)
	var subjects []string
	for _, mail := range mails {
		raw := strings.ReplaceAll(string(mail.Data), "\r\n", "\n")
		for _, arch := range []string{m.Arch, "arm64"} {
			if s := "Subject: Log for successful build of twoarch_1.0 on " + arch + " (dist=bookworm)\n"; strings.Contains(raw, s) {
				subjects = append(subjects, arch)
			}
		}
	}
	if len(subjects) != 2 || subjects[0] == subjects[1] {
		t.Errorf("log mails for %v", subjects)
	}
}

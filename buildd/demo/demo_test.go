package demo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

// TestEndToEnd runs the demo in a fresh directory — real btrfs, real
// debootstrapped machine, real builds, real gpg and Emacs, real reprepro —
// and checks the queue, the mails, the archive, and that nothing (snapshot,
// mount, loop device) is left behind by `demo.sh clean`.
func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING THE END-TO-END TEST: it needs root (btrfs loop mount, namespaces); run make test as root")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	dir := filepath.Join(os.TempDir(), "buildd-e2e-"+time.Now().Format("150405.000000"))
	env := append(os.Environ(), "DEMO_DIR="+dir)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("./demo.sh", args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cleaned := false
	t.Cleanup(func() {
		if !cleaned {
			exec.Command("./demo.sh", "clean").Run()
		}
	})

	out := run("run")
	t.Logf("demo output:\n%s", out)

	top, _ := filepath.Abs("../..")
	wb := func(args ...string) string {
		cmd := exec.Command(filepath.Join(top, "bin", "wanna-build"), args...)
		cmd.Env = append(os.Environ(), "BUILDD_CONF="+filepath.Join(dir, "buildd.conf"))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("wanna-build %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	states := map[string]string{
		"buildd-demo-hello":   "Installed",
		"buildd-demo-dh":      "Installed",
		"buildd-demo-broken":  "Failed",
		"buildd-demo-depwait": "Dep-Wait",
	}
	for pkg, want := range states {
		info := wb("--dist=bookworm", "--info", pkg)
		if !strings.Contains(info, "State               : "+want) {
			t.Errorf("%s: want state %s, --info says:\n%s", pkg, want, info)
		}
	}
	if info := wb("--dist=bookworm", "--info", "buildd-demo-depwait"); !strings.Contains(info, "libbuildd-demo-missing-dev (>= 2)") {
		t.Errorf("dep-wait reply lost its dependency:\n%s", info)
	}

	// Mails: one log mail per build, nothing else (an error reply from
	// buildd-mail would land in the same outbox).
	subjects := outboxSubjects(t, filepath.Join(dir, "home", "outbox", "new"))
	arch := hostArch(t)
	wantSubjects := []string{
		"Log for failed build of buildd-demo-broken_1.0 on " + arch + " (dist=bookworm)",
		"Log for failed build of buildd-demo-depwait_1.0 on " + arch + " (dist=bookworm)",
		"Log for successful build of buildd-demo-dh_1.0 on " + arch + " (dist=bookworm)",
		"Log for successful build of buildd-demo-hello_1.0 on " + arch + " (dist=bookworm)",
	}
	if strings.Join(subjects, "\n") != strings.Join(wantSubjects, "\n") {
		t.Errorf("outbox subjects:\n%s\nwant:\n%s", strings.Join(subjects, "\n"), strings.Join(wantSubjects, "\n"))
	}

	// The archive holds what was uploaded.
	list, err := exec.Command("reprepro", "-b", filepath.Join(dir, "archive"), "-T", "deb",
		"--list-format", "${package}_${version}\n", "list", "bookworm").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"buildd-demo-hello_1.0", "buildd-demo-dh_1.0"} {
		if !strings.Contains(string(list), want+"\n") {
			t.Errorf("archive lacks %s:\n%s", want, list)
		}
	}

	// No working snapshot is left.
	ents, err := os.ReadDir(filepath.Join(dir, "machines", "bookworm-"+hostArch(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "work-") {
			t.Errorf("working snapshot left behind: %s", e.Name())
		}
	}

	// A second run is quick and changes nothing.
	start := time.Now()
	again := run("run")
	if !strings.Contains(again, "nothing needs building") {
		t.Errorf("second run built again:\n%s", again)
	}
	t.Logf("second run took %v", time.Since(start))

	run("clean")
	cleaned = true
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after clean", dir)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mounts, []byte(dir)) {
		t.Errorf("a mount under %s is left after clean", dir)
	}
	loops, _ := exec.Command("losetup", "-a").Output()
	if bytes.Contains(loops, []byte(dir)) {
		t.Errorf("a loop device on %s is left after clean:\n%s", dir, loops)
	}
}

func outboxSubjects(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		r, err := mail.CreateReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		s, _ := r.Header.Subject()
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func hostArch(t *testing.T) string {
	b, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

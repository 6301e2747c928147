package machinetest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ELFMachine is readelf's Machine ("AArch64", "Advanced Micro Devices
// X86-64") of member path of the .deb built in a test machine.
func ELFMachine(t testing.TB, deb, path string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	out, err := exec.Command("readelf", "-h", filepath.Join(dir, path)).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf -h %s: %v\n%s", path, err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Machine:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

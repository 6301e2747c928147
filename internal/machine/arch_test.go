package machine

import (
	"strings"
	"testing"
)

// TestCheckBinfmt: what each state of binfmt_misc (as its files read under
// testdata/binfmt) is taken to be, and the advice given.
func TestCheckBinfmt(t *testing.T) {
	tests := []struct {
		dir, arch, want string
	}{
		{"ok", "arm64", ""},
		{"ok", "armhf", "no qemu-arm entry: apt-get install qemu-user-static, then register it: cat /usr/lib/binfmt.d/qemu-arm.conf"},
		{"unmounted", "arm64", "which is not mounted: mount -t binfmt_misc binfmt_misc testdata/binfmt/unmounted"},
		{"off", "arm64", "binfmt_misc is disabled: echo 1 > testdata/binfmt/off/status"},
		{"none", "arm64", "no qemu-aarch64 entry: apt-get install qemu-user-static"},
		{"entry-off", "arm64", "entry qemu-aarch64 is disabled: echo 1 > testdata/binfmt/entry-off/qemu-aarch64"},
		{"no-fix", "arm64", `lacks the fix-binary flag F (flags "OC")`},
		{"ok", "m68k", "architecture m68k: no qemu-user emulation known for it"},
	}
	for _, tt := range tests {
		t.Run(tt.dir+"-"+tt.arch, func(t *testing.T) {
			err := checkBinfmt("testdata/binfmt/"+tt.dir, tt.arch)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("%v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}

package main

import (
	"strings"
	"testing"
)

// TestMachineCLI covers the command line of `buildd machine` up to the
// machines_dir (the commands themselves need btrfs: see internal/machine
// and buildd/build's TestKillThenClean).
func TestMachineCLI(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"no command", nil, 2, "usage: buildd machine"},
		{"unknown command", []string{"bogus"}, 2, "usage: buildd machine"},
		{"missing argument", []string{"create"}, 2, "usage: buildd machine"},
		{"extra argument", []string{"list", "x"}, 2, "usage: buildd machine"},
		{"unknown flag", []string{"list", "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"no config", []string{"--config", "/nonexistent/buildd.conf", "list"}, 1, "buildd machine: "},
		{"no machines_dir", []string{"clean", "--machines-dir", "/nonexistent/machines"}, 1, "buildd machine: machines_dir /nonexistent/machines: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := machineCLI(tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantStderr) || stdout.Len() != 0 {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stderr with %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"buildd/internal/hosttest"
)

// TestMain lets the tests run this program: the test binary is
// buildd-uploader when BE_BUILDD_UPLOADER=1.
func TestMain(m *testing.M) {
	if os.Getenv("BE_BUILDD_UPLOADER") == "1" {
		os.Args = append([]string{"buildd-uploader"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCLI(t *testing.T) {
	h := hosttest.New(t, "")
	os.MkdirAll(h.Home.Path("upload"), 0o755)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"dump", []string{"--config", h.Cfg.File, "--dump-config"}, 0, "upload_tool = \"dput\"\nupload_timeout = 600\n", ""},
		{"run", []string{"--config", h.Cfg.File}, 0, "", ""},
		{"no config", []string{"--config", "/nonexistent/buildd.conf"}, 1, "", "/nonexistent/buildd.conf"},
		{"argument", []string{"--config", h.Cfg.File, "now"}, 2, "", `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], tc.args...)
			cmd.Env = append(os.Environ(), "BE_BUILDD_UPLOADER=1")
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
			}
		})
	}
	log, _ := os.ReadFile(h.Cfg.DaemonLogFile)
	if !strings.Contains(string(log), "buildd-uploader[") || !strings.Contains(string(log), "Nothing to do for upload") {
		t.Errorf("daemon.log:\n%s", log)
	}
}

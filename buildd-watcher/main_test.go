package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"buildd/internal/hosttest"
)

// TestMain lets the tests run this program: the test binary is
// buildd-watcher when BE_BUILDD_WATCHER=1.
func TestMain(m *testing.M) {
	if os.Getenv("BE_BUILDD_WATCHER") == "1" {
		os.Args = append([]string{"buildd-watcher"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func watcher(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BE_BUILDD_WATCHER=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCLI(t *testing.T) {
	h := hosttest.New(t, "")
	os.WriteFile(h.Home.Path("NO-DAEMON-PLEASE"), nil, 0o644)
	bad := hosttest.New(t, "upload_tool = \"dput\"\nwatcher_schedule = \"5,20,35,50 * * *\"")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"dump", []string{"--config", h.Cfg.File, "--dump-config"}, 0, `watcher_schedule = "5,20,35,50 * * * *"`, ""},
		{"next", []string{"--config", h.Cfg.File, "--next"}, 0, "JOB       SPEC                 LAST RUN  NEXT RUN\nuploader  10,25,40,55 * * * *  never", ""},
		{"run", []string{"--config", h.Cfg.File}, 0, "", ""},
		{"bad spec", []string{"--config", bad.Cfg.File, "--next"}, 1, "", bad.Cfg.File + `:8: watcher_schedule: bad cron spec "5,20,35,50 * * *": expected exactly 5 fields, found 4`},
		{"bad spec schedule", []string{"--config", bad.Cfg.File, "--schedule"}, 1, "", bad.Cfg.File + ":8: watcher_schedule: bad cron spec"},
		{"no config", []string{"--config", "/nonexistent/buildd.conf"}, 1, "", "/nonexistent/buildd.conf"},
		{"argument", []string{"--config", h.Cfg.File, "now"}, 2, "", `unexpected argument "now"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := watcher(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errs)
			}
		})
	}
	log, _ := os.ReadFile(h.Cfg.DaemonLogFile)
	if !strings.Contains(string(log), "NO-DAEMON-PLEASE exists, not starting daemon") {
		t.Errorf("daemon.log:\n%s", log)
	}
	if len(h.MailsAbout(t, "starting build host monitor")) != 1 {
		t.Errorf("mails %+v", h.Mails(t))
	}
}

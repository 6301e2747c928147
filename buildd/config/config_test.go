package config

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"unknown-key.conf", `unknown-key.conf:3: unknown key "max_bild"`},
		{"unknown-dist-key.conf", `unknown-dist-key.conf:10: unknown key "dist.no_auto_bild"`},
		{"wrong-type.conf", `wrong-type.conf:2: `},
		{"missing-arch.conf", `missing-arch.conf:7: [[dist]] trixie: missing required key "built_architecture"`},
		{"missing-home.conf", `missing-home.conf:1: missing required key "home"`},
		{"bad-regex.conf", `bad-regex.conf:6: no_build_regex: `},
		{"syntax.conf", `syntax.conf:2: `},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want error %q", tt.file, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s) = %q, want it to contain %q", tt.file, err, tt.want)
			}
		})
	}
}

func TestLoadMinimal(t *testing.T) {
	c, err := Load("testdata/minimal.conf")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := c.Dist("bookworm")
	if !ok {
		t.Fatal("dist bookworm missing")
	}
	checks := []struct{ name, got, want string }{
		{"machine", d.Machine, "bookworm-amd64"},
		{"admin_mail", c.AdminMail, "buildd-admin@example.org"},
		{"outbox", c.Outbox, "/var/lib/buildd/outbox"},
		{"pidfile", c.PIDFile, "/var/lib/buildd/build/buildd.pid"},
		{"daemon_log_file", c.DaemonLogFile, "/var/lib/buildd/daemon.log"},
		{"upload queue", c.UploadQueues[0].DuploadLocalQueueDir, "upload"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.IdleSleepTime != 300 || c.DelayAfterGiveBack != 480 || c.MaxSbuildFails != 2 {
		t.Errorf("classic defaults wrong: %+v", c)
	}
	if c.ReplyWindow != 60 || c.MQueueMaxAge != 72 {
		t.Errorf("reply_window %d, mqueue_max_age %d; want 60, 72", c.ReplyWindow, c.MQueueMaxAge)
	}
}

func TestDumpRoundTrip(t *testing.T) {
	c, err := Load("testdata/minimal.conf")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := Parse("dump", buf.Bytes())
	if err != nil {
		t.Fatalf("dumped config does not load again: %v\n%s", err, buf.String())
	}
	if again.MaxBuild != c.MaxBuild || again.Dists[0].Machine != c.Dists[0].Machine {
		t.Errorf("round trip changed the config")
	}
}

func TestPath(t *testing.T) {
	t.Setenv(EnvVar, "")
	if got := Path(""); got != DefaultPath {
		t.Errorf("Path() = %q, want %q", got, DefaultPath)
	}
	t.Setenv(EnvVar, "/tmp/x.conf")
	if got := Path(""); got != "/tmp/x.conf" {
		t.Errorf("Path() with env = %q", got)
	}
	if got := Path("/a.conf"); got != "/a.conf" {
		t.Errorf("Path(flag) = %q", got)
	}
}

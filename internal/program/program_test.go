package program

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	t.Setenv("BUILDD_CONF", "/env/buildd.conf")
	tests := []struct {
		args     []string
		wantPath string
		wantDump bool
	}{
		{nil, "/env/buildd.conf", false},
		{[]string{"--config", "/x/buildd.conf"}, "/x/buildd.conf", false},
		{[]string{"--dump-config", "--config=/y.conf"}, "/y.conf", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.Flags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if o.ConfigPath() != tt.wantPath || o.DumpConfig != tt.wantDump {
				t.Errorf("ConfigPath %q, DumpConfig %v; want %q, %v", o.ConfigPath(), o.DumpConfig, tt.wantPath, tt.wantDump)
			}
		})
	}
}

// writeConfig writes a config for a home in a fresh directory, with extra
// appended to its top-level keys, and returns its path and the home.
func writeConfig(t *testing.T, extra string) (path, home string) {
	t.Helper()
	dir := t.TempDir()
	home = filepath.Join(dir, "home")
	path = filepath.Join(dir, "buildd.conf")
	text := "home = \"" + home + "\"\n" + extra + "\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	return path, home
}

func TestStart(t *testing.T) {
	good, goodHome := writeConfig(t, "")
	// A daemon log under a regular file cannot be opened.
	badLog, _ := writeConfig(t, "daemon_log_file = \"/dev/null/daemon.log\"")
	tests := []struct {
		name       string
		o          Options
		wantEnv    bool
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"run", Options{Config: good}, true, 0, "", ""},
		{"dump", Options{Config: good, DumpConfig: true}, false, 0, `home = "` + goodHome + `"`, ""},
		{"no config", Options{Config: good + ".missing"}, false, 1, "", "prog: config: open " + good + ".missing"},
		{"dump, no config", Options{Config: good + ".missing", DumpConfig: true}, false, 1, "", "prog: config: open "},
		{"log cannot be opened", Options{Config: badLog}, false, 1, "", "prog: open log: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			env, code := tt.o.Start("prog", &stdout, &stderr)
			if (env != nil) != tt.wantEnv || code != tt.wantCode {
				t.Fatalf("Start: env %v, code %d; want env %v, code %d (stderr %q)", env, code, tt.wantEnv, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || (tt.wantStdout == "") != (stdout.Len() == 0) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || (tt.wantStderr == "") != (stderr.Len() == 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
			if env == nil {
				return
			}
			defer env.Log.Close()
			if env.Home.Dir != goodHome || env.Mail == nil || env.Cfg.File != good {
				t.Errorf("Env: home %q, mailer %v, config %q", env.Home.Dir, env.Mail, env.Cfg.File)
			}
			env.Log.Printf("hello")
			b, err := os.ReadFile(filepath.Join(goodHome, "daemon.log"))
			if err != nil || !strings.Contains(string(b), "prog[") || !strings.Contains(string(b), "hello") {
				t.Errorf("daemon.log: %q, %v", b, err)
			}
		})
	}
}

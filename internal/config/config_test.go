package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
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
		{"negative-error-mail-window.conf", `negative-error-mail-window.conf:3: error_mail_window = -1: must be at least 1 (seconds)`},
		{"zero-idle-sleep.conf", `zero-idle-sleep.conf:2: idle_sleep_time = 0: must be at least 1 (seconds)`},
		{"nice-out-of-range.conf", `nice-out-of-range.conf:2: nice_level = 20: must be from -20 to 19 (a nice value)`},
		{"negative-log-keep.conf", `negative-log-keep.conf:3: pkg_log_keep = -7: must be at least 0 (days)`},
		{"negative-min-age.conf", `negative-min-age.conf:10: [[dist]] trixie: wanna_build_min_age = -1: must be at least 0 (days)`},
		{"home-root.conf", `home-root.conf:2: home "/" is a system directory`},
		{"home-etc.conf", `home-etc.conf:1: home "/etc/" is a system directory`},
		{"home-dotdot.conf", `home-dotdot.conf:1: home "/var/lib/buildd/../.." is a system directory`},
		{"home-relative.conf", `home-relative.conf:1: home "buildd" is not an absolute path`},
		{"error-reply-rate-too-high.conf", `error-reply-rate-too-high.conf:2: error_reply_rate = 101: must be from 0 to 100 (error replies an hour to one address; 0: none)`},
		{"duplicate-dist-arch.conf", `duplicate-dist-arch.conf:11: [[dist]] bookworm/amd64: dist_name "bookworm" with built_architecture "amd64" is already defined at line 3: a dist is built once per architecture`},
		{"arch-all-twice.conf", `arch-all-twice.conf:11: [[dist]] bookworm/arm64: build_arch_all is already set for bookworm at line 3: `},
		{"slash-in-dist.conf", `slash-in-dist.conf:4: [[dist]] dist_name = "stretch/updates": a name without "/", blanks or control characters`},
		{"blank-in-arch.conf", `blank-in-arch.conf:5: [[dist]] built_architecture = "amd64 arm64": a name without "/"`},
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
	d, err := c.Resolve("bookworm", "")
	if err != nil {
		t.Fatal(err)
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
	if c.IdleSleepTime != 300 || c.MaxSbuildFails != 2 {
		t.Errorf("classic defaults wrong: %+v", c)
	}
	// The classic buildd's 8 hours were one builder's own wait; the
	// queue's backoff holds a package from every builder, and grows.
	if c.DelayAfterGiveBack != 15 || c.GiveBackRetries != 5 || c.SlotMemory != 0 || c.QuarantineProbe != "" {
		t.Errorf("delay_after_give_back %d, give_back_retries %d, slot_memory %d, quarantine_probe %q; want 15, 5, 0, none",
			c.DelayAfterGiveBack, c.GiveBackRetries, c.SlotMemory, c.QuarantineProbe)
	}
	if c.ReplyWindow != 60 || c.MQueueMaxAge != 72 || c.ErrorReplyRate != 5 {
		t.Errorf("reply_window %d, mqueue_max_age %d, error_reply_rate %d; want 60, 72, 5", c.ReplyWindow, c.MQueueMaxAge, c.ErrorReplyRate)
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

// TestNumberRanges: every numeric key refuses a negative value with an
// error naming the file, the line, the key and the value; the bounds
// themselves load; and every int key of Config has a range.
func TestNumberRanges(t *testing.T) {
	base, err := os.ReadFile("testdata/minimal.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	keys := map[string]bool{}
	for _, r := range c.ranges() {
		keys[r.key] = true
		conf := fmt.Sprintf("%s = %d\n%s", r.key, r.min-1, base)
		_, err := Parse("buildd.conf", []byte(conf))
		want := fmt.Sprintf("buildd.conf:1: %s = %d: must be ", r.key, r.min-1)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s = %d: %v, want %q...", r.key, r.min-1, err, want)
		}
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if key := f.Tag.Get("toml"); f.Type.Kind() == reflect.Int && !keys[key] {
			t.Errorf("int key %s (%s) has no range", key, f.Name)
		}
	}
	bounds, err := Load("testdata/limits-at-bounds.conf")
	if err != nil {
		t.Fatalf("the bounds do not load: %v", err)
	}
	if bounds.NiceLevel != -20 || bounds.NoOutputTime != 0 || bounds.WarningAge != 1 || bounds.ErrorReplyRate != 0 {
		t.Errorf("bounds read as nice_level %d, no_output_timeout %d, warning_age %d, error_reply_rate %d", bounds.NiceLevel, bounds.NoOutputTime, bounds.WarningAge, bounds.ErrorReplyRate)
	}
}

// TestWannaBuildListenDB: wanna_build_listen_db defaults to
// wanna_build_db, and is refused, naming the line, when it is not a
// PostgreSQL URL or the queue is not on PostgreSQL.
func TestWannaBuildListenDB(t *testing.T) {
	const pgDB = "postgresql://buildd_amd64@wb.example.org:6432/wanna_build"
	const direct = "postgresql://buildd_amd64@wb.example.org/wanna_build"
	tests := []struct {
		name, db, listen string
		want, wantErr    string
	}{
		{"default is the queue's URL", pgDB, "", pgDB, ""},
		{"default on a bbolt queue", "/var/lib/buildd/wanna-build.db", "", "/var/lib/buildd/wanna-build.db", ""},
		{"direct listener beside a pooler", pgDB, direct, direct, ""},
		{"the default written out, on a bbolt queue", "/var/lib/buildd/wanna-build.db", "/var/lib/buildd/wanna-build.db", "/var/lib/buildd/wanna-build.db", ""},
		{"postgres:// scheme", pgDB, "postgres://wb.example.org/wanna_build", "postgres://wb.example.org/wanna_build", ""},
		{"not a URL", pgDB, "wb.example.org", "", `buildd.conf:2: wanna_build_listen_db = "wb.example.org": not a postgres:// or postgresql:// URL`},
		{"bbolt queue", "/var/lib/buildd/wanna-build.db", direct, "", `buildd.conf:2: wanna_build_listen_db is set, but wanna_build_db ("/var/lib/buildd/wanna-build.db") is not a PostgreSQL URL`},
		{"queue unset", "", direct, "", `buildd.conf:2: wanna_build_listen_db is set, but wanna_build_db (unset: a bbolt file in home) is not a PostgreSQL URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := "home = \"/var/lib/buildd\"\n"
			if tt.listen != "" {
				conf += fmt.Sprintf("wanna_build_listen_db = %q\n", tt.listen)
			}
			if tt.db != "" {
				conf += fmt.Sprintf("wanna_build_db = %q\n", tt.db)
			}
			conf += "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n"
			c, err := Parse("buildd.conf", []byte(conf))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Parse: %v, want %q...", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.WannaBuildListenDB != tt.want {
				t.Errorf("wanna_build_listen_db = %q, want %q", c.WannaBuildListenDB, tt.want)
			}
		})
	}
}

// TestSeveralArches: one dist built for two architectures loads, each
// table with its own machine and settings; a lookup by dist and arch
// finds each, and a name without its arch (a classic line, an old record)
// means the dist's only arch, or nothing when the dist has two, with an
// error saying that the architecture is missing.
func TestSeveralArches(t *testing.T) {
	c, err := Load("testdata/two-arches.conf")
	if err != nil {
		t.Fatal(err)
	}
	amd64, ok := c.DistArch("bookworm", "amd64")
	if !ok || amd64.Machine != "bookworm-amd64" || !amd64.BuildArchAll || amd64.Where() != "bookworm/amd64" {
		t.Fatalf("bookworm/amd64: %+v, %v", amd64, ok)
	}
	arm64, ok := c.DistArch("bookworm", "arm64")
	if !ok || arm64.Machine != "bookworm-arm64" || arm64.WannaBuildSSHUser != "buildd_arm64" || arm64.BuildArchAll {
		t.Fatalf("bookworm/arm64: %+v, %v", arm64, ok)
	}
	if got := c.Arches("bookworm"); !reflect.DeepEqual(got, []string{"amd64", "arm64"}) {
		t.Errorf("Arches(bookworm) = %v", got)
	}
	tests := []struct {
		dist, arch string
		want       string // the table's Where, or the error's text
	}{
		{"bookworm", "amd64", "bookworm/amd64"},
		{"bookworm", "arm64", "bookworm/arm64"},
		{"trixie", "", "trixie/arm64"},
		{"trixie", "arm64", "trixie/arm64"},
		{"bookworm", "", "dist bookworm without an architecture: this host builds it for amd64 and arm64 (testdata/two-arches.conf), name one"},
		{"bookworm", "riscv64", "no [[dist]] bookworm for architecture riscv64 in testdata/two-arches.conf (it is built for amd64, arm64)"},
		{"trixie", "amd64", "no [[dist]] trixie for architecture amd64 in testdata/two-arches.conf (it is built for arm64)"},
		{"sid", "", "no [[dist]] sid in testdata/two-arches.conf"},
	}
	for _, tt := range tests {
		d, err := c.Resolve(tt.dist, tt.arch)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = d.Where()
		}
		if got != tt.want {
			t.Errorf("Resolve(%q, %q) = %q, want %q", tt.dist, tt.arch, got, tt.want)
		}
	}
	trixie, _ := c.DistArch("trixie", "arm64")
	means := []struct {
		d          *Dist
		dist, arch string
		want       bool
		ambiguous  bool
	}{
		{amd64, "bookworm", "amd64", true, false},
		{amd64, "bookworm", "arm64", false, false},
		{arm64, "bookworm", "arm64", true, false},
		{amd64, "bookworm", "", false, true},
		{arm64, "bookworm", "", false, true},
		{trixie, "trixie", "", true, false},
		{trixie, "bookworm", "", false, false},
		{trixie, "trixie", "amd64", false, false},
	}
	for _, m := range means {
		got, err := c.Means(m.d, m.dist, m.arch)
		if got != m.want || (err != nil) != m.ambiguous {
			t.Errorf("Means(%s, %q, %q) = %v, %v; want %v, ambiguous %v", m.d.Where(), m.dist, m.arch, got, err, m.want, m.ambiguous)
		}
	}
	// A copy of a table (a running job's, of the config it started
	// with) is still the same dist and arch.
	cp := *trixie
	if ok, err := c.Means(&cp, "trixie", ""); !ok || err != nil {
		t.Errorf("Means(copy of trixie/arm64, trixie, \"\") = %v, %v", ok, err)
	}
}

// TestREADMEConfigReference: the README's configuration reference has a
// row for every key the config takes, in the table of its place (top
// level, [[dist]], [[upload_queue]]), and none for a key it does not
// take.
func TestREADMEConfigReference(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start, end := strings.Index(text, "\n## Configuration reference\n"), strings.Index(text, "\n## Command reference\n")
	if start < 0 || end < start {
		t.Fatal("README.md: no Configuration reference section before the Command reference")
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)`")
	tables := map[string][]string{} // the section's title: its keys
	for _, sec := range strings.Split(text[start:end], "\n### ")[1:] {
		title, body, _ := strings.Cut(sec, "\n")
		for _, m := range row.FindAllStringSubmatch(body, -1) {
			tables[title] = append(tables[title], m[1])
		}
	}
	for _, place := range []struct {
		code   []string
		titles []string
	}{
		{TableKeys(Config{}), []string{"Our keys (top level)", "Classic keys (top level)"}},
		{TableKeys(Dist{}), []string{"`[[dist]]` (one table per distribution; order = priority)"}},
		{TableKeys(UploadQueue{}), []string{"`[[upload_queue]]`"}},
	} {
		var documented []string
		for _, title := range place.titles {
			if _, ok := tables[title]; !ok {
				t.Errorf("README.md: no table %q in the Configuration reference", title)
			}
			documented = append(documented, tables[title]...)
		}
		for _, k := range place.code {
			if !slices.Contains(documented, k) {
				t.Errorf("README.md: %s: no row for the key %q", strings.Join(place.titles, ", "), k)
			}
		}
		for _, k := range documented {
			if !slices.Contains(place.code, k) {
				t.Errorf("README.md: %s: a row for %q, which the config does not take", strings.Join(place.titles, ", "), k)
			}
		}
	}
}

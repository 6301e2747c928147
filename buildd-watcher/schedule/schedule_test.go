package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/hosttest"
)

func newLog(t *testing.T, h *hosttest.Host) *daemonlog.Log {
	t.Helper()
	log, err := daemonlog.Open(h.Cfg.DaemonLogFile, "buildd-watcher")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	return log
}

func TestBadSpec(t *testing.T) {
	for _, tc := range []struct {
		conf string
		want string
	}{
		{"uploader_schedule = \"61 * * * *\"", `:7: uploader_schedule: bad cron spec "61 * * * *": end of range (61) above maximum (59)`},
		{"upload_tool = \"dput\"\nwatcher_schedule = \"every day\"", `:8: watcher_schedule: bad cron spec "every day": expected exactly 5 fields, found 2`},
		{"\n\nupgrade_schedule = \"30 3 * *\"", `:9: upgrade_schedule: bad cron spec "30 3 * *"`},
		{"upgrade_schedule = \"@sometimes\"", `:7: upgrade_schedule: bad cron spec "@sometimes"`},
	} {
		h := hosttest.New(t, tc.conf)
		_, err := New(h.Cfg, newLog(t, h), Jobs(h.Cfg, nil))
		if err == nil || !strings.HasPrefix(err.Error(), h.Cfg.File+tc.want) {
			t.Errorf("%q: error %v, want %s%s", tc.conf, err, h.Cfg.File, tc.want)
		}
	}
}

// recordLast writes schedule-state as a scheduler would have left it.
func recordLast(t *testing.T, h *hosttest.Host, runs map[string]time.Time) {
	t.Helper()
	b, _ := json.Marshal(runs)
	if err := os.WriteFile(h.Home.Path("schedule-state"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func counting(name, spec string, n *atomic.Int32, d time.Duration) Job {
	return Job{Name: name, Key: name + "_schedule", Spec: spec, Run: func(ctx context.Context) error {
		n.Add(1)
		time.Sleep(d)
		return nil
	}}
}

func TestCatchUpAndNext(t *testing.T) {
	h := hosttest.New(t, "")
	log := newLog(t, h)
	var missed, onTime, fresh atomic.Int32
	jobs := []Job{
		counting("missed", "0 * * * *", &missed, 0),
		counting("ontime", "0 3 1 1 *", &onTime, 0),
		counting("fresh", "0 3 1 1 *", &fresh, 0),
	}
	now := time.Now()
	recordLast(t, h, map[string]time.Time{"missed": now.Add(-2 * time.Hour), "ontime": now.Add(-time.Minute)})
	s, err := New(h.Cfg, log, jobs)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s.Next(now)
	if err != nil {
		t.Fatal(err)
	}
	if !entries[0].Missed || entries[1].Missed || entries[2].Missed || !entries[2].Last.IsZero() {
		t.Fatalf("entries %+v", entries)
	}
	var out bytes.Buffer
	PrintNext(&out, entries)
	if !strings.Contains(out.String(), "at start (missed), then ") || !regexp.MustCompile(`\nfresh +0 3 1 1 \* +never +\d{4}-`).MatchString(out.String()) {
		t.Errorf("--next:\n%s", out.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if missed.Load() != 1 || onTime.Load() != 0 || fresh.Load() != 0 {
		t.Errorf("runs: missed %d, ontime %d, fresh %d", missed.Load(), onTime.Load(), fresh.Load())
	}
	entries, _ = s.Next(time.Now())
	for _, e := range entries {
		if e.Missed || e.Last.IsZero() {
			t.Errorf("after the run: %+v", e)
		}
	}
	if !entries[0].Last.After(now) {
		t.Errorf("missed job's last run not recorded: %v", entries[0].Last)
	}
}

func TestSkipIfStillRunningAndRecover(t *testing.T) {
	h := hosttest.New(t, "")
	var slow, panics, after atomic.Int32
	jobs := []Job{
		counting("slow", "@every 1s", &slow, 2500*time.Millisecond),
		{Name: "panics", Spec: "@every 1s", Run: func(context.Context) error { panics.Add(1); panic("boom") }},
		counting("after", "@every 1s", &after, 0),
	}
	s, err := New(h.Cfg, newLog(t, h), jobs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	s.Run(ctx)
	if n := slow.Load(); n < 1 || n > 2 {
		t.Errorf("slow job ran %d times in 3.5 s with 2.5 s runs (want it skipped while running)", n)
	}
	if panics.Load() < 2 || after.Load() < 2 {
		t.Errorf("after a panic: panics %d, after %d", panics.Load(), after.Load())
	}
	b, _ := os.ReadFile(h.Cfg.DaemonLogFile)
	if !strings.Contains(string(b), "panic") || !strings.Contains(string(b), "boom") {
		t.Errorf("panic not logged:\n%s", b)
	}
}

// TestStandardJobs runs the real uploader and watcher jobs from the
// scheduler on a real home.
func TestStandardJobs(t *testing.T) {
	h := hosttest.New(t, "uploader_schedule = \"@every 1s\"\nwatcher_schedule = \"@every 1s\"\nupgrade_schedule = \"0 3 1 1 *\"")
	os.WriteFile(h.Home.Path("NO-DAEMON-PLEASE"), nil, 0o644)
	log := newLog(t, h)
	s, err := New(h.Cfg, log, Jobs(h.Cfg, log))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(h.Cfg.DaemonLogFile)
	for _, want := range []string{"uploader: done", "watcher: done", "NO-DAEMON-PLEASE exists, not starting daemon"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("daemon.log lacks %q:\n%s", want, b)
		}
	}
	entries, _ := s.Next(time.Now())
	if entries[0].Last.IsZero() || entries[1].Last.IsZero() {
		t.Errorf("runs not recorded: %+v", entries)
	}
}

// TestShippedFiles checks the top-level dist/: the cron lines (shipped
// commented out) parse as cron specs and are the config's default
// schedules, each run only while its program is installed, and the units
// start the programs.
func TestShippedFiles(t *testing.T) {
	b, err := os.ReadFile("../../dist/buildd.cron")
	if err != nil {
		t.Fatal(err)
	}
	d := config.Defaults()
	want := map[string]string{
		"@BINDIR@/buildd-uploader":          d.UploadSched,
		"@BINDIR@/buildd-watcher":           d.WatcherSched,
		"@BINDIR@/buildd-watcher --upgrade": d.UpgradeSched,
	}
	job := regexp.MustCompile(`^#([0-9*,]+(?:\s+\S+){4})\s+(\S+)\s+test -x (\S+) && (.*)$`)
	for i, l := range strings.Split(string(b), "\n") {
		m := job.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		spec, user, cmd := strings.Join(strings.Fields(m[1]), " "), m[2], m[4]
		if prog, _, _ := strings.Cut(cmd, " "); prog != m[3] {
			t.Errorf("buildd.cron:%d: tests %s, runs %s", i+1, m[3], prog)
		}
		if _, err := cron.ParseStandard(spec); err != nil {
			t.Errorf("buildd.cron:%d: %v", i+1, err)
		}
		if user != "root" || want[cmd] != normalize(spec) {
			t.Errorf("buildd.cron:%d: %q as %s, want %q", i+1, spec, user, want[cmd])
		}
		delete(want, cmd)
	}
	if len(want) > 0 {
		t.Errorf("buildd.cron lacks %v", want)
	}
	for unit, exec := range map[string]string{
		"buildd.service":         "ExecStart=@BINDIR@/buildd --no-detach\n",
		"buildd-watcher.service": "ExecStart=@BINDIR@/buildd-watcher --schedule\n",
		"buildd-mail.service":    "ExecStart=@BINDIR@/buildd-mail --serve 127.0.0.1:2424 --lmtp\n",
	} {
		b, err := os.ReadFile("../../dist/" + unit)
		if err != nil || !strings.Contains(string(b), exec) || !strings.Contains(string(b), "[Install]\nWantedBy=multi-user.target\n") {
			t.Errorf("%s: %v\n%s", unit, err, b)
		}
	}
}

func normalize(spec string) string { return strings.Join(strings.Fields(spec), " ") }

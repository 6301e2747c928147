package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"buildd/internal/config"
	"buildd/internal/machine"
	"buildd/internal/queue"
)

// openFull opens a log on /dev/full: every write fails with ENOSPC, as on a
// full home volume.
func openFull(t *testing.T, limit int64) *logFile {
	t.Helper()
	l, err := openLog("/dev/full", limit)
	if err != nil {
		t.Skipf("SKIPPED: cannot open /dev/full for writing: %v", err)
	}
	return l
}

// TestLogFileWriteError: the first failure writing the log is kept and
// reported; later writes are still tried and return their own error, but
// do not replace it.
func TestLogFileWriteError(t *testing.T) {
	l := openFull(t, 0)
	if err := l.failed(); err != nil {
		t.Fatalf("failed before any write: %v", err)
	}
	n, err := l.Write([]byte("hello\n"))
	if !errors.Is(err, syscall.ENOSPC) || n != 0 {
		t.Fatalf("Write on /dev/full: %d, %v; want 0, ENOSPC", n, err)
	}
	if err := l.failed(); !errors.Is(err, syscall.ENOSPC) || err.Error() != syscall.ENOSPC.Error() {
		t.Fatalf("failed() = %v, want %v (without the log's name: the builder's message names it)", err, syscall.ENOSPC)
	}
	// A different later failure (the file closed under the log) is
	// returned to its writer but the first one stays.
	l.f.Close()
	if _, err := l.Write([]byte("again\n")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write on a closed log: %v, want %v", err, os.ErrClosed)
	}
	if err := l.failed(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("failed() after a second error = %v, want the first, ENOSPC", err)
	}
	if err := l.endBody(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("endBody() = %v, want the first failure", err)
	}
}

// TestLogFileOK: a log that could be written reports no failure, through
// the cap, the tail and close.
func TestLogFileOK(t *testing.T) {
	p := filepath.Join(t.TempDir(), "build.log")
	l, err := openLog(p, 64)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := l.Write([]byte("0123456789abcdef\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.endBody(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("summary\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.failed(); err != nil {
		t.Fatalf("failed() = %v", err)
	}
	data, _ := os.ReadFile(p)
	if !strings.Contains(string(data), "log truncated: ") || !strings.HasSuffix(string(data), "0123456789abcdef\nsummary\n") {
		t.Errorf("log:\n%s", data)
	}
}

// TestLogFileTailError: past the head, output goes to the ring file; not
// being able to make it (or write it) is a failure of the log too.
func TestLogFileTailError(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "no-such-dir"))
	l, err := openLog(filepath.Join(t.TempDir(), "build.log"), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Write([]byte(strings.Repeat("x", 32))); err != nil {
		t.Fatalf("the head: %v", err)
	}
	if l.failed() != nil {
		t.Fatalf("failed within the head: %v", l.failed())
	}
	n, err := l.Write([]byte("past the head\n"))
	if err == nil || n != 0 {
		t.Fatalf("Write past the head without a tail file: %d, %v", n, err)
	}
	if err := l.failed(); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "the log's tail file") {
		t.Fatalf("failed() = %v, want the tail file's error", err)
	}
}

// TestLogFileMarkerError: writing the truncation marker and the tail when
// the body ends can fail too.
func TestLogFileMarkerError(t *testing.T) {
	l, err := openLog(filepath.Join(t.TempDir(), "build.log"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte(strings.Repeat("x", 100))); err != nil {
		t.Fatal(err)
	}
	if l.failed() != nil {
		t.Fatal(l.failed())
	}
	// The volume fills now: what is left to write goes to /dev/full.
	full := openFull(t, 0)
	l.f.Close()
	l.f = full.f
	if err := l.endBody(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("endBody() = %v, want ENOSPC", err)
	}
	if err := l.failed(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("failed() = %v, want ENOSPC", err)
	}
	l.Close()
}

// testBuilder is a builder with its log at logPath, as far as the summary
// needs one.
func testBuilder(t *testing.T, logPath string) *builder {
	t.Helper()
	cfg := config.Defaults()
	cfg.Home = t.TempDir()
	cfg.BuilderName = "buildd-test"
	dist := &config.Dist{DistName: "bookworm", BuiltArchitecture: "amd64", Machine: "bookworm-amd64"}
	b, err := newBuilder(&cfg, &machine.Store{Dir: t.TempDir()}, Job{Dist: dist, PkgVersion: "hello_2.10-3", LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// summaryOf is the Summary block of the log at p.
func summaryOf(t *testing.T, p string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(string(data), "| Summary ")
	if i < 0 {
		t.Fatalf("no Summary in\n%s", data)
	}
	kv := map[string]string{}
	for _, l := range strings.Split(string(data[i:]), "\n")[3:] {
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ": ")
		kv[k] = v
	}
	return kv
}

// TestLogFailureGivesBack: once the log has failed, the build is given back
// at stage log, over what the steps said (attempted, successful) but not
// over an earlier give-back; the summary, if it can be written, says so.
func TestLogFailureGivesBack(t *testing.T) {
	enospc := errors.New("no space left on device (simulated)")
	for _, tc := range []struct {
		name   string
		before func(b *builder) // what the build did before the log failed
		after  func(b *builder) // what it did after
		stage  string
		msg    string
	}{
		{name: "step-attempted-after-failure", after: func(b *builder) {
			b.fail(Attempted, StageBuild, "build of hello_2.10-3 failed: dpkg-buildpackage: exit status 2")
		}, stage: StageLog, msg: "cannot write the build log %s: " + enospc.Error()},
		{name: "step-given-back-after-failure", after: func(b *builder) {
			b.fail(GivenBack, StageBuild, "build of hello_2.10-3 killed: no output")
		}, stage: StageLog, msg: "cannot write the build log %s: " + enospc.Error()},
		{name: "attempted-before-failure", before: func(b *builder) {
			b.fail(Attempted, StageBuild, "build of hello_2.10-3 failed: dpkg-buildpackage: exit status 2")
		}, stage: StageLog, msg: "cannot write the build log %s: " + enospc.Error()},
		{name: "successful", before: func(b *builder) { b.res.Status = Successful },
			stage: StageLog, msg: "cannot write the build log %s: " + enospc.Error()},
		{name: "given-back-before-failure", before: func(b *builder) {
			b.fail(GivenBack, StageFetch, "cannot fetch hello_2.10-3")
		}, stage: StageFetch, msg: "cannot fetch hello_2.10-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "build.log")
			b := testBuilder(t, p)
			if tc.before != nil {
				tc.before(b)
			}
			b.log.mu.Lock()
			b.log.record(enospc) // the volume filled, and was freed again before the summary
			b.log.mu.Unlock()
			if tc.after != nil {
				tc.after(b)
			}
			b.finish()
			msg := tc.msg
			if strings.Contains(msg, "%s") {
				msg = strings.Replace(msg, "%s", p, 1)
			}
			if b.res.Status != GivenBack || b.res.FailStage != tc.stage || b.res.Message != msg {
				t.Fatalf("result %s/%s %q, want given-back/%s %q", b.res.Status, b.res.FailStage, b.res.Message, tc.stage, msg)
			}
			kv := summaryOf(t, p)
			if kv["Status"] != string(GivenBack) || kv["Fail-Stage"] != tc.stage || kv["Fail-Reason"] != msg || kv["Class"] != string(queue.ClassInfra) {
				t.Errorf("summary %v", kv)
			}
			if b.res.Class != queue.ClassInfra {
				t.Errorf("class %s, want %s", b.res.Class, queue.ClassInfra)
			}
			if data, _ := os.ReadFile(p); tc.stage == StageLog && !strings.Contains(string(data), "\nE: "+msg+"\n") {
				t.Errorf("the log does not say why:\n%s", data)
			}
		})
	}
}

// TestLogFullThroughSummary: a log that cannot be written at all (the
// summary included) still makes a successful build given back.
func TestLogFullThroughSummary(t *testing.T) {
	if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err != nil {
		t.Skipf("SKIPPED: cannot open /dev/full for writing: %v", err)
	} else {
		f.Close()
	}
	b := testBuilder(t, "/dev/full")
	b.res.Status = Successful
	b.finish()
	if b.res.Status != GivenBack || b.res.FailStage != StageLog || !strings.HasSuffix(b.res.Message, "cannot write the build log /dev/full: no space left on device") {
		t.Fatalf("result %s/%s %q", b.res.Status, b.res.FailStage, b.res.Message)
	}
	// Successful set while the log was fine; it fails only in the summary.
	b = testBuilder(t, filepath.Join(t.TempDir(), "build.log"))
	b.res.Status = Successful
	full := openFull(t, 0)
	b.log.f.Close()
	b.log.f = full.f
	b.finish()
	if b.res.Status != GivenBack || b.res.FailStage != StageLog || b.res.Class != queue.ClassInfra {
		t.Fatalf("log failing in the summary: result %s/%s class %s %q", b.res.Status, b.res.FailStage, b.res.Class, b.res.Message)
	}
}

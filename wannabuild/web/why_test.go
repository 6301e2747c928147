package web

import (
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
)

func TestWhy(t *testing.T) {
	since := time.Date(2026, 11, 21, 7, 50, 43, 0, time.UTC).Unix()
	for _, tc := range []struct {
		name  string
		r     queue.Record
		ahead int
		want  string
	}{
		{"needs-build-ahead", queue.Record{State: queue.NeedsBuild}, 3, "waiting for a builder (3 in the queue before it)"},
		{"needs-build-first", queue.Record{State: queue.NeedsBuild}, 0, "waiting for a builder (0 in the queue before it)"},
		{"needs-build-unknown", queue.Record{State: queue.NeedsBuild}, -1, "waiting for a builder"},
		{"building", queue.Record{State: queue.Building, Builder: "buildd_arm64", StateChange: since}, -1, "being built by buildd_arm64 since 2026 Nov 21 07:50:43"},
		{"building-no-time", queue.Record{State: queue.Building, Builder: "b"}, -1, "being built by b"},
		{"built", queue.Record{State: queue.Built, Builder: "b"}, -1, "built by b, waiting for the upload"},
		{"attempted", queue.Record{State: queue.BuildAttempted, Builder: "b"}, -1, "a build by b failed, waiting for a decision (give back or Failed)"},
		{"uploaded", queue.Record{State: queue.Uploaded, Builder: "b"}, -1, "uploaded by b, waiting for the archive to install it"},
		{"installed", queue.Record{State: queue.Installed}, -1, "built and in the archive"},
		{"dep-wait", queue.Record{State: queue.DepWait, Depends: "libfoo-dev (>= 2), bar"}, -1, "waiting for libfoo-dev (>= 2), bar"},
		{"dep-wait-empty", queue.Record{State: queue.DepWait}, -1, "waiting for its dependencies"},
		{"bd-uninstallable", queue.Record{State: queue.BDUninstallable, BDProblem: "\nlibbar-dev (>= 3) is not installable\nmore"}, -1, "build-dependencies not installable: libbar-dev (>= 3) is not installable"},
		{"failed", queue.Record{State: queue.Failed, Failed: "error: foo.c:3: boom\nline 2"}, -1, "failed: error: foo.c:3: boom"},
		{"failed-empty", queue.Record{State: queue.Failed}, -1, "failed (no reason given)"},
		{"failed-controls", queue.Record{State: queue.Failed, Failed: "\x1b[31mred\x00"}, -1, `failed: \x1b[31mred\x00`},
		{"not-for-us", queue.Record{State: queue.NotForUs, Notes: "not-for-us"}, -1, "not built for this architecture (not-for-us)"},
		{"auto-not-for-us", queue.Record{State: queue.AutoNotForUs}, -1, "not built for this architecture"},
		{"failed-removed", queue.Record{State: queue.FailedRemoved}, -1, "failed, and removed from the archive"},
		{"dep-wait-removed", queue.Record{State: queue.DepWaitRemoved}, -1, "was waiting for dependencies, and removed from the archive"},
		{"install-wait", queue.Record{State: queue.InstallWait}, -1, "built, waiting for the archive to install it"},
		{"reupload-wait", queue.Record{State: queue.ReuploadWait}, -1, "waiting for a new upload"},
		{"unknown-state", queue.Record{State: "Odd\x07"}, -1, `in state Odd\x07`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := why(&tc.r, tc.ahead); got != tc.want {
				t.Errorf("why = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWhyBounded: a huge first line is quoted only in part.
func TestWhyBounded(t *testing.T) {
	got := why(&queue.Record{State: queue.Failed, Failed: strings.Repeat("x", 1<<20)}, -1)
	if len(got) > maxLine+100 || !strings.Contains(got, "more bytes not shown") {
		t.Errorf("why of a 1 MB reason: %d bytes, %.80q…", len(got), got)
	}
}

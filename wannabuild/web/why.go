package web

import (
	"strconv"

	"buildd/internal/queue"
)

// why answers "why isn't it building?" for r in one sentence, from its
// record alone (queueHealth.why answers for a Needs-Build package from
// its queue's builders and kept builds). ahead is the number of
// Needs-Build packages before r in the build order, or negative when it
// is not known.
func why(r *queue.Record, ahead int) string {
	by := ""
	if r.Builder != "" {
		by = " by " + visible(r.Builder)
	}
	since := ""
	if r.StateChange != 0 {
		since = " since " + r.StateChangeTime().Format(queue.TimeFormat)
	}
	switch r.State {
	case queue.NeedsBuild:
		if ahead >= 0 {
			return "waiting for a builder (" + strconv.Itoa(ahead) + " in the queue before it)"
		}
		return "waiting for a builder"
	case queue.Building:
		return "being built" + by + since
	case queue.Built:
		return "built" + by + ", waiting for the upload"
	case queue.BuildAttempted:
		return "a build" + by + " failed, waiting for a decision (give back or Failed)"
	case queue.Uploaded:
		return "uploaded" + by + ", waiting for the archive to install it"
	case queue.Installed:
		return "built and in the archive"
	case queue.DepWait:
		if d := firstLine(r.Depends); d != "" {
			return "waiting for " + d
		}
		return "waiting for its dependencies"
	case queue.BDUninstallable:
		if p := firstLine(r.BDProblem); p != "" {
			return "build-dependencies not installable: " + p
		}
		return "build-dependencies not installable"
	case queue.Failed:
		if f := firstLine(r.Failed); f != "" {
			return "failed: " + f
		}
		return "failed (no reason given)"
	case queue.NotForUs, queue.AutoNotForUs:
		if n := firstLine(r.Notes); n != "" {
			return "not built for this architecture (" + n + ")"
		}
		return "not built for this architecture"
	case queue.FailedRemoved:
		return "failed, and removed from the archive"
	case queue.DepWaitRemoved:
		return "was waiting for dependencies, and removed from the archive"
	case queue.InstallWait:
		return "built, waiting for the archive to install it"
	case queue.ReuploadWait:
		return "waiting for a new upload"
	}
	return "in state " + firstLine(string(r.State))
}

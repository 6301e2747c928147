// Package queue owns the wanna-build queue: the package states and the
// transitions between them with the classic checks and messages, the records
// and their transaction history, build priorities (calprio), the merge of
// archive indexes, the export format, the builders' build machine
// revisions and the revision a queue requires (revisions.go), the ended
// builds with their classes and resources, the backoff of give-backs and
// the builders' heartbeats (health.go), the Store
// interface a database implements (queue/bolt, queue/pg; queue/store
// opens the one a wanna_build_db names), and the Port a build host's
// programs reach one (dist, arch) through (queue/port), with the errors
// both speak.
package queue

import "strings"

// State is the state of a source package in the queue, spelled as the
// classic wanna-build spells it.
type State string

// The states of the classic wanna-build.
const (
	NeedsBuild      State = "Needs-Build"
	Building        State = "Building"
	Built           State = "Built"
	BuildAttempted  State = "Build-Attempted"
	Uploaded        State = "Uploaded"
	Installed       State = "Installed"
	DepWait         State = "Dep-Wait"
	BDUninstallable State = "BD-Uninstallable"
	Failed          State = "Failed"
	NotForUs        State = "Not-For-Us"
	AutoNotForUs    State = "Auto-Not-For-Us"
	FailedRemoved   State = "Failed-Removed"
	DepWaitRemoved  State = "Dep-Wait-Removed"
	InstallWait     State = "Install-Wait"
	ReuploadWait    State = "Reupload-Wait"
)

// States lists every state, in the classic order.
var States = []State{
	NeedsBuild, Building, Built, BuildAttempted, Uploaded, Installed,
	DepWait, BDUninstallable, Failed, NotForUs, AutoNotForUs,
	FailedRemoved, DepWaitRemoved, InstallWait, ReuploadWait,
}

// ParseState returns the state named s, case-insensitively
// ("needs-build" is Needs-Build).
func ParseState(s string) (State, bool) {
	for _, st := range States {
		if strings.EqualFold(string(st), s) {
			return st, true
		}
	}
	return "", false
}

func (s State) in(list ...State) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

func joinStates(list []State) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

package web

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"buildd/internal/queue"
)

// maxHistory is the most history lines a package page shows: the newest.
const maxHistory = 1000

// packagePage is "/package/SRC": the package in every queue that has it,
// with its kept builds there, and its history.
type packagePage struct {
	Package        string        `json:"package"`
	Cells          []packageCell `json:"cells"`
	History        []historyLine `json:"history"`
	HistoryOmitted int           `json:"history_omitted,omitempty"` // older lines not shown
}

// HasBuilds reports whether any queue keeps a build of the package.
func (p *packagePage) HasBuilds() bool {
	for _, c := range p.Cells {
		if len(c.Builds) > 0 {
			return true
		}
	}
	return false
}

// packageCell is the package in one (distribution, architecture).
type packageCell struct {
	Dist          string `json:"dist"`
	Arch          string `json:"arch"`
	Version       string `json:"version"`
	State         string `json:"state"`
	PreviousState string `json:"previous_state,omitempty"`
	Builder       string `json:"builder,omitempty"`
	ByAdmin       bool   `json:"by_admin,omitempty"` // Builder is the admin's login, no builder of the queue (queueHealth.byAdmin)
	Since         string `json:"since,omitempty"`    // the state change, queue.TimeFormat UTC
	SinceUnix     int64  `json:"since_unix,omitempty"`
	Section       string `json:"section,omitempty"`
	Priority      string `json:"priority,omitempty"`
	Notes         string `json:"notes,omitempty"`
	BuildPri      int    `json:"build_priority,omitempty"`
	PermBuildPri  int    `json:"perm_build_priority,omitempty"`
	CalPrio       int    `json:"calprio"`
	Failed        string `json:"failed,omitempty"`
	Depends       string `json:"depends,omitempty"`
	BDProblem     string `json:"bd_problem,omitempty"`
	Why           string `json:"why"`
	// A Needs-Build package's expected duration (estimate.go), in
	// seconds, and where it comes from; its estimated start, when there
	// is one.
	Duration     int64       `json:"expected_duration_s,omitempty"`
	DurationFrom string      `json:"expected_duration_from,omitempty"`
	Start        string      `json:"estimated_start,omitempty"`
	StartUnix    int64       `json:"estimated_start_unix,omitempty"`
	Builds       []keptBuild `json:"builds"`                 // its kept builds, newest first
	Logs         []logRef    `json:"logs,omitempty"`         // its build logs, newest first (log.go)
	LogsOmitted  int         `json:"logs_omitted,omitempty"` // older logs not listed
}

// keptBuild is one ended build of the package the queue keeps
// (queue.BuildRecord), or the admin's --retry (class "retry").
type keptBuild struct {
	Time           string `json:"time"` // when it ended, queue.TimeFormat UTC
	TimeUnix       int64  `json:"time_unix"`
	Version        string `json:"version"`
	Builder        string `json:"builder"`
	ByAdmin        bool   `json:"by_admin,omitempty"` // Builder is no builder of the queue: the admin's --retry, say
	Outcome        string `json:"outcome,omitempty"`
	Class          string `json:"class"`
	Stage          string `json:"stage,omitempty"`
	PeakMemory     int64  `json:"peak_memory_kib"`
	CPUTime        int64  `json:"cpu_ms"`
	Disk           int64  `json:"disk_kib"`
	Wall           int64  `json:"wall_s"`
	SlotMemory     int64  `json:"slot_memory_kib"`
	RetryAfter     string `json:"retry_after,omitempty"` // a give-back's: not taken again before it, queue.TimeFormat UTC
	RetryAfterUnix int64  `json:"retry_after_unix,omitempty"`
	Held           string `json:"held,omitempty"` // a give-back's: held for the admin, and why

	Dist, Arch string `json:"-"` // its queue, for the page's table
}

// The measures of a kept build as a person reads them; "" when not
// measured.
func (b *keptBuild) PeakMemoryText() string { return sizeOrNone(b.PeakMemory) }
func (b *keptBuild) DiskText() string       { return sizeOrNone(b.Disk) }
func (b *keptBuild) CPUTimeText() string    { return durationOrNone((b.CPUTime + 500) / 1000) }
func (b *keptBuild) WallText() string       { return durationOrNone(b.Wall) }

func sizeOrNone(kib int64) string {
	if kib == 0 {
		return ""
	}
	return size(kib)
}

func durationOrNone(secs int64) string {
	if secs == 0 {
		return ""
	}
	return ago(secs)
}

// keptBuildOf is b as the package page shows it; byAdmin: its builder
// is no builder of the queue.
func keptBuildOf(pr queue.Pair, b *queue.BuildRecord, byAdmin bool) keptBuild {
	k := keptBuild{Dist: pr.Dist, Arch: pr.Arch,
		Time: time.Unix(b.Time, 0).UTC().Format(queue.TimeFormat), TimeUnix: b.Time,
		Version: text(b.Version), Builder: text(b.Builder), ByAdmin: byAdmin, Outcome: text(string(b.Outcome)),
		Class: text(string(b.Class)), Stage: text(b.Stage), PeakMemory: b.PeakMemory, CPUTime: b.CPUTime,
		Disk: b.Disk, Wall: b.Wall, SlotMemory: b.SlotMemory, Held: text(b.Held)}
	if b.RetryAfter != 0 {
		k.RetryAfter, k.RetryAfterUnix = time.Unix(b.RetryAfter, 0).UTC().Format(queue.TimeFormat), b.RetryAfter
	}
	return k
}

// historyLine is one transaction of the package.
type historyLine struct {
	Dist     string `json:"dist"`
	Arch     string `json:"arch"`
	Time     string `json:"time"`
	TimeUnix int64  `json:"time_unix"`
	Action   string `json:"action"`
	Version  string `json:"version"`
	From     string `json:"from"`
	To       string `json:"to"`
	RealUser string `json:"real_user"`
	User     string `json:"user"`
}

func packageData(q *request) (any, error) {
	src := q.r.PathValue("src")
	if err := checkPackage(src); err != nil {
		return nil, err
	}
	p := &packagePage{Package: src, Cells: []packageCell{}, History: []historyLine{}}
	logs, err := q.db.Logs(src)
	if err != nil {
		return nil, err
	}
	var recs []*queue.Record // each cell's
	var builds [][]*queue.BuildRecord
	err = eachQueue(q.db, func(pr queue.Pair, tx queue.Tx) error {
		r, err := tx.Get(src)
		if err != nil || r == nil {
			return err
		}
		var kept []*queue.BuildRecord
		if err := tx.Builds(src, func(b *queue.BuildRecord) error {
			kept = append(kept, b)
			return nil
		}); err != nil {
			return fmt.Errorf("builds of %s in %s/%s: %w", src, pr.Dist, pr.Arch, err)
		}
		recs, builds = append(recs, r), append(builds, kept)
		c := packageCell{Dist: pr.Dist, Arch: pr.Arch}
		c.Logs, c.LogsOmitted = cellLogs(logs, pr)
		p.Cells = append(p.Cells, c)
		return tx.History(src, func(t *queue.Transaction) error {
			p.History = append(p.History, historyLine{
				Dist: pr.Dist, Arch: pr.Arch, TimeUnix: t.Time,
				Time:   time.Unix(t.Time, 0).UTC().Format(queue.TimeFormat),
				Action: text(t.Action), Version: text(t.Version),
				From: text(string(t.From)), To: text(string(t.To)),
				RealUser: text(t.RealUser), User: text(t.User),
			})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(p.Cells) == 0 {
		return nil, notFound("no package %s in the queue", src)
	}
	// The queues' health is read apart: no transaction is open.
	for i := range p.Cells {
		c := &p.Cells[i]
		pr := queue.Pair{Dist: c.Dist, Arch: c.Arch}
		var h *queueHealth
		if r := recs[i]; r.State == queue.NeedsBuild || r.Builder != "" || len(builds[i]) > 0 {
			if h, err = q.s.health(q.db, pr, q.now); err != nil {
				return nil, err
			}
		}
		cellOf(c, recs[i], h, q.now)
		c.Builds = make([]keptBuild, 0, len(builds[i]))
		for _, b := range slices.Backward(builds[i]) {
			c.Builds = append(c.Builds, keptBuildOf(pr, b, h.admin(b.Builder)))
		}
	}
	sort.SliceStable(p.History, func(i, j int) bool { return p.History[i].TimeUnix < p.History[j].TimeUnix })
	if n := len(p.History) - maxHistory; n > 0 {
		p.History, p.HistoryOmitted = p.History[n:], n
	}
	return p, nil
}

// cellOf fills c with r, the package in c's queue, whose health is h
// (nil when not read: r is not Needs-Build and has neither a builder
// nor kept builds).
func cellOf(c *packageCell, r *queue.Record, h *queueHealth, now time.Time) {
	c.Version, c.State, c.PreviousState = text(r.FullVersion()), text(string(r.State)), text(string(r.PreviousState))
	c.Builder, c.ByAdmin = text(r.Builder), h.byAdmin(r)
	c.Section, c.Priority, c.Notes = text(r.Section), text(r.Priority), text(r.Notes)
	c.BuildPri, c.PermBuildPri, c.CalPrio = r.BuildPri, r.PermBuildPri, queue.CalPrio(r, now)
	c.Failed, c.Depends, c.BDProblem = text(r.Failed), text(r.Depends), text(r.BDProblem)
	c.Why = h.why(r, -1)
	if r.StateChange != 0 {
		c.Since, c.SinceUnix = r.StateChangeTime().Format(queue.TimeFormat), r.StateChange
	}
	if pd := h.pendingOf(r); pd != nil {
		c.Duration, c.DurationFrom = int64(pd.duration/time.Second), pd.durationFrom
		if pd.start != 0 {
			c.Start, c.StartUnix = time.Unix(pd.start, 0).UTC().Format(queue.TimeFormat), pd.start
		}
	}
}

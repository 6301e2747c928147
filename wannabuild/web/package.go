package web

import (
	"sort"
	"time"

	"buildd/internal/queue"
)

// maxHistory is the most history lines a package page shows: the newest.
const maxHistory = 1000

// packagePage is "/package/SRC": the package in every queue that has it,
// and its history.
type packagePage struct {
	Package        string        `json:"package"`
	Cells          []packageCell `json:"cells"`
	History        []historyLine `json:"history"`
	HistoryOmitted int           `json:"history_omitted,omitempty"` // older lines not shown
}

// packageCell is the package in one (distribution, architecture).
type packageCell struct {
	Dist          string   `json:"dist"`
	Arch          string   `json:"arch"`
	Version       string   `json:"version"`
	State         string   `json:"state"`
	PreviousState string   `json:"previous_state,omitempty"`
	Builder       string   `json:"builder,omitempty"`
	Since         string   `json:"since,omitempty"` // the state change, queue.TimeFormat UTC
	SinceUnix     int64    `json:"since_unix,omitempty"`
	Section       string   `json:"section,omitempty"`
	Priority      string   `json:"priority,omitempty"`
	Notes         string   `json:"notes,omitempty"`
	BuildPri      int      `json:"build_priority,omitempty"`
	PermBuildPri  int      `json:"perm_build_priority,omitempty"`
	CalPrio       int      `json:"calprio"`
	Failed        string   `json:"failed,omitempty"`
	Depends       string   `json:"depends,omitempty"`
	BDProblem     string   `json:"bd_problem,omitempty"`
	Why           string   `json:"why"`
	Logs          []logRef `json:"logs,omitempty"`         // its build logs, newest first (log.go)
	LogsOmitted   int      `json:"logs_omitted,omitempty"` // older logs not listed
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
	err = eachQueue(q.db, func(pr queue.Pair, tx queue.Tx) error {
		r, err := tx.Get(src)
		if err != nil || r == nil {
			return err
		}
		ahead := -1
		if r.State == queue.NeedsBuild {
			if ahead, err = aheadOf(tx, r, q.now); err != nil {
				return err
			}
		}
		c := cellOf(pr, r, ahead, q.now)
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
	sort.SliceStable(p.History, func(i, j int) bool { return p.History[i].TimeUnix < p.History[j].TimeUnix })
	if n := len(p.History) - maxHistory; n > 0 {
		p.History, p.HistoryOmitted = p.History[n:], n
	}
	return p, nil
}

func cellOf(pr queue.Pair, r *queue.Record, ahead int, now time.Time) packageCell {
	c := packageCell{
		Dist: pr.Dist, Arch: pr.Arch,
		Version: text(r.FullVersion()), State: text(string(r.State)), PreviousState: text(string(r.PreviousState)),
		Builder: text(r.Builder), Section: text(r.Section), Priority: text(r.Priority), Notes: text(r.Notes),
		BuildPri: r.BuildPri, PermBuildPri: r.PermBuildPri, CalPrio: queue.CalPrio(r, now),
		Failed: text(r.Failed), Depends: text(r.Depends), BDProblem: text(r.BDProblem),
		Why: why(r, ahead),
	}
	if r.StateChange != 0 {
		c.Since, c.SinceUnix = r.StateChangeTime().Format(queue.TimeFormat), r.StateChange
	}
	return c
}

// aheadOf is the number of Needs-Build packages before r in the build
// order (--list=needs-build's).
func aheadOf(tx queue.Tx, r *queue.Record, now time.Time) (int, error) {
	var recs []*queue.Record
	if err := tx.ForEachInState(queue.NeedsBuild, func(n *queue.Record) error {
		recs = append(recs, n)
		return nil
	}); err != nil {
		return 0, err
	}
	for i, p := range queue.SortForBuild(recs, now) {
		if p.Package == r.Package {
			return i, nil
		}
	}
	return len(recs), nil
}

package web

import (
	"slices"
	"strconv"
	"time"

	"buildd/internal/queue"
)

// pageSize is the most packages one page of a list shows.
const pageSize = 250

// distPage is "/dist/DIST/ARCH[?state=STATE][&sort=KEY][&page=N]": one
// page of one queue's packages, as --list shows them, with its counts by
// state.
type distPage struct {
	Dist     string              `json:"dist"`
	Arch     string              `json:"arch"`
	State    string              `json:"state,omitempty"` // the filter; "" is all
	Sort     string              `json:"sort"`
	States   []queue.State       `json:"states"` // those that occur, in the classic order
	Counts   map[queue.State]int `json:"counts"`
	Total    int                 `json:"total"`     // packages in the queue
	Matching int                 `json:"matching"`  // packages in the list: the state's, or all
	Page     int                 `json:"page"`      // this page, from 1
	Pages    int                 `json:"pages"`     // pages of the list, at least 1
	PageSize int                 `json:"page_size"` // packages per page (the last may have fewer)
	First    int                 `json:"first"`     // the number of this page's first package in the list, from 1; 0 when none
	Rows     []distRow           `json:"packages"`
	Required string              `json:"required_revision,omitempty"` // the build machine revision (UUID) the queue requires
	Behind   []string            `json:"behind,omitempty"`            // the builders that reported another one: they take nothing from it
}

// distRow is one package of the list.
type distRow struct {
	Package   string `json:"package"`
	Version   string `json:"version"`
	State     string `json:"state"`
	Builder   string `json:"builder,omitempty"`
	ByAdmin   bool   `json:"by_admin,omitempty"` // Builder is the admin's login, no builder of the queue
	Since     string `json:"since,omitempty"`
	SinceUnix int64  `json:"since_unix,omitempty"`
	Section   string `json:"section,omitempty"`
	Priority  string `json:"priority,omitempty"`
	Notes     string `json:"notes,omitempty"`
	CalPrio   int    `json:"calprio"`
	Days      int    `json:"days"`
	Why       string `json:"why"`
	// A Needs-Build package's expected duration (estimate.go), in
	// seconds, and where it comes from.
	Duration     int64  `json:"expected_duration_s,omitempty"`
	DurationFrom string `json:"expected_duration_from,omitempty"`
}

// DurationText is the expected duration as a person reads it.
func (r *distRow) DurationText() string {
	if r.DurationFrom == "" {
		return ""
	}
	return ago(r.Duration) + " (" + r.DurationFrom + ")"
}

// SortOrders are the values of ?sort=, for the page's links.
func (p *distPage) SortOrders() []string { return queue.Orders }

// PageLinks are the pages the page links to: the first, the last, and
// those near this one.
func (p *distPage) PageLinks() []int {
	var out []int
	for n := 1; n <= p.Pages; n++ {
		if n == 1 || n == p.Pages || n >= p.Page-3 && n <= p.Page+3 {
			out = append(out, n)
		}
	}
	return out
}

// Last is the number of this page's last package in the list.
func (p *distPage) Last() int { return p.First + len(p.Rows) - 1 }

func distData(q *request) (any, error) {
	dist, arch := q.r.PathValue("dist"), q.r.PathValue("arch")
	if err := checkLabel("distribution", dist); err != nil {
		return nil, err
	}
	if err := checkLabel("architecture", arch); err != nil {
		return nil, err
	}
	query := q.r.URL.Query()
	p := &distPage{Dist: dist, Arch: arch, Sort: query.Get("sort"), Page: 1, PageSize: pageSize, Rows: []distRow{}}
	if p.Sort == "" {
		p.Sort = queue.OrderPrio
	}
	if queue.CheckOrder(p.Sort) != nil {
		return nil, badRequest("invalid sort %s: want name, state, since or prio", quote(p.Sort))
	}
	var filter queue.State
	if v := query.Get("state"); v != "" {
		var ok bool
		if filter, ok = queue.ParseState(v); !ok {
			return nil, badRequest("invalid state %s", quote(v))
		}
		p.State = string(filter)
	}
	if v := query.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<20 {
			return nil, badRequest("invalid page %s: want a number from 1", quote(v))
		}
		p.Page = n
	}
	pq := queue.PageQuery{State: filter, Order: p.Sort, Offset: (p.Page - 1) * pageSize, Limit: pageSize, Now: q.now}
	var page *queue.Page
	var err error
	if l, ok := q.db.(queue.Lister); ok {
		page, err = l.ListPage(dist, arch, pq)
	} else {
		err = q.db.View(dist, arch, func(tx queue.Tx) error {
			var err error
			page, err = queue.ListPageOf(tx, pq)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	counts := page.Counts
	if counts == nil {
		if counts, err = countsOf(q.db, dist, arch); err != nil {
			return nil, err
		}
	}
	p.Counts = counts
	seen := map[queue.State]bool{}
	for st, n := range counts {
		seen[st] = true
		p.Total += n
	}
	if p.Total == 0 {
		return nil, notFound("no queue %s/%s", dist, arch)
	}
	p.States = orderStates(seen)
	p.Matching = page.Total
	p.Pages = max((p.Matching+pageSize-1)/pageSize, 1)
	if p.Page > p.Pages {
		return nil, notFound("no page %d: the list has %d", p.Page, p.Pages)
	}
	if len(page.Rows) > 0 {
		p.First = pq.Offset + 1
	}
	if p.Required, p.Behind, err = requirement(q.db, queue.Pair{Dist: dist, Arch: arch}); err != nil {
		return nil, err
	}
	var h *queueHealth
	if slices.ContainsFunc(page.Rows, func(l queue.Listed) bool { return l.State == queue.NeedsBuild || l.Builder != "" }) {
		if h, err = q.s.health(q.db, queue.Pair{Dist: dist, Arch: arch}, q.now); err != nil {
			return nil, err
		}
	}
	for _, l := range page.Rows {
		r := l.Record
		row := distRow{
			Package: text(r.Package), Version: text(r.FullVersion()), State: text(string(r.State)),
			Builder: text(r.Builder), ByAdmin: h.byAdmin(r), Section: text(r.Section), Priority: text(r.Priority), Notes: text(r.Notes),
			CalPrio: l.CalPrio, Days: l.Days, Why: h.why(r, l.Ahead),
		}
		if pd := h.pendingOf(r); pd != nil {
			row.Duration, row.DurationFrom = int64(pd.duration/time.Second), pd.durationFrom
		}
		if r.StateChange != 0 {
			row.Since, row.SinceUnix = r.StateChangeTime().Format(queue.TimeFormat), r.StateChange
		}
		p.Rows = append(p.Rows, row)
	}
	return p, nil
}

// requirement is the revision the queue p requires, "" when none, and
// the builders whose reported machine is not on it.
func requirement(db queue.Store, p queue.Pair) (string, []string, error) {
	all, err := db.RequiredRevisions()
	if err != nil {
		return "", nil, err
	}
	i := slices.IndexFunc(all, func(r queue.RequiredRevision) bool { return r.Pair == p })
	if i < 0 {
		return "", nil, nil
	}
	reports, err := db.Revisions("", p)
	if err != nil {
		return "", nil, err
	}
	behind := queue.Behind(reports, all[i].UUID)
	for j := range behind {
		behind[j] = text(behind[j])
	}
	return text(all[i].UUID), behind, nil
}

// countsOf counts the packages of the queue dist/arch by state: all of
// them at once when the store can, else one state at a time.
func countsOf(db queue.Store, dist, arch string) (map[queue.State]int, error) {
	if c, ok := db.(queue.StateCounter); ok {
		all, err := c.CountStates(dist, arch)
		if err != nil {
			return nil, err
		}
		if m := all[queue.Pair{Dist: dist, Arch: arch}]; m != nil {
			return m, nil
		}
		return map[queue.State]int{}, nil
	}
	counts := map[queue.State]int{}
	err := db.View(dist, arch, func(tx queue.Tx) error {
		for _, st := range queue.States {
			n, err := tx.Count(st)
			if err != nil {
				return err
			}
			if n > 0 {
				counts[st] = n
			}
		}
		return nil
	})
	return counts, err
}

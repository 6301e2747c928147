package web

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"buildd/internal/queue"
)

// The queue's depth over the last weeks: its Needs-Build packages at the
// end of each day, counted back from the packages in Needs-Build now
// through the history's daily changes (queue.Digest), and drawn as a
// small SVG graph by the server.

// depthDays is how many days the graph shows, today included.
const depthDays = 28

// The graph's size in pixels.
const (
	graphWidth  = 112
	graphHeight = 24
)

// depthPoint is the depth at the end of one day (today: now).
type depthPoint struct {
	Day        string `json:"day"` // YYYY-MM-DD, UTC
	NeedsBuild int    `json:"needs_build"`
}

// depthOf is the depth of the last depthDays days, oldest first: now is
// nb, and each day before holds what the day after it added taken away.
// A history that does not account for every package (an imported
// queue) could give less than none: that is shown as none.
func depthOf(nb int, dg *queue.Digest, now time.Time) []depthPoint {
	out := make([]depthPoint, depthDays)
	today := now.UTC().Truncate(24 * time.Hour)
	v := nb
	for i := depthDays - 1; i >= 0; i-- {
		day := today.AddDate(0, 0, i-depthDays+1)
		out[i] = depthPoint{Day: day.Format(time.DateOnly), NeedsBuild: max(v, 0)}
		if dg != nil {
			v -= dg.NeedsBuild[day.Unix()/86400]
		}
	}
	return out
}

// graph is the SVG of one queue's depth, made of numbers only: the
// template writes it, escaping the title.
type graph struct {
	Width, Height int
	Points        string // the polyline's
	Title         string
}

// graphOf draws the depth of the queue name.
func graphOf(name string, points []depthPoint) graph {
	top := 1
	for _, p := range points {
		top = max(top, p.NeedsBuild)
	}
	var b strings.Builder
	for i, p := range points {
		x := float64(i) * float64(graphWidth-2) / float64(max(len(points)-1, 1))
		y := float64(graphHeight-2) * (1 - float64(p.NeedsBuild)/float64(top))
		fmt.Fprintf(&b, "%.1f,%.1f ", x+1, y+1)
	}
	g := graph{Width: graphWidth, Height: graphHeight, Points: strings.TrimSpace(b.String())}
	if len(points) > 0 {
		g.Title = fmt.Sprintf("%s: Needs-Build at the end of each day from %s to %s: %d then, %d now, at most %d",
			visible(name), points[0].Day, points[len(points)-1].Day, points[0].NeedsBuild, points[len(points)-1].NeedsBuild, top)
	}
	return g
}

// digestCache is the history's digests while the history does not
// change. From a store that follows its history (queue.DigestFollower)
// it keeps the digests up to the last final position too, and reads
// only what was logged after it.
type digestCache struct {
	mu      sync.Mutex
	mark    string
	digests map[queue.Pair]*queue.Digest
	base    map[queue.Pair]*queue.Digest // up to pos
	pos     string
}

// digests are the digests of db's history. They are shared: nobody
// changes them.
func (s *Server) digests(db queue.Store) (map[queue.Pair]*queue.Digest, error) {
	dg, ok := db.(queue.Digester)
	if !ok {
		return queue.Digests(db)
	}
	mark, err := dg.HistoryMark()
	if err != nil {
		return nil, err
	}
	c := &s.digestCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.digests != nil && c.mark == mark {
		return c.digests, nil
	}
	f, ok := db.(queue.DigestFollower)
	if !ok {
		d, err := dg.Digests()
		if err != nil {
			return nil, err
		}
		c.mark, c.digests = mark, d
		return d, nil
	}
	next := make(map[queue.Pair]*queue.Digest, len(c.base))
	for p, d := range c.base {
		next[p] = d.Clone()
	}
	pos, final, err := f.DigestsAfter(next, c.pos)
	if err != nil {
		return nil, err
	}
	if final {
		c.base, c.pos = next, pos
	}
	c.mark, c.digests = mark, next
	return next, nil
}

package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"buildd/internal/atomicfile"
)

// StatCounters are the counters of stats/: buildd and buildd-uploader add
// to them, buildd-watcher sums them once a statistics period and resets
// them.
var StatCounters = []string{"taken", "builds", "uploads", "failed", "dep-wait", "no-build",
	"give-back", "idle-time", "build-time", "remove-time", "install-download-time"}

// Stats is stats/ in the home, every file of it under the lock stats.lock:
//
//	stats/COUNTER      one of StatCounters: one number a line, appended
//	stats/Stamp        "UNIXTIME\n", the end of the last summary's period;
//	                   its modification time is when that summary was made
//	stats/Summary      the last summary
//	stats/graphs/NAME  one bar of a graph a summary: "YYMMDD ****"
type Stats struct{ dir string }

// Stats is stats/.
func (h Home) Stats() *Stats { return &Stats{dir: h.StatsDir()} }

// Add appends n to the counter, under the lock.
func (s *Stats) Add(counter string, n int64) error {
	if !slices.Contains(StatCounters, counter) {
		return fmt.Errorf("stats: add %d to %q: not a counter", n, counter)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("stats: add %d to %s: %w", n, counter, err)
	}
	l, err := LockFile(s.dir, LockTimeout)
	if err != nil {
		return fmt.Errorf("stats: add %d to %s: %w", n, counter, err)
	}
	defer l.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, counter), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("stats: add %d to %s: %w", n, counter, err)
	}
	if _, err := fmt.Fprintf(f, "%d\n", n); err != nil {
		f.Close()
		return fmt.Errorf("stats: add %d to %s: %w", n, counter, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stats: add %d to %s: %w", n, counter, err)
	}
	return nil
}

// Stamped returns when the last summary was made; ok is false when none
// was.
func (s *Stats) Stamped() (t time.Time, ok bool) {
	st, err := os.Stat(filepath.Join(s.dir, "Stamp"))
	if err != nil {
		return time.Time{}, false
	}
	return st.ModTime(), true
}

// Summarize makes the summary of the period that ends at now, under the
// lock: it sums each counter and hands the sums and the period's start
// (the time stats/Stamp holds, or noStamp when there is none) to render,
// which may add to the graphs. It writes render's text to stats/Summary,
// now to stats/Stamp, and removes the counters. A counter line that is not
// a number is left out of the sums and comes back in bad, naming the file
// and the line; err is a failure that left the counters as they were.
func (s *Stats) Summarize(now, noStamp time.Time, render func(sums map[string]float64, start time.Time) string) (summary string, bad []error, err error) {
	l, err := LockFile(s.dir, LockTimeout)
	if err != nil {
		return "", nil, err
	}
	defer l.Unlock()
	stamp := filepath.Join(s.dir, "Stamp")
	start := noStamp
	if b, err := os.ReadFile(stamp); err == nil {
		t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%s: bad time %q", stamp, strings.TrimSpace(string(b)))
		}
		start = time.Unix(t, 0)
	}
	sums := map[string]float64{}
	for _, c := range StatCounters {
		p := filepath.Join(s.dir, c)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line == "" {
				continue
			}
			n, err := strconv.ParseFloat(line, 64)
			if err != nil {
				bad = append(bad, fmt.Errorf("%s:%d: not a number %q", p, i+1, line))
				continue
			}
			sums[c] += n
		}
	}
	summary = render(sums, start)
	if err := atomicfile.WriteFile(filepath.Join(s.dir, "Summary"), []byte(summary), 0o644); err != nil {
		return "", nil, err
	}
	if err := atomicfile.WriteFile(stamp, []byte(fmt.Sprintf("%d\n", now.Unix())), 0o644); err != nil {
		return "", nil, err
	}
	for _, c := range StatCounters {
		os.Remove(filepath.Join(s.dir, c))
	}
	return summary, bad, nil
}

// graphWidth is the width of a full bar of a graph.
const graphWidth = 72

// AppendGraph adds to stats/graphs/NAME the bar of val for date (YYMMDD),
// max being a full bar (graphWidth columns; a longer one is cut, its last
// column "+"). Call it from Summarize's render, under the lock.
func (s *Stats) AppendGraph(name, date string, val, max float64) error {
	n := int(val*graphWidth/max + 0.5)
	bar := strings.Repeat("*", min(n, graphWidth))
	if n > graphWidth {
		bar = strings.Repeat("*", graphWidth-1) + "+"
	}
	dir := filepath.Join(s.dir, "graphs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stats: graph %s: %w", name, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("stats: graph %s: %w", name, err)
	}
	if _, err := fmt.Fprintf(f, "%-6s %s\n", date, bar); err != nil {
		f.Close()
		return fmt.Errorf("stats: graph %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("stats: graph %s: %w", name, err)
	}
	return nil
}

// Graph returns stats/graphs/NAME.
func (s *Stats) Graph(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.dir, "graphs", name))
}

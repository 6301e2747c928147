package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/home"
)

// statVars are the counters programs append to stats/NAME, one number a
// line, under the lock stats.lock.
var statVars = []string{"taken", "builds", "uploads", "failed", "dep-wait", "no-build",
	"give-back", "idle-time", "build-time", "remove-time", "install-download-time"}

// graphs are the classic one-line-a-period bar graphs of stats/graphs/,
// with the value of a full bar.
var graphs = []struct {
	name string
	max  float64
}{
	{"builds-per-day", 100}, {"uploads-per-day", 100}, {"failed-per-day", 50},
	{"dep-wait-per-day", 50}, {"give-back-per-day", 50}, {"time-per-build", 10 * 60 * 60},
	{"build-time-percent", 1}, {"idle-time-percent", 1},
}

// Statistics, every statistics_period days (the stamp stats/Stamp, holding
// the time of the last summary): sums the counters of stats/ since then,
// deletes them, appends to the graphs, writes stats/Summary and mails it as
// "Build Daemon Statistics" to statistics_mail.
func (w *Watcher) Statistics() (bool, error) {
	stamp := filepath.Join(w.Home.StatsDir(), "Stamp")
	period := time.Duration(w.Cfg.StatisticsPeriod) * day
	st, err := os.Stat(stamp)
	if err == nil && time.Since(st.ModTime()) <= period-fudge {
		return false, nil
	}
	lock, err := home.LockFile(w.Home.StatsDir(), home.LockTimeout)
	if err != nil {
		return false, err
	}
	defer lock.Unlock()
	w.Log.Printf("Making buildd statistics")
	now := time.Now()
	start := now.Add(-period)
	if b, err := os.ReadFile(stamp); err == nil {
		s := strings.TrimSpace(string(b))
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return false, fmt.Errorf("%s: bad time %q", stamp, s)
		}
		start = time.Unix(t, 0)
	}
	sums := map[string]float64{}
	var bad []string
	for _, v := range statVars {
		p := filepath.Join(w.Home.StatsDir(), v)
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		for i, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			n, err := strconv.ParseFloat(l, 64)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s:%d: not a number %q", p, i+1, l))
				continue
			}
			sums[v] += n
		}
	}
	summary := w.summary(sums, start, now)
	if err := atomicfile.WriteFile(filepath.Join(w.Home.StatsDir(), "Summary"), []byte(summary), 0o644); err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(stamp, []byte(fmt.Sprintf("%d\n", now.Unix())), 0o644); err != nil {
		return false, err
	}
	for _, v := range statVars {
		os.Remove(filepath.Join(w.Home.StatsDir(), v))
	}
	w.mail(w.Cfg.StatisticsMail, "Build Daemon Statistics", summary)
	if len(bad) > 0 {
		return true, errors.New(strings.Join(bad, "; "))
	}
	return true, nil
}

// summary renders the classic stats/Summary, appending this period's bars
// to stats/graphs/.
func (w *Watcher) summary(s map[string]float64, start, end time.Time) string {
	total := end.Sub(start).Seconds()
	if total <= 0 {
		total = 1
	}
	days := total / (24 * 60 * 60)
	var b strings.Builder
	pf := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	pct := func(n float64) float64 {
		if s["taken"] == 0 {
			return 0
		}
		return n * 100 / s["taken"]
	}
	pf("Build daemon statistics from %s to %s (%3.2f days):\n\n", formatTime(start), formatTime(end), days)
	pf("           #packages  %% of taken  pkgs/day\n")
	pf("-------------------------------------------\n")
	pf("taken    : %5d                  %7.2f\n", int(s["taken"]), s["taken"]/days)
	for _, r := range []struct{ label, v string }{
		{"builds   ", "builds"}, {"uploaded ", "uploads"}, {"failed   ", "failed"},
		{"dep-wait ", "dep-wait"}, {"give-back", "give-back"}, {"no-build ", "no-build"},
	} {
		pf("%s: %5d       %7.2f%%   %7.2f\n", r.label, int(s[r.v]), pct(s[r.v]), s[r.v]/days)
	}
	pf("\n")
	pf("          time          %% of total\n")
	pf("----------------------------------\n")
	pf("building: %s  %7.2f%%\n", printTime(s["build-time"]), s["build-time"]*100/total)
	pf("install : %s  %7.2f%%\n", printTime(s["install-download-time"]), s["install-download-time"]*100/total)
	pf("removing: %s  %7.2f%%\n", printTime(s["remove-time"]), s["remove-time"]*100/total)
	pf("idle    : %s  %7.2f%%\n", printTime(s["idle-time"]), s["idle-time"]*100/total)
	pf("total   : %s\n", printTime(total))
	pf("\n")
	proc := s["uploads"] + s["failed"] + s["dep-wait"] + s["no-build"] + s["give-back"]
	pf("processed package (upl+fail+dep+nob): %7d\n", int(proc))
	pf("slipped (proc-taken)                : %7d\n", int(proc-s["taken"]))
	if s["taken"] > 0 {
		pf("builds/taken package                : %7.2f\n", s["builds"]/s["taken"])
		pf("avg. time/taken package             : %s\n", printTime(s["build-time"]/s["taken"]))
	}
	if proc > 0 {
		pf("avg. time/processed package         : %s\n", printTime(s["build-time"]/proc))
	}
	if s["builds"] > 0 {
		pf("avg. time/build                     : %s\n", printTime(s["build-time"]/s["builds"]))
	}
	pf("\n")

	values := map[string]float64{
		"builds-per-day":     s["builds"] / days,
		"uploads-per-day":    s["uploads"] / days,
		"failed-per-day":     s["failed"] / days,
		"dep-wait-per-day":   s["dep-wait"] / days,
		"give-back-per-day":  s["give-back"] / days,
		"build-time-percent": s["build-time"] / total,
		"idle-time-percent":  s["idle-time"] / total,
	}
	if s["builds"] > 0 {
		values["time-per-build"] = s["build-time"] / s["builds"]
	}
	date := end.Local().Format("060102")
	gdir := filepath.Join(w.Home.StatsDir(), "graphs")
	os.MkdirAll(gdir, 0o755)
	for _, g := range graphs {
		path := filepath.Join(gdir, g.name)
		if v, ok := values[g.name]; ok {
			if err := appendGraph(path, date, v, g.max); err != nil {
				w.Log.Printf("%v", err)
			}
		}
		text, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pf("%s (max. %s):\n\n%s\n", g.name, strconv.FormatFloat(g.max, 'f', -1, 64), text)
	}
	return b.String()
}

// appendGraph adds one bar of 72 columns at most.
func appendGraph(path, date string, val, max float64) error {
	const width = 72
	n := int(val*width/max + 0.5)
	bar := strings.Repeat("*", min(n, width))
	if n > width {
		bar = strings.Repeat("*", width-1) + "+"
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%-6s %s\n", date, bar); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// printTime is the classic right-aligned HH:MM:SS of ten columns.
func printTime(t float64) string {
	s := int64(t)
	return fmt.Sprintf("%10s", fmt.Sprintf("%02d:%02d:%02d", s/3600, (s%3600)/60, s%60))
}

package watch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"buildd/internal/home"
)

// graphs are the classic one-line-a-period bar graphs of stats/graphs/
// (see home.Stats), with the value of a full bar.
var graphs = []struct {
	name string
	max  float64
}{
	{"builds-per-day", 100}, {"uploads-per-day", 100}, {"failed-per-day", 50},
	{"dep-wait-per-day", 50}, {"give-back-per-day", 50}, {"time-per-build", 10 * 60 * 60},
	{"build-time-percent", 1}, {"idle-time-percent", 1},
}

// Statistics, every statistics_period days (since the last summary, see
// home.Stats): sums the counters of stats/ since then, deletes them,
// appends to the graphs, writes stats/Summary and mails it as "Build
// Daemon Statistics" to statistics_mail.
func (w *Watcher) Statistics() (bool, error) {
	stats := w.Home.Stats()
	period := time.Duration(w.Cfg.StatisticsPeriod) * day
	if last, ok := stats.Stamped(); ok && time.Since(last) <= period-fudge {
		return false, nil
	}
	w.Log.Printf("Making buildd statistics")
	now := time.Now()
	summary, bad, err := stats.Summarize(now, now.Add(-period), func(sums map[string]float64, start time.Time) string {
		return w.summary(stats, sums, start, now)
	})
	if err != nil {
		return false, err
	}
	w.mail(w.Cfg.StatisticsMail, "Build Daemon Statistics", summary)
	var msgs []string
	for _, e := range bad {
		msgs = append(msgs, e.Error())
	}
	return true, joinErrs(msgs)
}

// summary renders the classic stats/Summary, appending this period's bars
// to the graphs of stats.
func (w *Watcher) summary(stats *home.Stats, s map[string]float64, start, end time.Time) string {
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
	for _, g := range graphs {
		if v, ok := values[g.name]; ok {
			if err := stats.AppendGraph(g.name, date, v, g.max); err != nil {
				w.Log.Printf("%v", err)
			}
		}
		text, err := stats.Graph(g.name)
		if err != nil {
			continue
		}
		pf("%s (max. %s):\n\n%s\n", g.name, strconv.FormatFloat(g.max, 'f', -1, 64), text)
	}
	return b.String()
}

// printTime is the classic right-aligned HH:MM:SS of ten columns.
func printTime(t float64) string {
	s := int64(t)
	return fmt.Sprintf("%10s", fmt.Sprintf("%02d:%02d:%02d", s/3600, (s%3600)/60, s%60))
}

package daemon

import (
	"bufio"
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/home"
	"buildd/internal/machine"
	"buildd/internal/queue"
)

// chaosView is the queue as its admin sees it at one moment.
type chaosView struct {
	recs    map[string]*queue.Record
	history []*queue.Transaction
}

func (c *chaos) look() (chaosView, error) {
	v := chaosView{recs: map[string]*queue.Record{}}
	err := c.view.View("bookworm", "amd64", func(tx queue.Tx) error {
		if err := tx.ForEach(func(r *queue.Record) error { v.recs[r.Package] = r; return nil }); err != nil {
			return err
		}
		return tx.History("", func(tr *queue.Transaction) error { v.history = append(v.history, tr); return nil })
	})
	if err != nil {
		return v, fmt.Errorf("the queue's records and history: %w", err)
	}
	return v, nil
}

// of is p's transactions, in the order the queue made them.
func (v chaosView) of(p string) []*queue.Transaction {
	var out []*queue.Transaction
	for _, tr := range v.history {
		if tr.Package == p {
			out = append(out, tr)
		}
	}
	return out
}

// ended reports whether every package is in its end state.
func (c *chaos) ended(v chaosView) (bool, []string) {
	var left []string
	for _, p := range c.pkgs {
		r := v.recs[p.name]
		if r == nil || r.State != p.end() {
			st := "not registered"
			if r != nil {
				st = fmt.Sprintf("%s by %q", r.State, r.Builder)
			}
			left = append(left, fmt.Sprintf("%s %s (want %s)", p.name, st, p.end()))
		}
	}
	return len(left) == 0, left
}

// settle waits until every package has reached its end and every
// builder runs its loop again (one that could not start while the queue
// was down is started again by the watcher), within the plan's bound: a
// package short of its end, or a builder not running, is a broken
// invariant.
func (c *chaos) settle() {
	c.admin.releaseHeld()
	deadline := time.Now().Add(c.plan.settle)
	for {
		v, err := c.look()
		ok, left := c.ended(v)
		for _, n := range c.nodes {
			if !n.up() {
				ok = false
				left = append(left, n.name+" not running")
			}
		}
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			c.violation("not every package reached its end, or builder runs, within %v after the schedule: %s", c.plan.settle, strings.Join(left, "; "))
			return
		}
		time.Sleep(time.Second)
	}
}

// pause sleeps d, or less when the run is stopping; it reports whether
// the run goes on.
func (c *chaos) pause(d time.Duration) bool {
	select {
	case <-c.stopping:
		return false
	case <-time.After(d):
		return true
	}
}

// stop ends the run: the admin, the MTAs and the crons stop; the mails
// left in each mqueue are processed (buildd-mail --process, as after a
// crash); each buildd delivers the logs in its spool; then each stops on
// SIGTERM and must exit 0.
func (c *chaos) stop() {
	close(c.stopping)
	c.helpers.Wait()
	if left := c.mailKills.left() + c.upKills.left(); left > 0 {
		c.figure("%d scheduled kills of buildd-mail or buildd-uploader found no run to kill", left)
	}
	for _, n := range c.nodes {
		if mqueueLen(n) > 0 {
			if err, _ := c.buildMail(n, nil, "--process"); err != nil {
				c.violation("%s: buildd-mail --process: %v", n.name, err)
			}
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range c.nodes {
		for len(spooled(n)) > 0 && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
	}
	for _, n := range c.nodes {
		n.mu.Lock()
		p := n.proc
		n.mu.Unlock()
		if p.exited() {
			c.violation("%s: buildd exited on its own: %s", n.name, p.stderr)
			continue
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range c.nodes {
		n.mu.Lock()
		p := n.proc
		n.mu.Unlock()
		select {
		case <-p.done:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				c.violation("%s: buildd exit %d after SIGTERM: %s", n.name, code, p.stderr)
			}
			p.done <- nil
		case <-time.After(StopWait + time.Minute):
			c.violation("%s: buildd still running %v after SIGTERM", n.name, StopWait+time.Minute)
		}
	}
	c.admin.readMail()
}

// spooled are the logs waiting in n's log spool.
func spooled(n *chaosNode) []string {
	ents, _ := os.ReadDir(filepath.Join(n.env.home, LogSpoolDir))
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// check checks every invariant and records the run's figures.
func (c *chaos) check() {
	v, err := c.look()
	if err != nil {
		c.violation("%v", err)
		return
	}
	own := c.checkHistory(v)
	uploads := c.checkUploads(v)
	c.checkLogs(v, own)
	c.checkReplies(v, uploads)
	c.checkHomes()
	c.checkVolume()
	c.checkSick(v)
	figures := c.tally(v, uploads)
	c.mu.Lock()
	c.figures = append(c.figures, figures...)
	c.mu.Unlock()
	c.mu.Lock()
	unclaimed := len(c.cutsArmed)
	c.mu.Unlock()
	if unclaimed > 0 {
		c.figure("%d armed ssh cuts found no call to cut", unclaimed)
	}
	if dir := os.Getenv(chaosKeepEnv); dir != "" {
		c.keep(dir, v)
	}
}

// holding is a builder's hold on a package: from its take until the
// package is given back (by it, the admin or an ended lease) or taken
// by another; end 0 while it holds it.
type holding struct {
	builder    string
	start, end int64
	endedBy    string               // the action that ended it
	reports    []*queue.Transaction // the builder's reports of builds: --built, --attempted, --give-back
}

// checkHistory checks the queue's history: each package reaches its end
// state exactly once, as its last change; replaying the history's
// changes gives the queue's states; a package is taken only from
// Needs-Build, so never held by two builders at once; and every change a
// builder makes to a package is made while it holds it. It returns each
// package's holdings.
func (c *chaos) checkHistory(v chaosView) map[string][]*holding {
	own := map[string][]*holding{}
	builders := map[string]bool{}
	for _, n := range c.nodes {
		builders[n.name] = true
	}
	for _, p := range c.pkgs {
		r := v.recs[p.name]
		trs := v.of(p.name)
		if r == nil || len(trs) == 0 {
			c.violation("%s: not in the queue, or no history", p.name)
			continue
		}
		ends := 0
		for _, tr := range trs {
			if tr.To == p.end() {
				ends++
			}
		}
		if ends != 1 || trs[len(trs)-1].To != p.end() || r.State != p.end() {
			c.violation("%s: reached %s %d times, and is %s (last change: %s); want it reached once, last", p.name, p.end(), ends, r.State, trs[len(trs)-1].Line("bookworm"))
		}
		for i := 1; i < len(trs); i++ {
			if trs[i].From != trs[i-1].To {
				c.violation("%s: the history does not replay: %q after %q", p.name, trs[i].Line("bookworm"), trs[i-1].Line("bookworm"))
			}
		}
		if last := trs[len(trs)-1]; last.To != r.State {
			c.violation("%s: the history ends in %s, the queue has %s", p.name, last.To, r.State)
		}
		var hs []*holding
		var cur *holding
		for _, tr := range trs {
			switch {
			case tr.Action == "--take":
				if tr.From != queue.NeedsBuild || tr.To != queue.Building {
					c.violation("%s: taken from %s: %s", p.name, tr.From, tr.Line("bookworm"))
				}
				if cur != nil {
					c.violation("%s: taken by %s at %d while %s held it (since %d)", p.name, tr.User, tr.Time, cur.builder, cur.start)
					cur.end, cur.endedBy = tr.Time, "taken by "+tr.User
				}
				cur = &holding{builder: tr.User, start: tr.Time}
				hs = append(hs, cur)
			case strings.HasPrefix(tr.Action, "--expire-leases"):
				if cur == nil || tr.Action != "--expire-leases: lease of "+cur.builder+" ended" {
					c.violation("%s: %s, but the holder was %v", p.name, tr.Line("bookworm"), cur)
				}
				if cur != nil {
					cur.end, cur.endedBy = tr.Time, tr.Action+" (by "+tr.User+")"
					cur = nil
				}
			case builders[tr.User]:
				if cur == nil || cur.builder != tr.User {
					c.violation("%s: %s changed it while it did not hold it (holder %v)", p.name, tr.User, cur)
					continue
				}
				if tr.Action == "--built" || tr.Action == "--attempted" || tr.Action == "--give-back" {
					cur.reports = append(cur.reports, tr)
				}
				if tr.To == queue.NeedsBuild || tr.To == queue.BDUninstallable {
					cur.end, cur.endedBy = tr.Time, tr.Action
					cur = nil
				}
			default: // the admin
				if tr.To == queue.NeedsBuild && cur != nil {
					cur.end, cur.endedBy = tr.Time, tr.Action+" by the admin"
					cur = nil
				}
			}
		}
		if cur != nil && r.Builder != cur.builder {
			c.violation("%s: held by %s by the history, by %q in the queue", p.name, cur.builder, r.Builder)
		}
		own[p.name] = hs
	}
	return own
}

// checkSick checks the sick builder (sickNode): it put itself in
// quarantine (build/QUARANTINE, and its heartbeat says so), took no
// package after that, and built, attempted or failed none; and no
// healthy builder is left quarantined (a fault that made one fail
// builds in a row is over, and its probe build ended the quarantine).
func (c *chaos) checkSick(v chaosView) {
	sick := c.nodes[sickNode]
	q, err := home.New(sick.env.home).Quarantine().Read()
	if err != nil || q == nil {
		c.violation("%s (sick) is not quarantined: %v", sick.name, err)
		return
	}
	c.figure("%s (sick) quarantined at %.1fs: %s", sick.name, q.Since.Sub(c.began).Seconds(), q.Reason)
	takes := 0
	for _, tr := range v.history {
		if tr.User != sick.name {
			continue
		}
		switch {
		case tr.Action == "--take" && tr.Time > q.Since.Unix()+1:
			c.violation("%s (sick) took %s at %d, after its quarantine at %d", sick.name, tr.Package, tr.Time, q.Since.Unix())
		case tr.Action == "--take":
			takes++
		case tr.Action == "--built" || tr.Action == "--attempted" || tr.Action == "--failed" || tr.Action == "--uploaded":
			c.violation("%s (sick): %s", sick.name, tr.Line("bookworm"))
		}
	}
	c.figure("%s (sick) took %d packages before its quarantine, and gave each back", sick.name, takes)
	sts, err := c.view.Builders(queue.Pair{Dist: "bookworm", Arch: "amd64"})
	if err != nil {
		c.violation("heartbeats: %v", err)
		return
	}
	seen := map[string]bool{}
	for _, st := range sts {
		seen[st.Builder] = true
		switch {
		case st.Builder == sick.name && st.Quarantined == "":
			c.violation("%s (sick): its heartbeat does not say it is quarantined", sick.name)
		case st.Builder != sick.name && st.Quarantined != "":
			c.violation("%s (healthy) is left quarantined: %s", st.Builder, st.Quarantined)
		}
	}
	for _, n := range c.nodes {
		if !seen[n.name] {
			c.violation("%s sent no heartbeat", n.name)
		}
	}
}

// upload is a package uploaded to the target by a builder.
type upload struct {
	builder string
	changes string // its .changes, as uploaded
}

// checkUploads checks the upload target: each Uploaded package was
// uploaded exactly once, by the builder that the queue has it Uploaded
// by, and nothing else was uploaded. It returns the uploads by package.
func (c *chaos) checkUploads(v chaosView) map[string][]upload {
	ups := map[string][]upload{}
	for _, n := range c.nodes {
		files, _ := filepath.Glob(filepath.Join(n.incoming, "*.changes"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				c.violation("%s: %v", f, err)
				continue
			}
			name := strings.SplitN(filepath.Base(f), "_", 2)[0]
			ups[name] = append(ups[name], upload{n.name, string(b)})
		}
	}
	for _, p := range c.pkgs {
		got := ups[p.name]
		var by []string
		for _, u := range got {
			by = append(by, u.builder)
		}
		r := v.recs[p.name]
		switch {
		case p.end() != queue.Uploaded && len(got) > 0:
			c.violation("%s (%s) uploaded by %v", p.name, p.kind, by)
		case p.end() == queue.Uploaded && len(got) != 1:
			c.violation("%s uploaded %d times (by %v), want once", p.name, len(got), by)
		case p.end() == queue.Uploaded && r != nil && got[0].builder != uploadedBy(v, p.name):
			c.violation("%s uploaded by %s, but Uploaded in the queue by %q: uploaded by a builder that did not own it", p.name, got[0].builder, uploadedBy(v, p.name))
		}
	}
	return ups
}

// uploadedBy is the builder whose change made name Uploaded.
func uploadedBy(v chaosView, name string) string {
	for _, tr := range v.of(name) {
		if tr.To == queue.Uploaded {
			return tr.User
		}
	}
	return ""
}

// outcomeOf is the log status of a build report.
func outcomeOf(tr *queue.Transaction) queue.Outcome {
	switch tr.Action {
	case "--built":
		return queue.Successful
	case "--attempted":
		return queue.Attempted
	}
	return queue.GivenBack
}

// owned returns the holding of builder's that a build of the package
// ending at t (its log's end, its log mail's date) belongs to: one that
// held the package at t, or one the builder ended itself by giving the
// package back (its report; the log and mail follow), up to the
// builder's next holding. nil: the builder did not own the package.
func owned(hs []*holding, builder string, t int64) *holding {
	var mine []*holding
	for _, h := range hs {
		if h.builder == builder {
			mine = append(mine, h)
		}
	}
	for i, h := range mine {
		if t < h.start {
			continue
		}
		switch {
		case h.end == 0, t <= h.end:
			return h
		case h.endedBy == "--give-back" && (i+1 == len(mine) || t < mine[i+1].start):
			return h
		}
	}
	return nil
}

// checkLogs checks the log store and the log mails: a builder delivers
// and mails only the builds of packages it holds (a builder that lost a
// package, e.g. frozen past its lease, must not), and each build it
// reported to the queue has its log in the store: its reports, in order,
// each take the oldest log of that builder and outcome not yet taken
// that was spooled at or after the report (the builder spools a log
// after its report; the sick builder may build a package again within
// the same second).
func (c *chaos) checkLogs(v chaosView, own map[string][]*holding) {
	for _, p := range c.pkgs {
		hs := own[p.name]
		logs, err := c.view.Logs(p.name)
		if err != nil {
			c.violation("%v", err)
			continue
		}
		used := make([]bool, len(logs))
		byTime := make([]int, len(logs)) // the logs, oldest first
		for j := range byTime {
			byTime[j] = j
		}
		slices.SortStableFunc(byTime, func(a, b int) int { return cmp.Compare(logs[a].Time, logs[b].Time) })
		reports := map[string][]*queue.Transaction{} // each builder's, in order
		for _, h := range hs {
			reports[h.builder] = append(reports[h.builder], h.reports...)
		}
		nth := map[string]int{}
		for _, h := range hs {
			for _, rep := range h.reports {
				k := nth[h.builder]
				nth[h.builder]++
				until := int64(1<<62 - 1) // the builder's next report: its log is spooled by then
				if k+1 < len(reports[h.builder]) {
					until = reports[h.builder][k+1].Time
				}
				match := -1
				for _, j := range byTime {
					if l := logs[j]; !used[j] && l.Builder == h.builder && l.Status == outcomeOf(rep) && l.Time >= rep.Time && l.Time <= until {
						match = j
						break
					}
				}
				switch {
				case match < 0 && rep.Action == "--give-back" && c.fullWhile(h):
					c.figure("%s: %s gave it back at %d after building while its home was full: no log", p.name, h.builder, rep.Time)
				case match < 0:
					c.violation("%s: %s reported %s at %d, but no log of that build is in the log store", p.name, h.builder, rep.Action, rep.Time)
				default:
					used[match] = true
				}
			}
		}
		for j, l := range logs {
			if owned(hs, l.Builder, l.Time) == nil {
				c.violation("%s: %s delivered a log (%s, ended %d) of a build it did not own (holdings %s)", p.name, l.Builder, l.Status, l.Time, holdings(hs))
			} else if !used[j] {
				c.figure("%s: %s's log (%s, ended %d) answers no report: the report failed", p.name, l.Builder, l.Status, l.Time)
			}
		}
	}
	c.admin.mu.Lock()
	defer c.admin.mu.Unlock()
	for _, lm := range c.admin.logMails {
		name := strings.SplitN(lm.pkgv, "_", 2)[0]
		if owned(own[name], lm.node.name, lm.date.Unix()) == nil {
			c.violation("%s: %s mailed the log of a build it did not own (%s, %s, sent %d; holdings %s)", name, lm.node.name, lm.status, lm.id, lm.date.Unix(), holdings(own[name]))
		}
	}
}

// fullWhile reports whether h's builder had its home volume full while it
// held the package: the log of a build it gave back may be lost with the
// disk.
func (c *chaos) fullWhile(h *holding) bool {
	for _, f := range c.fulls {
		if f.node == h.builder && h.start <= f.end.Unix() && (h.end == 0 || h.end >= f.start.Unix()) {
			return true
		}
	}
	return false
}

func holdings(hs []*holding) string {
	var out []string
	for _, h := range hs {
		out = append(out, fmt.Sprintf("%s %d-%d (%s)", h.builder, h.start, h.end, h.endedBy))
	}
	return strings.Join(out, ", ")
}

// checkReplies checks that no accepted mail was lost: every reply
// buildd-mail accepted (exit 0) either acted (its signed .changes is the
// one uploaded or in the builder's upload queue; its "fail" is the
// package's failure text) or was refused with an error reply, not both (unless the MTA
// delivered it twice); and no mail is left in an mqueue but the
// half-written ones of a killed buildd-mail in mqueue/tmp.
func (c *chaos) checkReplies(v chaosView, ups map[string][]upload) {
	c.admin.mu.Lock()
	defer c.admin.mu.Unlock()
	for _, r := range c.admin.replies {
		if r.accepted.IsZero() {
			continue
		}
		name := strings.SplitN(r.to.pkgv, "_", 2)[0]
		acted := false
		switch r.keyword {
		case "ok":
			for _, u := range ups[name] {
				acted = acted || u.changes == r.signed
			}
			if b, err := os.ReadFile(filepath.Join(home.New(r.node.env.home).UploadDir("upload"), r.to.pkgv+"_amd64.changes")); err == nil {
				acted = acted || string(b) == r.signed
			}
		default:
			rec := v.recs[name]
			acted = rec != nil && rec.State == queue.Failed && strings.Contains(rec.Failed, "<"+r.id+">")
		}
		refused := len(c.admin.errors[r.id]) > 0
		switch {
		case !acted && !refused:
			c.violation("%s: the reply %s (%s to %s) was accepted by %s's buildd-mail, but neither acted nor was refused: lost", name, r.id, r.keyword, r.to.id, r.node.name)
		case acted && refused && r.deliveries == 1:
			c.violation("%s: the reply %s (%s) acted and was refused too: %s", name, r.id, r.keyword, strings.Join(c.admin.errors[r.id], "\n"))
		}
	}
	for _, n := range c.nodes {
		mq := home.New(n.env.home).MQueueDir()
		if ents, _ := os.ReadDir(filepath.Join(mq, "new")); len(ents) > 0 {
			c.violation("%s: %d mails left in mqueue/new", n.name, len(ents))
		}
		ents, _ := os.ReadDir(filepath.Join(mq, "tmp"))
		for _, e := range ents {
			c.killed(filepath.Join(mq, "tmp", e.Name()), n.kills)
		}
	}
}

// tempRE matches atomicfile's temporary files.
var tempRE = regexp.MustCompile(`^\..+` + regexp.QuoteMeta(atomicfile.TempMarker) + `[0-9]+$`)

// checkHomes checks every home at the end: no job left in REDO,
// BUILDING or FINISHED, no log left in the spool, no temporary file left but those
// of a writer the run killed right after it wrote them.
func (c *chaos) checkHomes() {
	for _, n := range c.nodes {
		h := home.New(n.env.home)
		for _, f := range []*home.REDOFile{h.REDO(), h.Building()} {
			es, bad, err := f.Read()
			if err != nil || len(es) > 0 || len(bad) > 0 {
				c.violation("%s: %s holds %v %v (%v)", n.name, f.Path(), es, bad, err)
			}
		}
		if recs, bad, err := h.Finished().Read(); err != nil || len(recs) > 0 || len(bad) > 0 {
			c.violation("%s: %s holds %v %v (%v)", n.name, h.Finished().Path(), recs, bad, err)
		}
		if s := spooled(n); len(s) > 0 {
			c.violation("%s: logs left in the spool: %v", n.name, s)
		}
		c.checkTemp(n.env.home, n.kills)
	}
}

// checkTemp walks dir for temporary files, each of which must be a
// killed writer's.
func (c *chaos) checkTemp(dir string, kills []time.Time) {
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && tempRE.MatchString(d.Name()) {
			c.killed(path, kills)
		}
		return nil
	})
}

// killed checks that the temporary file path was left by a writer killed
// with kill -9 (at one of kills) within a minute after it last wrote it.
func (c *chaos) killed(path string, kills []time.Time) {
	st, err := os.Stat(path)
	if err != nil {
		c.violation("%v", err)
		return
	}
	for _, k := range kills {
		if m := st.ModTime(); !m.After(k.Add(time.Second)) && k.Sub(m) < time.Minute {
			c.figure("temporary file of a killed writer: %s", path)
			return
		}
	}
	c.violation("temporary file left, not by a killed writer: %s (written %s)", path, st.ModTime().Format(time.TimeOnly))
}

// checkVolume checks the machines volume and the host: no working
// snapshot, half-made revision or half-made layer left; no mount left
// under the machines volume, the homes, the archive or the target; no
// process left running in a build machine; no temporary file of the
// shared package cache or lists left but a killed writer's.
func (c *chaos) checkVolume() {
	if w := workingSnapshots(c.t, c.machines); len(w) > 0 {
		c.violation("working snapshots left: %v", w)
	}
	s, err := machine.Open(c.machines)
	if err != nil {
		c.violation("%v", err)
		return
	}
	ms, err := s.List()
	if err != nil {
		c.violation("%v", err)
	}
	var kills []time.Time
	for _, n := range c.nodes {
		kills = append(kills, n.kills...)
	}
	for _, m := range ms {
		for _, r := range m.Revisions {
			if !r.ReadOnly {
				c.violation("revision %s/%s left writable (half made)", m.Name, r.Name)
			}
		}
		ents, _ := os.ReadDir(filepath.Join(c.machines, m.Name))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "work-") || strings.HasPrefix(e.Name(), ".new-") || strings.HasPrefix(e.Name(), ".layer-new-") {
				c.violation("left on the machines volume: %s/%s", m.Name, e.Name())
			}
		}
		for _, shared := range []string{".apt-archives", ".apt-lists"} {
			c.checkTemp(filepath.Join(c.machines, m.Name, shared), kills)
		}
	}
	roots := []string{c.machines, c.archive.dir, c.target}
	for _, n := range c.nodes {
		roots = append(roots, n.env.home)
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		c.violation("%v", err)
		return
	}
	defer mi.Close()
	sc := bufio.NewScanner(mi)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		for _, root := range roots {
			if strings.HasPrefix(f[4], root+"/") {
				c.violation("mount left: %s", f[4])
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/root")
	for _, p := range procs {
		if root, err := os.Readlink(p); err == nil && strings.HasPrefix(root, c.machines+"/") {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
			c.violation("process left in a build machine: %s %q", filepath.Dir(p), strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

// tally is the run's figures.
func (c *chaos) tally(v chaosView, ups map[string][]upload) []string {
	count := map[string]int{}
	by := map[string]map[string]int{}
	for _, tr := range v.history {
		a := tr.Action
		if strings.HasPrefix(a, "--expire-leases") {
			a = "--expire-leases"
		}
		count[a]++
		if by[tr.User] == nil {
			by[tr.User] = map[string]int{}
		}
		by[tr.User][a]++
	}
	var out []string
	out = append(out, fmt.Sprintf("builds: %d taken, %d built, %d attempted, %d given back by their builder, %d leases ended, %d failed (admin's fail), %d uploaded",
		count["--take"], count["--built"], count["--attempted"], count["--give-back"], count["--expire-leases"], count["--failed"], count["--uploaded"]))
	for _, n := range c.nodes {
		u := n.name
		out = append(out, fmt.Sprintf("  %s: %d taken, %d built, %d attempted, %d given back, %d leases ended by it", u, by[u]["--take"], by[u]["--built"], by[u]["--attempted"], by[u]["--give-back"], by[u]["--expire-leases"]))
	}
	logs := 0
	for _, p := range c.pkgs {
		l, _ := c.view.Logs(p.name)
		logs += len(l)
	}
	nups := 0
	for _, u := range ups {
		nups += len(u)
	}
	out = append(out, fmt.Sprintf("logs in the log store: %d; uploads at the target: %d", logs, nups))
	a := c.admin
	a.mu.Lock()
	defer a.mu.Unlock()
	status := map[string]int{}
	for _, lm := range a.logMails {
		status[lm.status]++
	}
	var accepted, down, deliveries, kills, refused int
	for _, r := range a.replies {
		deliveries += r.deliveries
		kills += r.kills
		if !r.accepted.IsZero() {
			accepted++
		}
		if r.whileDown {
			down++
		}
		if len(a.errors[r.id]) > 0 {
			refused++
		}
	}
	out = append(out, fmt.Sprintf("log mails: %v; admin's replies: %d signed, %d deliveries (%d killed), %d accepted (%d while the queue was down), %d refused",
		status, len(a.replies), deliveries, kills, accepted, down, refused))
	if len(a.other) > 0 {
		out = append(out, fmt.Sprintf("other mails: %v", a.other))
	}
	for _, n := range c.nodes {
		out = append(out, fmt.Sprintf("%s (%s): started again %d times", n.name, n.via, n.restarts))
	}
	return out
}

// keep copies what a post-mortem needs into dir: each builder's
// daemon.log and build logs, the queue's history and the admin's mail.
func (c *chaos) keep(dir string, v chaosView) {
	dir = filepath.Join(dir, fmt.Sprintf("seed-%d", c.seed))
	for _, n := range c.nodes {
		d := filepath.Join(dir, n.name)
		os.MkdirAll(filepath.Join(d, "logs"), 0o755)
		copyFile(filepath.Join(n.env.home, "daemon.log"), filepath.Join(d, "daemon.log"))
		logs, _ := filepath.Glob(filepath.Join(n.env.home, "logs", "*"))
		for _, l := range logs {
			copyFile(l, filepath.Join(d, "logs", filepath.Base(l)))
		}
		var mails strings.Builder
		for i, m := range n.env.smtp.Mails() {
			fmt.Fprintf(&mails, "==> mail %d to %v\n%s\n", i, m.To, strings.ReplaceAll(string(m.Data), "\r\n", "\n"))
		}
		os.WriteFile(filepath.Join(d, "mails"), []byte(mails.String()), 0o644)
	}
	var h strings.Builder
	for _, tr := range v.history {
		fmt.Fprintf(&h, "%s %s\n", time.Unix(tr.Time, 0).Format(time.TimeOnly), tr.Line("bookworm"))
	}
	os.WriteFile(filepath.Join(dir, "history"), []byte(h.String()), 0o644)
	var r strings.Builder
	c.admin.mu.Lock()
	for _, rep := range c.admin.replies {
		fmt.Fprintf(&r, "%s %s %s to %s (%s): %d deliveries, accepted %v (down %v)\n", rep.id, rep.node.name, rep.keyword, rep.to.pkgv, rep.to.id, rep.deliveries, !rep.accepted.IsZero(), rep.whileDown)
		for _, e := range c.admin.errors[rep.id] {
			fmt.Fprintf(&r, "    %s\n", strings.ReplaceAll(e, "\n", "\n    "))
		}
	}
	c.admin.mu.Unlock()
	os.WriteFile(filepath.Join(dir, "replies"), []byte(r.String()), 0o644)
	c.t.Logf("kept the run's logs, history and mail in %s", dir)
}

func copyFile(from, to string) {
	if b, err := os.ReadFile(from); err == nil {
		os.WriteFile(to, b, 0o644)
	}
}

package daemon

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"buildd/buildd-mail/replytest"
	"buildd/internal/home"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
)

// The admin of the chaos run, as a quick one answers from Emacs: every
// log mail of a successful build gets a signed "ok" (its .changes), every
// failed build's a signed "fail", the moment it is read, whatever the
// queue says; a given-back build needs no answer, nor does one whose log
// was cut short (no summary: its home was full, and buildd gives back a
// build whose log it could not write); a reply refused while the package still waits for an
// answer is answered again, to the newest log mail. The
// "wanna-build --uploaded errors" mail of buildd-uploader needs nothing:
// the uploader tells the queue again at its next run. The replies reach each builder's
// buildd-mail as an MTA delivers them, through the pipe ("|buildd-mail"),
// again until it exits 0 (accepted); buildd-uploader runs as cron would.

// chaosAdmin is the admin and the MTA's memory.
type chaosAdmin struct {
	c        *chaos
	outboxes map[*chaosNode]chan *chaosReply

	mu       sync.Mutex
	read     map[*chaosNode]int // mails read from each builder's SMTP server
	logMails []*logMail
	replies  []*chaosReply
	errors   map[string][]string // error replies, by the reply they answer
	held     []*chaosReply       // until PostgreSQL stops
	retried  int                 // packages let go after being held (retryHeld)
	other    map[string]int      // other mails, by subject
	seq      int
}

// logMail is a log mail a builder sent.
type logMail struct {
	node    *chaosNode
	id      string
	pkgv    string
	arch    string // X-Buildd-Arch: the architecture of the build
	status  string // the log's Status: successful, attempted or given-back
	subject string
	date    time.Time
	changes string // of a successful build
}

// chaosReply is one signed reply of the admin.
type chaosReply struct {
	id         string
	node       *chaosNode
	to         *logMail
	keyword    string // "ok" or "fail"
	signed     string // the clearsigned text
	raw        []byte
	deliveries int       // tries of the MTA
	kills      int       // of which killed
	accepted   time.Time // buildd-mail exited 0
	whileDown  bool      // accepted while PostgreSQL was stopped
}

func newChaosAdmin(c *chaos) *chaosAdmin {
	a := &chaosAdmin{c: c, outboxes: map[*chaosNode]chan *chaosReply{}, read: map[*chaosNode]int{},
		errors: map[string][]string{}, other: map[string]int{}}
	for _, n := range c.nodes {
		a.outboxes[n] = make(chan *chaosReply, 4096)
	}
	return a
}

// startHelpers starts the admin, one MTA and one uploader cron per
// builder; stop ends them.
func (c *chaos) startHelpers() {
	c.admin = newChaosAdmin(c)
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		review := time.NewTicker(5 * time.Second)
		defer review.Stop()
		for {
			select {
			case <-c.stopping:
				return
			case <-review.C:
				c.admin.review()
			case <-time.After(200 * time.Millisecond):
			}
			c.admin.readMail()
		}
	}()
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		c.watch()
	}()
	for _, n := range c.nodes {
		c.helpers.Add(2)
		go func() {
			defer c.helpers.Done()
			c.admin.mta(n)
		}()
		go func() {
			defer c.helpers.Done()
			c.uploaderCron(n)
		}()
	}
}

// readMail reads the mails that arrived at every builder's SMTP server.
func (a *chaosAdmin) readMail() {
	for _, n := range a.c.nodes {
		mails := n.env.smtp.Mails()
		a.mu.Lock()
		from := a.read[n]
		a.read[n] = len(mails)
		a.mu.Unlock()
		for _, m := range mails[from:] {
			a.handle(n, m.Data)
		}
	}
}

var (
	statusRE = regexp.MustCompile(`(?m)^Status: (\S+)$`)
)

// handle reads one mail from builder n.
func (a *chaosAdmin) handle(n *chaosNode, raw []byte) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		a.c.violation("%s sent a mail that does not parse: %v\n%s", n.name, err, raw)
		return
	}
	body, err := mailBody(m)
	if err != nil {
		a.c.violation("%s sent a mail whose body does not decode: %v", n.name, err)
		return
	}
	subject := m.Header.Get("Subject")
	switch {
	case m.Header.Get("X-Buildd-Package") != "" && strings.HasPrefix(subject, "Log for "):
		lm := &logMail{node: n, id: strings.Trim(m.Header.Get("Message-Id"), "<>"), pkgv: m.Header.Get("X-Buildd-Package"), arch: m.Header.Get("X-Buildd-Arch"), subject: subject}
		lm.date, _ = m.Header.Date()
		if st := statusRE.FindAllStringSubmatch(body, -1); len(st) > 0 {
			lm.status = st[len(st)-1][1]
		}
		if lm.status == string(queue.Successful) {
			lm.changes = changesOf(body, lm.pkgv)
		}
		a.mu.Lock()
		a.logMails = append(a.logMails, lm)
		a.mu.Unlock()
		if lm.status == string(queue.Successful) && lm.changes == "" {
			a.c.violation("%s: the log mail of the successful build of %s has no .changes:\n%s", n.name, lm.pkgv, body)
			return
		}
		if lm.status == string(queue.Successful) || lm.status == string(queue.Attempted) {
			a.answer(lm)
		}
	case m.Header.Get("Auto-Submitted") == "auto-replied" && m.Header.Get("In-Reply-To") != "":
		to := strings.Trim(m.Header.Get("In-Reply-To"), "<>")
		a.mu.Lock()
		a.errors[to] = append(a.errors[to], firstLines(body, 12))
		a.mu.Unlock()
	default:
		key := subject
		if i := strings.IndexAny(key, ":("); i > 0 {
			key = key[:i]
		}
		a.mu.Lock()
		a.other[key]++
		a.mu.Unlock()
	}
}

// mailBody is m's text, decoded, with LF line ends.
func mailBody(m *mail.Message) (string, error) {
	var r io.Reader = m.Body
	if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	return strings.ReplaceAll(string(b), "\r\n", "\n"), err
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// changesOf is the .changes near the end of a successful build's log
// mail: under its heading "PKG_VERSION_ARCH.changes:", from its first
// field to the blank line that ends it.
func changesOf(body, pkgv string) string {
	i := strings.LastIndex(body, "\n"+pkgv+"_")
	if i < 0 {
		return ""
	}
	rest := body[i+1:]
	head, rest, ok := strings.Cut(rest, "\n")
	if !ok || !strings.HasSuffix(head, ".changes:") {
		return ""
	}
	j := strings.Index(rest, "Format: ")
	if j < 0 {
		return ""
	}
	ch, _, _ := strings.Cut(rest[j:], "\n\n")
	return ch + "\n"
}

// answer signs and sends the answer to lm: "ok" with its .changes, or
// "fail". Some answers (drawn from the seed and the mail) wait for the
// next PostgreSQL stop, to arrive while the queue is down.
func (a *chaosAdmin) answer(lm *logMail) {
	c := a.c
	a.mu.Lock()
	a.seq++
	id := fmt.Sprintf("chaos-admin.%d.%d@example.org", a.seq, time.Now().UnixNano())
	a.mu.Unlock()
	r := &chaosReply{id: id, node: lm.node, to: lm}
	var text string
	switch lm.status {
	case string(queue.Successful):
		r.keyword, text = "ok", lm.changes
	default:
		r.keyword = "fail"
		text = replytest.KeywordTextOn("fail\nchaos admin: the build failed (answered by <"+id+">)", lm.pkgv, lm.arch, "bookworm")
	}
	r.signed = c.gpg.Clearsign(replytest.Admin, text, "SHA256", "")
	m := &replytest.Mail{From: replytest.Addr(replytest.Admin), To: "buildd@example.org", Subject: "Re: " + lm.subject,
		MessageID: id, InReplyTo: lm.id, Body: r.signed}
	r.raw = m.Compose()
	a.mu.Lock()
	a.replies = append(a.replies, r)
	hold := c.holdForOutage(lm)
	if hold {
		a.held = append(a.held, r)
	}
	a.mu.Unlock()
	if !hold {
		a.outboxes[lm.node] <- r
	}
}

// holdForOutage draws (from the seed and the mail) whether the answer to
// lm waits for the next PostgreSQL stop: one in three do while a stop is
// still ahead.
func (c *chaos) holdForOutage(lm *logMail) bool {
	ahead := false
	for _, e := range c.schedule {
		if (e.kind == evPGStop || e.kind == evPGRestart) && time.Now().Before(c.began.Add(e.at)) {
			ahead = true
		}
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d %s %s %s", c.seed, lm.node.name, lm.pkgv, lm.status)
	return ahead && h.Sum64()%3 == 0
}

// releaseHeld sends the answers held for an outage (called when
// PostgreSQL has stopped, and once the schedule is over).
func (a *chaosAdmin) releaseHeld() {
	a.mu.Lock()
	held := a.held
	a.held = nil
	a.mu.Unlock()
	for _, r := range held {
		a.outboxes[r.node] <- r
	}
}

// review answers again what waits for an answer: a package Built or
// Build-Attempted by a builder for a while, with nothing on its way to
// that builder, whose newest log mail's answers were all refused.
func (a *chaosAdmin) review() {
	c := a.c
	v, err := c.look()
	if err != nil {
		return
	}
	a.retryHeld()
	for _, r := range v.recs {
		if (r.State != queue.Built && r.State != queue.BuildAttempted) || time.Since(time.Unix(r.StateChange, 0)) < 15*time.Second {
			continue
		}
		n := c.node(r.Builder)
		if n == nil || len(a.outboxes[n]) > 0 || mqueueLen(n) > 0 || (r.State == queue.Built && inUploadQueue(n, r.Package)) {
			continue
		}
		answers := map[string]bool{string(queue.Successful): r.State == queue.Built,
			string(queue.Attempted): r.State == queue.BuildAttempted, "": r.State == queue.BuildAttempted}
		pkgv := r.Package + "_" + r.Version
		a.mu.Lock()
		var latest *logMail
		for _, lm := range a.logMails {
			if lm.node == n && lm.pkgv == pkgv && answers[lm.status] {
				latest = lm
			}
		}
		pending, sent := false, 0
		for _, rep := range a.replies {
			if rep.node == n && rep.to.pkgv == pkgv {
				sent++
				if rep.to == latest && len(a.errors[rep.id]) == 0 {
					pending = true
				}
			}
		}
		a.mu.Unlock()
		if latest != nil && !pending && sent < 6 {
			a.answer(latest)
		}
	}
}

// retryHeld lets the queue's builders take again each package it holds
// for the admin after its give-backs (infrastructure failures on two
// builders: here, the sick one and one hit by a fault), as an admin
// who read the mail and found the package blameless does
// (wanna-build --retry).
func (a *chaosAdmin) retryHeld() {
	c := a.c
	var held []string
	err := c.view.View("bookworm", "amd64", func(tx queue.Tx) error {
		last := map[string]*queue.BuildRecord{}
		if err := tx.Builds("", func(b *queue.BuildRecord) error { last[b.Package] = b; return nil }); err != nil {
			return err
		}
		for name, b := range last {
			if b.Outcome == queue.GivenBack && b.Held != "" {
				held = append(held, name)
			}
		}
		return nil
	})
	if err != nil || len(held) == 0 {
		return
	}
	slices.Sort(held)
	out, err := exec.Command(c.wbBin, append([]string{"--db", c.db.URL(pgtest.Admin), "-d", "bookworm", "-A", "amd64", "--retry"}, held...)...).CombinedOutput()
	if err != nil {
		return // the queue is down: the next review tries again
	}
	a.mu.Lock()
	a.retried += len(held)
	a.mu.Unlock()
	c.figure("the admin let %s be taken again (held after infrastructure failures): %s", strings.Join(held, ", "), strings.TrimSpace(string(out)))
}

// node is the builder named name, or nil.
func (c *chaos) node(name string) *chaosNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// mqueueLen is the number of mails waiting in n's mqueue.
func mqueueLen(n *chaosNode) int {
	ents, _ := os.ReadDir(filepath.Join(home.New(n.env.home).MQueueDir(), "new"))
	return len(ents)
}

// inUploadQueue reports a .changes of the package name in n's upload
// queue.
func inUploadQueue(n *chaosNode, name string) bool {
	m, _ := filepath.Glob(filepath.Join(home.New(n.env.home).UploadDir("upload"), name+"_*.changes"))
	return len(m) > 0
}

// mta delivers the replies to builder n through its buildd-mail (pipe
// mode), each again every 2 s until buildd-mail exits 0, and runs
// buildd-mail --process every 10 s while mails wait in n's mqueue (the
// retry a listener would make). A scheduled kill -9 takes the next run.
func (a *chaosAdmin) mta(n *chaosNode) {
	c := a.c
	retry := time.NewTicker(10 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-c.stopping:
			return
		case <-retry.C:
			if mqueueLen(n) > 0 {
				c.buildMail(n, nil, "--process")
			}
		case r := <-a.outboxes[n]:
			for {
				err, killed := c.buildMail(n, r.raw)
				c.mu.Lock()
				down := c.queueDown
				c.mu.Unlock()
				a.mu.Lock()
				r.deliveries++
				if killed {
					r.kills++
				}
				ok := err == nil && !killed
				if ok {
					r.accepted, r.whileDown = time.Now(), down
				}
				a.mu.Unlock()
				if ok {
					break
				}
				select {
				case <-c.stopping:
					return
				case <-time.After(2 * time.Second):
				}
			}
		}
	}
}

// buildMail runs n's buildd-mail with stdin (nil: none) and args, killed
// with SIGKILL when a kill of buildd-mail is armed.
func (c *chaos) buildMail(n *chaosNode, stdin []byte, args ...string) (error, bool) {
	cmd := exec.Command(c.mailBin, append([]string{"--config", n.env.conf}, args...)...)
	cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err, killed := c.mailKills.run(cmd)
	if killed > 0 {
		n.killedNow()
		what := "a reply on stdin"
		if stdin == nil {
			what = strings.Join(args, " ")
		}
		c.fault("kill -9 buildd-mail (%s) of %s %v after its start", what, n.name, killed)
		return err, true
	}
	if err != nil {
		err = fmt.Errorf("%w: %s", err, out.String())
	}
	return err, false
}

// killedNow records a kill -9 of a program writing in n's home.
func (n *chaosNode) killedNow() {
	n.mu.Lock()
	n.kills = append(n.kills, time.Now())
	n.mu.Unlock()
}

// uploaderCron runs n's buildd-uploader every 3 s while its upload queue
// has work; a scheduled kill -9 takes the next such run of any builder.
func (c *chaos) uploaderCron(n *chaosNode) {
	q := home.New(n.env.home).UploadQueue("upload")
	for {
		select {
		case <-c.stopping:
			return
		case <-time.After(3 * time.Second):
		}
		todo, err := q.Pending()
		untold, uerr := q.Untold()
		if (err != nil || len(todo) == 0) && (uerr != nil || len(untold) == 0) {
			continue
		}
		cmd := exec.Command(c.uploadBin, "--config", n.env.conf)
		cmd.Env = append(os.Environ(), "BUILDD_CONF=")
		if _, killed := c.upKills.run(cmd); killed > 0 {
			n.killedNow()
			c.fault("kill -9 buildd-uploader of %s %v after its start (uploading %v)", n.name, killed, todo)
		}
	}
}

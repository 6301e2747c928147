package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"buildd/buildd-mail/reply"
	"buildd/buildd-mail/verify"
	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/queue"
)

// answer handles a reply to a build log or a "Should I build" question:
// verify, tie it to the mail it answers, interpret, act. Mistakes of the
// sender go to j.errs; the error returned is a temporary failure.
//
// The reply acts on one build: a package version in a dist for an
// architecture (see target), and only with that queue and that build's
// files.
//
// A signature is spent (remembered in mail-signatures) only once every
// check that can refuse the answer without side effects has passed, just
// before it acts: a refused mail leaves the signature to the mail that
// carries it rightly, and a used one never acts again.
func (j *job) answer(ctx context.Context, perr error) error {
	p := j.p
	pkgv, distName := j.subj.PkgVersion, j.subj.Dist
	if len(p.Cfg.Arches(distName)) == 0 {
		var names []string
		for _, d := range p.Cfg.Dists {
			if !slices.Contains(names, d.DistName) {
				names = append(names, d.DistName)
			}
		}
		j.fail("Unknown distribution %q in the subject: this buildd builds for %s.", distName, strings.Join(names, ", "))
		return nil
	}
	if _, err := debversion.ParsePkgVersion(pkgv); err != nil {
		j.fail("The subject does not name a package and version: %v.\nAnswer the mail itself.", err)
		return nil
	}
	if perr != nil {
		j.fail("The mail cannot be read: %v", perr)
		return nil
	}
	dist, ok := j.target()
	if !ok {
		return nil
	}
	text, ok, err := j.verified()
	if !ok {
		return err
	}
	mem, err := p.mem()
	if err != nil {
		return err
	}
	first, seen := mem.Seen(j.sig.ID)
	j.resumed = seen && first == j.id
	if seen && !j.resumed {
		p.logf("%s(%s): replayed signature by %s refused (first used by mail %s)", pkgv, dist.Where(), j.sig.Fingerprint, first)
		j.fail("Signature check failed (replay): %s", verify.Replay(j.sig, first).Msg)
		return nil
	}
	kind := "log"
	if j.subj.Kind == reply.ShouldBuild {
		kind = "should-build"
	}
	if !j.checkSent(pkgv, dist, kind) {
		return nil
	}
	if j.resumed {
		p.logf("%s(%s): resuming mail %s signed by %s", pkgv, dist.Where(), j.id, j.sig.Fingerprint)
	}
	if j.subj.Kind == reply.LogReply && reply.LooksLikeChanges(text) {
		return j.upload(ctx, dist, pkgv, text)
	}
	r, err := reply.ParseKeywordReply(j.subj.Kind, text, pkgv, dist.BuiltArchitecture, distName, len(p.Cfg.Arches(distName)) == 1)
	if err != nil {
		j.fail("%v", err)
		return nil
	}
	table := logActions
	if j.subj.Kind == reply.ShouldBuild {
		table = shouldBuildActions
	}
	a, ok := table[r.Keyword]
	if !ok {
		j.fail("Bad keyword in answer %q.", r.Word)
		return nil
	}
	return j.perform(ctx, dist, pkgv, r, a)
}

// target is the [[dist]] of the build the reply answers: its subject's
// dist, for the architecture its subject names ("on ARCH"); a subject
// without one (a reply to a mail sent before subjects named it, or
// written by hand) answers the architecture the sent mail it names in
// In-Reply-To was about, when its record names one, else the dist's only
// architecture here. A dist
// built here for several, with no architecture to tell, is refused, and
// so is one not built for the architecture named (ok false, the reason
// in j.errs). checkSent then ties the reply to a mail sent about that
// very build.
func (j *job) target() (d *config.Dist, ok bool) {
	p := j.p
	pkgv, dist, arch := j.subj.PkgVersion, j.subj.Dist, j.subj.Arch
	if arch == "" && j.m.InReplyTo != "" {
		s, found, err := p.Home.Sent().Lookup(j.m.InReplyTo)
		if err != nil {
			j.fail("Cannot read the record of sent mails: %v", err)
			return nil, false
		}
		if found && s.PkgVersion == pkgv && s.Dist == dist {
			arch = s.Arch
		}
	}
	d, rerr := p.Cfg.Resolve(dist, arch)
	switch {
	case rerr == nil:
		return d, true
	case arch == "":
		p.logf("%s(%s): reply refused: no architecture: %v", pkgv, dist, rerr)
		j.fail("The subject names %s (dist=%s) without its architecture, and this buildd builds\n"+
			"dist=%s for %s. Answer the log mail itself: its subject names the architecture\n"+
			"(\"... of %s on ARCH (dist=%s)\").", pkgv, dist, dist, strings.Join(p.Cfg.Arches(dist), " and "), pkgv, dist)
	default:
		p.logf("%s(%s): reply refused: %v", pkgv, dist, rerr)
		j.fail("Unknown architecture %q in the subject: this buildd builds dist=%s for %s.", arch, dist, strings.Join(p.Cfg.Arches(dist), ", "))
	}
	return nil, false
}

// verified checks the signature and returns the signed text; ok is false
// when the mail is refused (j.errs) or on a temporary failure (err).
func (j *job) verified() (text string, ok bool, err error) {
	p := j.p
	kr, err := p.keys()
	if err != nil {
		return "", false, err
	}
	now := p.Now()
	var res *verify.Result
	if j.m.PGPMIME {
		// The signed part's own header (covered by the signature) gave
		// the charset.
		res, err = kr.Detached(j.m.SignedPart, j.m.Signature, now)
		text = j.m.Body
	} else {
		text, res, err = kr.Clearsigned(j.m.BodyBytes, now)
	}
	var verr *verify.Error
	if errors.As(err, &verr) {
		p.logf("%s(%s): reply from %s refused: %s: %s", j.subj.PkgVersion, j.subj.Dist, j.m.FromAddr, verr.Check, firstLine(verr.Msg))
		j.fail("Signature check failed (%s): %s", verr.Check, verr.Msg)
		return "", false, nil
	}
	if err != nil {
		j.fail("The mail cannot be read: %v", err)
		return "", false, nil
	}
	// An inline signature covers bytes, not the charset the unsigned
	// header claims for them: the signed text is read as UTF-8, whatever
	// that header says, so nobody can change its meaning after signing.
	if !j.m.PGPMIME && !utf8.ValidString(text) {
		j.fail("The signed text is not UTF-8 (the mail says charset %q, which is not signed).\nSign the reply as UTF-8 text; buildd-reply.el does this.", j.m.Charset)
		return "", false, nil
	}
	j.sig = res
	return text, true, nil
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// checkSent ties the reply to the mail it answers: the In-Reply-To must be
// a mail buildd sent about this package, dist and architecture (else the
// reply was re-aimed; a record written before records carried the
// architecture cannot tell it, and the signed text binds it instead), not
// older than reply_window (sent-mails and mail-signatures forget what is
// older), and the signature must be younger than that mail and than the
// newest mail buildd sent about the package there since (else it is an
// old answer replayed at a newer build).
func (j *job) checkSent(pkgv string, d *config.Dist, kind string) bool {
	sent := j.p.Home.Sent()
	means := func(dist, arch string) (bool, error) { return j.p.Cfg.Means(d, dist, arch) }
	named := fmt.Sprintf("%s on %s (dist=%s)", pkgv, d.BuiltArchitecture, d.DistName)
	var sm home.SentMail
	var found bool
	if j.m.InReplyTo != "" {
		s, ok, err := sent.Lookup(j.m.InReplyTo)
		if err != nil {
			j.fail("Cannot read the record of sent mails: %v", err)
			return false
		}
		if ours, err := means(s.Dist, s.Arch); ok && (s.PkgVersion != pkgv || !ours && err == nil) {
			about := home.RedoEntry{PkgVersion: s.PkgVersion, Dist: s.Dist, Arch: s.Arch}.Named()
			j.p.logf("%s(%s): re-aimed reply refused: In-Reply-To %s is about %s", pkgv, d.Where(), j.m.InReplyTo, about)
			j.fail("The reply answers the mail <%s> about %s, but its subject\nnames %s. Answer the mail about the package you mean.", s.MessageID, about, named)
			return false
		}
		sm, found = s, ok
	}
	latest, haveLatest, err := sent.Latest(pkgv, kind, means)
	if err != nil {
		j.fail("Cannot read the record of sent mails: %v", err)
		return false
	}
	if !found {
		sm, found = latest, haveLatest
	}
	if !found {
		what := "build log"
		if kind == "should-build" {
			what = `"Should I build" question`
		}
		j.fail("This buildd sent no %s for %s: answer the mail itself.", what, named)
		return false
	}
	// An interrupted mail is finished whatever its age: its signature was
	// already taken and part of its effect may be there.
	if window := time.Duration(j.p.Cfg.ReplyWindow) * 24 * time.Hour; !j.resumed && j.p.Now().Sub(sm.Time) > window {
		j.p.logf("%s(%s): reply refused: it answers mail <%s> sent %s, older than reply_window", pkgv, d.Where(), sm.MessageID, sm.Time.UTC().Format(time.RFC3339))
		j.fail("The reply answers a mail older than reply_window (%d days); answer the newer log mail\n(mail <%s> was sent %s).", j.p.Cfg.ReplyWindow, sm.MessageID, sm.Time.UTC().Format(time.RFC3339))
		return false
	}
	if j.sig.Created.Before(sm.Time) {
		j.p.logf("%s(%s): signature by %s from %s predates the mail it answers (%s)", pkgv, d.Where(), j.sig.Fingerprint, j.sig.Created.UTC().Format(time.RFC3339), sm.Time.UTC().Format(time.RFC3339))
		j.fail("Signature check failed (replay): the signature was made %s, before the mail\nit answers was sent (%s). An old answer cannot be reused; sign a new one.",
			j.sig.Created.UTC().Format(time.RFC3339), sm.Time.UTC().Format(time.RFC3339))
		return false
	}
	if haveLatest && j.sig.Created.Before(latest.Time) {
		j.p.logf("%s(%s): signature by %s from %s predates the newest mail about it (<%s>, %s)", pkgv, d.Where(), j.sig.Fingerprint, j.sig.Created.UTC().Format(time.RFC3339), latest.MessageID, latest.Time.UTC().Format(time.RFC3339))
		j.fail("Signature check failed (replay): the signature was made %s, before the newest\nmail about %s was sent (<%s>, %s). Answer that mail.",
			j.sig.Created.UTC().Format(time.RFC3339), named, latest.MessageID, latest.Time.UTC().Format(time.RFC3339))
		return false
	}
	return true
}

// An action is what one keyword does, split the way crash recovery needs
// it. perform runs every action the same way:
//
//  1. resumed after a crash, and done reports the effect already there:
//     only the purge is (re)done;
//  2. the checks that refuse without side effects: the version outdated
//     (when outdated is set), the queue state (states);
//  3. the signature is spent;
//  4. do makes the effect; then the package is purged when purge is set.
type action struct {
	outdated bool
	states   func(r *reply.Reply) []queue.State
	done     func(ctx context.Context, j *job, d *config.Dist, pkgv string, r *reply.Reply) bool
	do       func(ctx context.Context, j *job, d *config.Dist, pkgv string, r *reply.Reply) error
	purge    bool
}

// The states the classic check_state asks for.
var (
	builtOrBuilding = fixed(queue.Built, queue.Building, queue.BuildAttempted)
	// A reason that is only a bug reference, "(see #NNN)", may also be
	// added to a package already Failed.
	failable = func(r *reply.Reply) []queue.State {
		states := []queue.State{queue.Built, queue.Building, queue.BuildAttempted, queue.BDUninstallable}
		if isBugNo(r.Reason) {
			states = append(states, queue.Failed)
		}
		return states
	}
)

func fixed(states ...queue.State) func(*reply.Reply) []queue.State {
	return func(*reply.Reply) []queue.State { return states }
}

// logActions answer a build log, as the classic buildd-mail does: not-for-us
// and upload-rem whatever the queue says, the rest only for the current
// version in the right state.
var logActions = map[reply.Keyword]action{
	reply.NotForUs:  {done: inState(queue.NotForUs), do: queueAction("no-build", "set to Not-For-Us", noBuild), purge: true},
	reply.UploadRem: {do: removeFromUpload},
	reply.Fail:      {outdated: true, states: failable, done: failedWith, do: queueAction("--failed", "set to Failed", failed), purge: true},
	reply.Retry:     {outdated: true, states: builtOrBuilding, done: inREDO, do: redo("scheduled for rebuild (REDO)")},
	reply.DepWait:   {outdated: true, states: builtOrBuilding, done: inState(queue.DepWait), do: queueAction("--dep-wait", "set to Dep-Wait", depWait), purge: true},
	reply.Manual:    {outdated: true, states: builtOrBuilding, do: logOnly("will be finished manually")},
	reply.NewVers:   {outdated: true, done: newVersionInREDO, do: takeNewVersion, purge: true},
	reply.GiveBack:  {outdated: true, states: builtOrBuilding, done: inState(queue.NeedsBuild, queue.BDUninstallable), do: queueAction("--give-back", "given back", giveBack), purge: true},
	reply.Purge:     {outdated: true, do: logOnly("purge"), purge: true},
}

// shouldBuildActions answer "Should I build".
var shouldBuildActions = map[reply.Keyword]action{
	reply.Build:    {outdated: true, states: builtOrBuilding, done: inREDO, do: redo("should build: yes, scheduled (REDO)")},
	reply.Fail:     {outdated: true, states: builtOrBuilding, done: inState(queue.Failed), do: failAsBefore},
	reply.NotForUs: {outdated: true, states: builtOrBuilding, done: inState(queue.NotForUs), do: queueAction("no-build", "should build: no, set to Not-For-Us", noBuild)},
	reply.GiveBack: {outdated: true, states: builtOrBuilding, done: inState(queue.NeedsBuild, queue.BDUninstallable), do: queueAction("--give-back", "should build: given back", giveBack)},
}

// The wanna-build calls of the actions.
func noBuild(ctx context.Context, q Queue, pkgv string, _ *reply.Reply) error {
	return q.NoBuild(ctx, pkgv)
}

func failed(ctx context.Context, q Queue, pkgv string, r *reply.Reply) error {
	return q.Failed(ctx, pkgv, failText(r.Reason))
}

func depWait(ctx context.Context, q Queue, pkgv string, r *reply.Reply) error {
	return q.DepWait(ctx, pkgv, r.Args)
}

func giveBack(ctx context.Context, q Queue, pkgv string, _ *reply.Reply) error {
	return q.GiveBack(ctx, pkgv)
}

// perform runs an action (see action).
func (j *job) perform(ctx context.Context, d *config.Dist, pkgv string, r *reply.Reply, a action) error {
	if j.resumed && a.done != nil && a.done(ctx, j, d, pkgv, r) {
		j.act(pkgv, d, "%s already done (resumed)", r.Keyword)
		return j.finish(d, pkgv, a.purge)
	}
	if a.outdated && j.outdated(d, pkgv, []*config.Dist{d}) {
		return nil
	}
	if a.states != nil {
		if ok, err := j.checkState(ctx, d, pkgv, a.states(r)...); !ok {
			return err
		}
	}
	if err := j.spend(pkgv, d); err != nil {
		return err
	}
	if err := a.do(ctx, j, d, pkgv, r); err != nil || len(j.errs) > 0 {
		return err
	}
	return j.finish(d, pkgv, a.purge)
}

func (j *job) finish(d *config.Dist, pkgv string, purge bool) error {
	if !purge {
		return nil
	}
	return j.purge(d, pkgv)
}

// spend records the signature as used by this mail, durably, before the
// mail acts on pkgv in d: whatever happens from here on, it cannot act
// twice.
func (j *job) spend(pkgv string, d *config.Dist) error {
	mem, err := j.p.mem()
	if err != nil {
		return err
	}
	if err := mem.Remember(j.sig.ID, j.sig.Created, j.sig.Fingerprint, j.id); err != nil {
		return err
	}
	j.p.logf("%s(%s): reply from %s signed by %s (%s) at %s", pkgv, d.Where(), j.m.FromAddr, j.sig.Fingerprint, j.sig.UID, j.sig.Created.UTC().Format(time.RFC3339))
	return nil
}

func inState(states ...queue.State) func(context.Context, *job, *config.Dist, string, *reply.Reply) bool {
	return func(ctx context.Context, j *job, d *config.Dist, pkgv string, _ *reply.Reply) bool {
		st, _ := j.state(ctx, d, pkgv)
		return slices.Contains(states, st)
	}
}

func inREDO(_ context.Context, j *job, d *config.Dist, pkgv string, _ *reply.Reply) bool {
	es, _, _ := j.p.Home.REDO().Read()
	return j.p.hasRedo(es, pkgv, d)
}

func failedWith(ctx context.Context, j *job, d *config.Dist, pkgv string, r *reply.Reply) bool {
	info, err := j.p.queue(d).Info(ctx, debversion.SplitPkgVersion(pkgv).Name)
	return err == nil && info.State == queue.Failed && strings.Contains(info.FailedText, strings.TrimSpace(firstLine(r.Reason)))
}

// queueAction is an action that is one wanna-build call.
func queueAction(what, done string, call func(context.Context, Queue, string, *reply.Reply) error) func(context.Context, *job, *config.Dist, string, *reply.Reply) error {
	return func(ctx context.Context, j *job, d *config.Dist, pkgv string, r *reply.Reply) error {
		if ok, err := j.queueCall(pkgv, d, what, call(ctx, j.p.queue(d), pkgv, r)); !ok {
			return err
		}
		switch r.Keyword {
		case reply.Fail:
			j.act(pkgv, d, "%s: %s", done, firstLine(r.Reason))
		case reply.DepWait:
			j.act(pkgv, d, "%s; dependencies: %s", done, r.Args)
		default:
			j.act(pkgv, d, "%s", done)
		}
		return nil
	}
}

func logOnly(done string) func(context.Context, *job, *config.Dist, string, *reply.Reply) error {
	return func(_ context.Context, j *job, d *config.Dist, pkgv string, _ *reply.Reply) error {
		j.act(pkgv, d, "%s", done)
		return nil
	}
}

func removeFromUpload(_ context.Context, j *job, d *config.Dist, pkgv string, _ *reply.Reply) error {
	return j.removeFromUpload(d, pkgv)
}

func redo(done string) func(context.Context, *job, *config.Dist, string, *reply.Reply) error {
	return func(_ context.Context, j *job, d *config.Dist, pkgv string, _ *reply.Reply) error {
		if err := j.p.Home.REDO().Add(home.RedoEntry{PkgVersion: pkgv, Dist: d.DistName, Arch: d.BuiltArchitecture}); err != nil {
			return err
		}
		j.act(pkgv, d, "%s", done)
		return nil
	}
}

// newVersionOf is pkgv's package at the version a newvers reply names.
func newVersionOf(pkgv string, r *reply.Reply) string {
	return debversion.PkgVersion{Name: debversion.SplitPkgVersion(pkgv).Name, Version: r.Args}.String()
}

func newVersionInREDO(_ context.Context, j *job, d *config.Dist, pkgv string, r *reply.Reply) bool {
	es, _, _ := j.p.Home.REDO().Read()
	return j.p.hasRedo(es, newVersionOf(pkgv, r), d)
}

// takeNewVersion is newvers: take the version named and build it.
func takeNewVersion(ctx context.Context, j *job, d *config.Dist, pkgv string, r *reply.Reply) error {
	newv := newVersionOf(pkgv, r)
	if ok, err := j.queueCall(newv, d, "take", j.p.queue(d).Take(ctx, newv)); !ok {
		return err
	}
	if err := j.p.Home.REDO().Add(home.RedoEntry{PkgVersion: newv, Dist: d.DistName, Arch: d.BuiltArchitecture}); err != nil {
		return err
	}
	j.act(pkgv, d, "going to build %s instead (taken, REDO)", newv)
	return nil
}

// failAsBefore is "Should I build: fail": Failed with the previous
// version's failure text.
func failAsBefore(ctx context.Context, j *job, d *config.Dist, pkgv string, _ *reply.Reply) error {
	q := j.p.queue(d)
	msg := "Same as previous version (couldn't extract the text)\n"
	if info, err := q.Info(ctx, debversion.SplitPkgVersion(pkgv).Name); err == nil && strings.TrimSpace(info.OldFailed) != "" {
		msg = info.OldFailed
	} else {
		j.fail("Couldn't find Old-Failed in info for %s", pkgv)
	}
	if ok, err := j.queueCall(pkgv, d, "--failed", q.Failed(ctx, pkgv, failText(msg))); !ok {
		return err
	}
	j.act(pkgv, d, "should build: no, set to Failed as before")
	return nil
}

// act logs an action on pkgv in d with the signer's fingerprint.
func (j *job) act(pkgv string, d *config.Dist, format string, args ...any) {
	j.p.logf("%s(%s): %s [signed by %s]", pkgv, d.Where(), fmt.Sprintf(format, args...), j.sig.Fingerprint)
}

func isBugNo(reason string) bool {
	s := strings.TrimSpace(reason)
	return strings.HasPrefix(s, "(see #") && strings.HasSuffix(s, ")") && !strings.Contains(s, "\n")
}

// failText escapes a lone "." line, as the classic buildd-mail does before
// handing the text to wanna-build.
func failText(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l == "." {
			lines[i] = ".."
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// hasRedo reports whether es has a line for pkgv in d: its dist for its
// architecture, or its dist alone when d is the dist's only architecture.
func (p *Processor) hasRedo(es []home.RedoEntry, pkgv string, d *config.Dist) bool {
	return slices.ContainsFunc(es, func(e home.RedoEntry) bool { return e.PkgVersion == pkgv && p.means(d, e) })
}

// means reports whether the REDO entry e is about d (see
// config.Config.Means).
func (p *Processor) means(d *config.Dist, e home.RedoEntry) bool {
	ok, _ := p.Cfg.Means(d, e.Dist, e.Arch)
	return ok
}

// queueCall turns a queue refusal into an error for the sender (false,
// nil) and anything else into a temporary failure (false, err).
func (j *job) queueCall(pkgv string, d *config.Dist, what string, err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if queue.IsRefused(err) {
		j.p.logf("%s(%s): wanna-build %s refused: %v", pkgv, d.Where(), what, err)
		j.fail("wanna-build %s failed for %s on %s (dist=%s):\n%v", what, pkgv, d.BuiltArchitecture, d.DistName, err)
		return false, nil
	}
	return false, err
}

// state returns the queue state of pkgv's package ("" when unknown).
func (j *job) state(ctx context.Context, d *config.Dist, pkgv string) (queue.State, error) {
	info, err := j.p.queue(d).Info(ctx, debversion.SplitPkgVersion(pkgv).Name)
	if err != nil {
		return "", err
	}
	return info.State, nil
}

// checkState is the classic check_state: the version in the subject must be
// the queue's, the state one of states, and the package this buildd's.
//
// The classic check asks the last only of a Building package. Builders
// sharing one queue need it in every state that names the builder that has
// the package (Building, Built, Build-Attempted, Uploaded, Install-Wait,
// Reupload-Wait, Failed, Dep-Wait, ...): an answer to a stale log mail must
// not upload this buildd's old files of a package another builder has built
// since, nor fail, retry, dep-wait or give back another builder's build.
// Needs-Build and BD-Uninstallable are the exception (see ownerless). With
// one buildd per queue every builder the queue names is this buildd's db
// user, and nothing changes.
func (j *job) checkState(ctx context.Context, d *config.Dist, pkgv string, states ...queue.State) (bool, error) {
	pv := debversion.SplitPkgVersion(pkgv)
	name := pv.Name
	msg := fmt.Sprintf("%s(%s) check_state(%s): ", pkgv, d.Where(), joinStates(states, " "))
	info, err := j.p.queue(d).Info(ctx, name)
	if errors.Is(err, queue.ErrNotRegistered) {
		j.fail("%s%s is not registered in the wanna-build queue of %s.\nCheck the package name in the subject.", msg, name, d.Where())
		return false, nil
	}
	if queue.IsRefused(err) {
		j.fail("%s%v", msg, err)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	queued := debversion.PkgVersion{Name: name, Version: info.Version}.WithBinNMU(info.BinNMU)
	if queued.Version != pv.Version {
		j.fail("%sversion %s registered as %s\n(the queue has another version now: answer the mail about %s).", msg, queued.Version, info.State, queued)
		return false, nil
	}
	if !slices.Contains(states, info.State) {
		j.fail("%sstate is %s\n(this answer needs one of: %s).", msg, info.State, joinStates(states, ", "))
		return false, nil
	}
	if info.Builder != "" && info.Builder != d.WannaBuildDBUser && !ownerless(info.State) {
		if info.State == queue.Building {
			j.fail("%sis building by %s\n(not by this buildd, %s).", msg, info.Builder, d.WannaBuildDBUser)
		} else {
			j.fail("%sis %s by %s\n(not by this buildd, %s).", msg, info.State, info.Builder, d.WannaBuildDBUser)
		}
		return false, nil
	}
	return true, nil
}

// ownerless reports whether a package in state waits for a builder: a
// builder name the queue still has then is a leftover, not an owner. A
// give-back clears it, but a Dep-Wait whose dependencies appear becomes
// Needs-Build, and the installability check moves a package between
// Needs-Build and BD-Uninstallable, keeping the name of whoever set it
// Dep-Wait (internal/queue: resolveDepWait, applyInstallability).
func ownerless(state queue.State) bool {
	return state == queue.NeedsBuild || state == queue.BDUninstallable
}

// outdated is the classic check_is_outdated over dists (each for its
// architecture). A line of outdated-packages naming the package in a dist
// without the architecture the host builds it for several of cannot be
// told: the reply is refused until the admin fixes the line.
func (j *job) outdated(d *config.Dist, pkgv string, dists []*config.Dist) bool {
	var lines []string
	for _, od := range dists {
		newv, ok, err := j.p.Home.Outdated().IsOutdated(pkgv, func(dist, arch string) (bool, error) { return j.p.Cfg.Means(od, dist, arch) })
		var le *home.LineError
		switch {
		case errors.As(err, &le):
			j.fail("%v\nThe line does not tell which architecture's build was superseded: write DIST/ARCH in it\n(%s), or remove it, and answer again.", err, od.Where())
			return true
		case err != nil:
			j.fail("Cannot read outdated-packages: %v", err)
			return true
		case ok:
			lines = append(lines, od.Where()+": "+newv)
		}
	}
	if len(lines) == 0 {
		return false
	}
	j.p.logf("%s(%s) outdated; new versions %s", pkgv, d.Where(), strings.Join(lines, ", "))
	j.fail("Package %s (%s) is outdated.\nThe following new versions have appeared in the meantime:\n %s", pkgv, d.Where(), strings.Join(lines, "\n "))
	return true
}

// joinStates is states joined by sep, for a message.
func joinStates(states []queue.State, sep string) string {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = string(st)
	}
	return strings.Join(names, sep)
}

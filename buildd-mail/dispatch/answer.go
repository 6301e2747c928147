package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"buildd/buildd-mail/reply"
	"buildd/buildd-mail/verify"
	"buildd/buildd/config"
	"buildd/buildd/home"
	"buildd/wannabuild/client"
)

// answer handles a reply to a build log or a "Should I build" question:
// verify, interpret, act. Mistakes of the sender go to j.errs; the error
// returned is a temporary failure.
func (j *job) answer(ctx context.Context, perr error) error {
	p := j.p
	pkgv, distName := j.subj.PkgVersion, j.subj.Dist
	dist, ok := p.Cfg.Dist(distName)
	if !ok {
		var names []string
		for _, d := range p.Cfg.Dists {
			names = append(names, d.DistName)
		}
		j.fail("Unknown distribution %q in the subject: this buildd builds for %s.", distName, strings.Join(names, ", "))
		return nil
	}
	if perr != nil {
		j.fail("The mail cannot be read: %v", perr)
		return nil
	}
	kr, err := p.keys()
	if err != nil {
		return err
	}
	now := p.Now()
	var text string
	var res *verify.Result
	if j.m.PGPMIME {
		res, err = kr.Detached(j.m.SignedPart, j.m.Signature, now)
		text = j.m.Body
	} else {
		text, res, err = kr.Clearsigned(j.m.BodyBytes, now)
		if err == nil {
			text, err = reply.Decode([]byte(text), j.m.Charset)
		}
	}
	var verr *verify.Error
	if errors.As(err, &verr) {
		p.logf("%s(%s): reply from %s refused: %s: %s", pkgv, distName, j.m.FromAddr, verr.Check, firstLine(verr.Msg))
		j.fail("Signature check failed (%s): %s", verr.Check, verr.Msg)
		return nil
	}
	if err != nil {
		j.fail("The mail cannot be read: %v", err)
		return nil
	}
	j.sig = res

	kind := "log"
	if j.subj.Kind == reply.ShouldBuild {
		kind = "should-build"
	}
	mem, err := p.mem()
	if err != nil {
		return err
	}
	first, seen := mem.Seen(res.ID)
	j.resumed = seen && first == j.id
	if !j.checkSent(pkgv, distName, kind) {
		return nil
	}
	if seen && first != j.id {
		p.logf("%s(%s): replayed signature by %s refused (first used by mail %s)", pkgv, distName, res.Fingerprint, first)
		j.fail("Signature check failed (replay): %s", verify.Replay(res, first).(*verify.Error).Msg)
		return nil
	} else if seen {
		p.logf("%s(%s): resuming mail %s signed by %s", pkgv, distName, j.id, res.Fingerprint)
	}
	// Remember the signature before anything is done, so that it can never
	// act twice, whatever happens from here on.
	if err := mem.Remember(res, j.id); err != nil {
		return err
	}
	p.logf("%s(%s): reply from %s signed by %s (%s) at %s", pkgv, distName, j.m.FromAddr, res.Fingerprint, res.UID, res.Created.UTC().Format(time.RFC3339))

	if j.subj.Kind == reply.LogReply && reply.LooksLikeChanges(text) {
		return j.upload(ctx, dist, pkgv, text)
	}
	r, err := reply.ParseKeywordReply(j.subj.Kind, text, pkgv, distName)
	if err != nil {
		j.fail("%v", err)
		return nil
	}
	if j.subj.Kind == reply.ShouldBuild {
		return j.shouldBuild(ctx, dist, pkgv, r)
	}
	return j.logReply(ctx, dist, pkgv, r)
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// checkSent ties the reply to the mail it answers: the In-Reply-To must be
// a mail buildd sent about this package and dist (else the reply was
// re-aimed), not older than reply_window (sent-mails and mail-signatures
// forget what is older), and the signature must be younger than that mail
// (else it is an old answer replayed).
func (j *job) checkSent(pkgv, dist, kind string) bool {
	sent := j.p.Home.Sent()
	var sm home.SentMail
	var found bool
	if j.m.InReplyTo != "" {
		s, ok, err := sent.Lookup(j.m.InReplyTo)
		if err != nil {
			j.fail("Cannot read the record of sent mails: %v", err)
			return false
		}
		if ok && (s.PkgVersion != pkgv || s.Dist != dist) {
			j.p.logf("%s(%s): re-aimed reply refused: In-Reply-To %s is about %s(%s)", pkgv, dist, j.m.InReplyTo, s.PkgVersion, s.Dist)
			j.fail("The reply answers the mail <%s> about %s (dist=%s), but its subject\nnames %s (dist=%s). Answer the mail about the package you mean.", s.MessageID, s.PkgVersion, s.Dist, pkgv, dist)
			return false
		}
		sm, found = s, ok
	}
	if !found {
		s, ok, err := sent.Latest(dist, pkgv, kind)
		if err != nil {
			j.fail("Cannot read the record of sent mails: %v", err)
			return false
		}
		sm, found = s, ok
	}
	if !found {
		what := "build log"
		if kind == "should-build" {
			what = `"Should I build" question`
		}
		j.fail("This buildd sent no %s for %s (dist=%s): answer the mail itself.", what, pkgv, dist)
		return false
	}
	// An interrupted mail is finished whatever its age: its signature was
	// already taken and part of its effect may be there.
	if window := time.Duration(j.p.Cfg.ReplyWindow) * 24 * time.Hour; !j.resumed && j.p.Now().Sub(sm.Time) > window {
		j.p.logf("%s(%s): reply refused: it answers mail <%s> sent %s, older than reply_window", pkgv, dist, sm.MessageID, sm.Time.UTC().Format(time.RFC3339))
		j.fail("The reply answers a mail older than reply_window (%d days); answer the newer log mail\n(mail <%s> was sent %s).", j.p.Cfg.ReplyWindow, sm.MessageID, sm.Time.UTC().Format(time.RFC3339))
		return false
	}
	if j.sig.Created.Before(sm.Time) {
		j.p.logf("%s(%s): signature by %s from %s predates the mail it answers (%s)", pkgv, dist, j.sig.Fingerprint, j.sig.Created.UTC().Format(time.RFC3339), sm.Time.UTC().Format(time.RFC3339))
		j.fail("Signature check failed (replay): the signature was made %s, before the mail\nit answers was sent (%s). An old answer cannot be reused; sign a new one.",
			j.sig.Created.UTC().Format(time.RFC3339), sm.Time.UTC().Format(time.RFC3339))
		return false
	}
	return true
}

// act logs an action with the signer's fingerprint.
func (j *job) act(pkgv, dist, format string, args ...any) {
	j.p.logf("%s(%s): %s [signed by %s]", pkgv, dist, fmt.Sprintf(format, args...), j.sig.Fingerprint)
}

// logReply acts on a keyword answering a build log, in the classic order.
func (j *job) logReply(ctx context.Context, d *config.Dist, pkgv string, r *reply.Reply) error {
	q := j.p.queue(d)
	dist := d.DistName
	switch r.Keyword {
	case reply.NotForUs:
		if j.resumed {
			if st, _ := j.state(ctx, d, pkgv); st == "Not-For-Us" {
				return j.purge(d, pkgv)
			}
		}
		if ok, err := j.queueCall(pkgv, dist, "no-build", q.NoBuild(ctx, pkgv)); !ok {
			return err
		}
		j.act(pkgv, dist, "set to Not-For-Us")
		return j.purge(d, pkgv)
	case reply.UploadRem:
		return j.removeFromUpload(d, pkgv)
	}
	if j.outdated(d, pkgv, []string{dist}) {
		return nil
	}
	switch r.Keyword {
	case reply.Fail:
		states := []string{"Built", "Building", "Build-Attempted", "BD-Uninstallable"}
		if isBugNo(r.Reason) {
			states = []string{"Failed"}
		}
		if j.resumed && j.failedWith(ctx, d, pkgv, r.Reason) {
			return j.purge(d, pkgv)
		}
		if ok, err := j.checkState(ctx, d, pkgv, states...); !ok {
			return err
		}
		if ok, err := j.queueCall(pkgv, dist, "--failed", q.Failed(ctx, pkgv, failText(r.Reason))); !ok {
			return err
		}
		j.act(pkgv, dist, "set to Failed: %s", firstLine(r.Reason))
		return j.purge(d, pkgv)
	case reply.Retry:
		if ok, err := j.checkState(ctx, d, pkgv, "Built", "Building", "Build-Attempted"); !ok {
			return err
		}
		if err := j.p.Home.REDO().Add(home.RedoEntry{PkgVersion: pkgv, Dist: dist}); err != nil {
			return err
		}
		j.act(pkgv, dist, "scheduled for rebuild (REDO)")
		return nil
	case reply.DepWait:
		if j.resumed {
			if st, _ := j.state(ctx, d, pkgv); st == "Dep-Wait" {
				return j.purge(d, pkgv)
			}
		}
		if ok, err := j.checkState(ctx, d, pkgv, "Built", "Building", "Build-Attempted"); !ok {
			return err
		}
		if ok, err := j.queueCall(pkgv, dist, "--dep-wait", q.DepWait(ctx, pkgv, r.Args)); !ok {
			return err
		}
		j.act(pkgv, dist, "set to Dep-Wait; dependencies: %s", r.Args)
		return j.purge(d, pkgv)
	case reply.Manual:
		if ok, err := j.checkState(ctx, d, pkgv, "Built", "Building", "Build-Attempted"); !ok {
			return err
		}
		j.act(pkgv, dist, "will be finished manually")
		return nil
	case reply.NewVers:
		name := strings.SplitN(pkgv, "_", 2)[0]
		newv := name + "_" + r.Args
		if j.resumed {
			if es, _, _ := j.p.Home.REDO().Read(); hasRedo(es, newv, dist) {
				return j.purge(d, pkgv)
			}
		}
		if ok, err := j.queueCall(newv, dist, "take", q.Take(ctx, newv)); !ok {
			return err
		}
		if err := j.p.Home.REDO().Add(home.RedoEntry{PkgVersion: newv, Dist: dist}); err != nil {
			return err
		}
		j.act(pkgv, dist, "going to build %s instead (taken, REDO)", newv)
		return j.purge(d, pkgv)
	case reply.GiveBack:
		if j.resumed {
			if st, _ := j.state(ctx, d, pkgv); st == "Needs-Build" || st == "BD-Uninstallable" {
				return j.purge(d, pkgv)
			}
		}
		if ok, err := j.checkState(ctx, d, pkgv, "Built", "Building", "Build-Attempted"); !ok {
			return err
		}
		if ok, err := j.queueCall(pkgv, dist, "--give-back", q.GiveBack(ctx, pkgv)); !ok {
			return err
		}
		j.act(pkgv, dist, "given back")
		return j.purge(d, pkgv)
	case reply.Purge:
		j.act(pkgv, dist, "purge")
		return j.purge(d, pkgv)
	}
	j.fail("Bad keyword in answer %q.", r.Word)
	return nil
}

// shouldBuild acts on the answer to "Should I build".
func (j *job) shouldBuild(ctx context.Context, d *config.Dist, pkgv string, r *reply.Reply) error {
	q := j.p.queue(d)
	dist := d.DistName
	if j.outdated(d, pkgv, []string{dist}) {
		return nil
	}
	if j.resumed {
		st, _ := j.state(ctx, d, pkgv)
		es, _, _ := j.p.Home.REDO().Read()
		if (r.Keyword == reply.Build && hasRedo(es, pkgv, dist)) ||
			(r.Keyword == reply.Fail && st == "Failed") ||
			(r.Keyword == reply.NotForUs && st == "Not-For-Us") ||
			(r.Keyword == reply.GiveBack && (st == "Needs-Build" || st == "BD-Uninstallable")) {
			return nil
		}
	}
	if ok, err := j.checkState(ctx, d, pkgv, "Built", "Building", "Build-Attempted"); !ok {
		return err
	}
	switch r.Keyword {
	case reply.Build:
		if err := j.p.Home.REDO().Add(home.RedoEntry{PkgVersion: pkgv, Dist: dist}); err != nil {
			return err
		}
		j.act(pkgv, dist, "should build: yes, scheduled (REDO)")
	case reply.Fail:
		msg := "Same as previous version (couldn't extract the text)\n"
		if info, err := q.Info(ctx, strings.SplitN(pkgv, "_", 2)[0]); err == nil && strings.TrimSpace(info.OldFailed) != "" {
			msg = info.OldFailed
		} else {
			j.fail("Couldn't find Old-Failed in info for %s", pkgv)
		}
		if ok, err := j.queueCall(pkgv, dist, "--failed", q.Failed(ctx, pkgv, failText(msg))); !ok {
			return err
		}
		j.act(pkgv, dist, "should build: no, set to Failed as before")
	case reply.NotForUs:
		if ok, err := j.queueCall(pkgv, dist, "no-build", q.NoBuild(ctx, pkgv)); !ok {
			return err
		}
		j.act(pkgv, dist, "should build: no, set to Not-For-Us")
	case reply.GiveBack:
		if ok, err := j.queueCall(pkgv, dist, "--give-back", q.GiveBack(ctx, pkgv)); !ok {
			return err
		}
		j.act(pkgv, dist, "should build: given back")
	}
	return nil
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

func hasRedo(es []home.RedoEntry, pkgv, dist string) bool {
	for _, e := range es {
		if e.PkgVersion == pkgv && e.Dist == dist {
			return true
		}
	}
	return false
}

// queueCall turns a queue refusal into an error for the sender (false,
// nil) and anything else into a temporary failure (false, err).
func (j *job) queueCall(pkgv, dist, what string, err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	var ref *client.Refused
	if errors.As(err, &ref) || errors.Is(err, client.ErrNotRegistered) {
		j.p.logf("%s(%s): wanna-build %s refused: %v", pkgv, dist, what, err)
		j.fail("wanna-build %s failed for %s (dist=%s):\n%v", what, pkgv, dist, err)
		return false, nil
	}
	return false, err
}

// state returns the queue state of pkgv's package ("" when unknown).
func (j *job) state(ctx context.Context, d *config.Dist, pkgv string) (string, error) {
	info, err := j.p.queue(d).Info(ctx, strings.SplitN(pkgv, "_", 2)[0])
	if err != nil {
		return "", err
	}
	return info.State, nil
}

func (j *job) failedWith(ctx context.Context, d *config.Dist, pkgv, reason string) bool {
	info, err := j.p.queue(d).Info(ctx, strings.SplitN(pkgv, "_", 2)[0])
	return err == nil && info.State == "Failed" && strings.Contains(info.FailedText, strings.TrimSpace(firstLine(reason)))
}

// checkState is the classic check_state: the version in the subject must be
// the queue's, the state one of states, and a package Building ours.
func (j *job) checkState(ctx context.Context, d *config.Dist, pkgv string, states ...string) (bool, error) {
	name, vers, _ := strings.Cut(pkgv, "_")
	msg := fmt.Sprintf("%s(%s) check_state(%s): ", pkgv, d.DistName, strings.Join(states, " "))
	info, err := j.p.queue(d).Info(ctx, name)
	if errors.Is(err, client.ErrNotRegistered) {
		j.fail("%s%s is not registered in the wanna-build queue of %s.\nCheck the package name in the subject.", msg, name, d.DistName)
		return false, nil
	}
	var ref *client.Refused
	if errors.As(err, &ref) {
		j.fail("%s%v", msg, err)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	av := info.Version
	if info.BinNMU > 0 {
		av = fmt.Sprintf("%s+b%d", av, info.BinNMU)
	}
	if av != vers {
		j.fail("%sversion %s registered as %s\n(the queue has another version now: answer the mail about %s_%s).", msg, av, info.State, name, av)
		return false, nil
	}
	ok := false
	for _, s := range states {
		ok = ok || s == info.State
	}
	if !ok {
		j.fail("%sstate is %s\n(this answer needs one of: %s).", msg, info.State, strings.Join(states, ", "))
		return false, nil
	}
	if info.State == "Building" && info.Builder != d.WannaBuildDBUser {
		j.fail("%sis building by %s\n(not by this buildd, %s).", msg, info.Builder, d.WannaBuildDBUser)
		return false, nil
	}
	return true, nil
}

// outdated is the classic check_is_outdated over dists.
func (j *job) outdated(d *config.Dist, pkgv string, dists []string) bool {
	var lines []string
	for _, dn := range dists {
		newv, ok, err := j.p.Home.Outdated().IsOutdated(pkgv, dn)
		if err != nil {
			j.fail("Cannot read outdated-packages: %v", err)
			return true
		}
		if ok {
			lines = append(lines, dn+": "+newv)
		}
	}
	if len(lines) == 0 {
		return false
	}
	j.p.logf("%s(%s) outdated; new versions %s", pkgv, d.DistName, strings.Join(lines, ", "))
	j.fail("Package %s (%s) is outdated.\nThe following new versions have appeared in the meantime:\n %s", pkgv, d.DistName, strings.Join(lines, "\n "))
	return true
}

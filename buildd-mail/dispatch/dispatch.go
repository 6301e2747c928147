// Package dispatch owns what buildd-mail does with a mail: it drains the
// mqueue in arrival order under the processing lock, recognises each mail
// by its subject, has admins' replies verified and acts on them against the
// wanna-build queue and the home directory (REDO, PURGE, upload queues,
// outdated-packages), answers with an error reply when it cannot, and
// forwards what it does not understand to admin_mail.
//
// Every action is safe to repeat: a mail is removed from the queue only
// after its effect is committed, and a mail whose signature was already
// remembered for it (processing interrupted by a crash) is resumed by
// checking, action by action, whether the effect is already there.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"buildd/buildd-mail/message"
	"buildd/buildd-mail/mqueue"
	"buildd/buildd-mail/reply"
	"buildd/buildd-mail/verify"
	"buildd/internal/config"
	"buildd/internal/daemonlog"
	"buildd/internal/debversion"
	"buildd/internal/flock"
	"buildd/internal/home"
	"buildd/internal/program"
	"buildd/internal/queue"
	"buildd/internal/queue/port"
)

// Queue is the wanna-build queue of one dist (internal/queue/port).
type Queue = queue.Port

// Processor handles mails for one home.
type Processor struct {
	program.Env
	// Now is the clock (time.Now).
	Now func() time.Time

	keyring     *verify.Keyring
	keyringErr  error
	keyringTime time.Time
	memory      *home.Signatures
	queues      map[string]Queue // per dist and arch (config.Dist.Where)
}

// New returns a processor; the log goes to w (the daemon log).
func New(cfg *config.Config, lg *daemonlog.Log) *Processor {
	return &Processor{
		Env:    program.NewEnv(cfg, lg),
		Now:    time.Now,
		queues: map[string]Queue{},
	}
}

func (p *Processor) logf(format string, args ...any) {
	p.Log.Printf(format, args...)
}

// queue is the wanna-build queue of d: its dist for its architecture.
func (p *Processor) queue(d *config.Dist) Queue {
	q, ok := p.queues[d.Where()]
	if !ok {
		q = port.Open(p.Cfg, d)
		p.queues[d.Where()] = q
	}
	return q
}

// Close closes the queue ports the processor keeps.
func (p *Processor) Close() error {
	var err error
	for name, q := range p.queues {
		err = errors.Join(err, q.Close())
		delete(p.queues, name)
	}
	return err
}

// keys loads the admin keyring once per process.
func (p *Processor) keys() (*verify.Keyring, error) {
	if p.keyring == nil && p.keyringErr == nil {
		if st, err := os.Stat(p.Cfg.AdminKeyring); err == nil {
			p.keyringTime = st.ModTime()
		}
		p.keyring, p.keyringErr = verify.LoadKeyring(p.Cfg.AdminKeyring)
	}
	return p.keyring, p.keyringErr
}

func (p *Processor) mem() (*home.Signatures, error) {
	if p.memory == nil {
		m, err := p.Home.Signatures()
		if err != nil {
			return nil, err
		}
		p.memory = m
	}
	return p.memory, nil
}

// TempError is a failure that is not the mail's fault (a file that cannot
// be written, a queue that cannot be reached): the mail stays queued and is
// tried again by the next run.
type TempError struct{ Err error }

func (e *TempError) Error() string { return "temporary failure: " + e.Err.Error() }
func (e *TempError) Unwrap() error { return e.Err }

func temp(err error) error {
	var t *TempError
	if err == nil || errors.As(err, &t) {
		return err
	}
	return &TempError{err}
}

// Drain processes every queued mail, oldest first, under the queue's lock.
// When another processor holds the lock it returns at once: that one will
// see the mails. A mail failing temporarily is skipped for this run (left
// in the queue, retried by the next run), and so is every later mail about
// the same package and dist, to keep their order; the others go on. A mail
// still failing after mqueue_max_age is answered with an error and dropped.
// Drain returns an error naming the mails it kept.
func (p *Processor) Drain(ctx context.Context, q *mqueue.Queue) error {
	kept := map[string]bool{}
	for {
		l, err := q.TryLock()
		if errors.Is(err, flock.ErrLocked) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, ferr := p.Mail.Flush(); ferr != nil {
			p.logf("mail spool: %v", ferr)
		}
		err = p.drainLocked(ctx, q, kept)
		l.Unlock()
		if err != nil {
			return err
		}
		// A mail stored while we held the lock may have found it taken.
		names, err := q.List()
		if err != nil {
			return err
		}
		if !hasNew(names, kept) {
			if len(kept) > 0 {
				return fmt.Errorf("%d mail(s) kept in %s for the next run (temporary failures, see the log)", len(kept), q.Dir)
			}
			return nil
		}
	}
}

func hasNew(names []string, kept map[string]bool) bool {
	for _, n := range names {
		if !kept[n] {
			return true
		}
	}
	return false
}

func (p *Processor) drainLocked(ctx context.Context, q *mqueue.Queue, kept map[string]bool) error {
	q.CleanTmp(24 * time.Hour)
	// Another process may have used signatures since (a --serve processor
	// lives long): re-read the memory under the lock; re-read the keyring
	// when it changed.
	p.memory = nil
	if st, err := os.Stat(p.Cfg.AdminKeyring); err != nil || !st.ModTime().Equal(p.keyringTime) {
		p.keyring, p.keyringErr = nil, nil
	}
	blocked := map[string]string{} // package key -> the kept mail it waits for
	for {
		names, err := q.List()
		if err != nil {
			return err
		}
		if !hasNew(names, kept) {
			return nil
		}
		for _, n := range names {
			if kept[n] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			raw, err := q.Read(n)
			if errors.Is(err, mqueue.ErrTooBig) {
				// Stored before the size limit (or not a regular file):
				// it can never be read, so it must not hold up the rest.
				p.logf("mail %s dropped: %v", n, err)
				if err := q.Remove(n); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			// Each mail is parsed once (the parse is bounded: see reply).
			m, perr := message.Parse(raw)
			key := packageKey(m)
			if first, ok := blocked[key]; ok && key != "" {
				p.logf("mail %s kept for the next run: it follows mail %s about the same package", n, first)
				kept[n] = true
				continue
			}
			if err := p.handle(ctx, n, raw, m, perr); err != nil {
				done, rerr := p.expire(q, n, raw, m, err)
				if rerr != nil {
					return rerr
				}
				if !done {
					p.logf("mail %s kept for the next run: %v", n, err)
					kept[n] = true
					if key != "" {
						blocked[key] = n
					}
					continue
				}
			}
			if err := q.Remove(n); err != nil {
				return err
			}
		}
	}
}

// packageKey names what a mail is about, for keeping the order of the
// mails about one package: "dist name" for replies and "new version"
// notices (whatever the architecture: a notice names none), "" for the
// rest.
func packageKey(m *message.Mail) string {
	if m == nil {
		return ""
	}
	s := reply.ClassifySubject(m.Subject)
	name := s.Package
	if s.PkgVersion != "" {
		name = debversion.SplitPkgVersion(s.PkgVersion).Name
	}
	if name == "" {
		return ""
	}
	return s.Dist + " " + name
}

// expire answers and drops a mail that failed temporarily (err) and has
// been queued longer than mqueue_max_age; it reports whether it did.
func (p *Processor) expire(q *mqueue.Queue, n string, raw []byte, m *message.Mail, err error) (bool, error) {
	arrived, aerr := q.Arrived(n)
	if aerr != nil {
		return false, aerr
	}
	maxAge := time.Duration(p.Cfg.MQueueMaxAge) * time.Hour
	if p.Now().Sub(arrived) <= maxAge {
		return false, nil
	}
	last := err
	var t *TempError
	if errors.As(err, &t) {
		last = t.Err
	}
	if m == nil {
		p.logf("mail %s (unreadable) could not be processed for %d hours: %v; dropped", n, p.Cfg.MQueueMaxAge, last)
		return true, nil
	}
	p.logf("mail %s from %s (Subject: %s) could not be processed for %d hours: %v; dropped, sender told to resend",
		n, m.FromAddr, m.Subject, p.Cfg.MQueueMaxAge, last)
	j := &job{p: p, id: n, raw: raw, m: m}
	j.fail("The mail could not be processed for %d hours: %v; please resend\n(sign an answer anew: its old signature may already be spent).", p.Cfg.MQueueMaxAge, last)
	return true, j.errorReply()
}

// job is one mail being handled.
type job struct {
	p       *Processor
	id      string
	raw     []byte
	m       *message.Mail
	subj    reply.Subject
	errs    []string
	sig     *verify.Result
	resumed bool
}

func (j *job) fail(format string, args ...any) {
	j.errs = append(j.errs, strings.TrimRight(fmt.Sprintf(format, args...), "\n")+"\n")
}

// handle processes one mail stored under the name id, parsed as m (nil
// when unreadable: perr says why). It returns an error only when the mail
// must stay queued (TempError); everything the sender got wrong is
// answered with an error reply and the mail is done.
func (p *Processor) handle(ctx context.Context, id string, raw []byte, m *message.Mail, perr error) error {
	if m == nil {
		p.logf("mail %s: unreadable (%v); forwarding to %s", id, perr, p.Cfg.AdminMail)
		return p.forwardRaw(id, raw, "")
	}
	j := &job{p: p, id: id, raw: raw, m: m, subj: reply.ClassifySubject(m.Subject)}
	if bl, err := p.blacklisted(m.FromAddr); err != nil {
		return temp(err)
	} else if bl {
		p.logf("mail %s from %s (Subject: %s): address is blacklisted, deleting mail", id, m.FromAddr, m.Subject)
		return nil
	}
	if m.FromMailerDaemon() {
		n, err := p.countErrorMail(id)
		if err != nil {
			return temp(err)
		}
		if n > 5 {
			p.logf("Too many error mails (%d) within %d hours; not forwarding mail from %s, Subject: %s",
				n, p.Cfg.ErrorMailWindow/3600, m.From, m.Subject)
			return nil
		}
	}
	var err error
	switch j.subj.Kind {
	case reply.LogReply, reply.ShouldBuild:
		err = j.answer(ctx, perr)
	case reply.Processing:
		if uploadedRE.MatchString(m.Body) {
			p.logf("%s processed by upload queue", j.subj.Job)
		} else {
			return p.forward(j)
		}
	case reply.Installed:
		err = j.installed()
	case reply.IsNew:
		p.logf("%s must be manually dinstall-ed -- delayed", debversion.SplitPkgVersion(j.subj.Changes).Name)
	case reply.NewVersion:
		err = j.newVersion(ctx)
	default:
		return p.forward(j)
	}
	if err != nil {
		return temp(err)
	}
	if len(j.errs) > 0 {
		return j.errorReply()
	}
	return nil
}

var uploadedRE = regexp.MustCompile(`(?mi)uploaded successfully`)

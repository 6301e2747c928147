package dispatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/control"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/queue"
)

var (
	inVersionRE  = regexp.MustCompile(`(?m)^in version (\S+)\.$`)
	newSourceRE  = regexp.MustCompile(`(?m)new source version (\S+)\.`)
	resentDateFm = time.RFC1123Z
)

// newVersion handles wanna-build's "new version of PKG_VERSION (dist=D)":
// in each architecture this host builds D for whose queue confirms it,
// the old version is recorded as outdated, leaves D's REDO for that
// architecture (or, when REDO does not have it there, goes into SKIP for
// it), and its build results there are purged. The notice is unsigned,
// so it is only a hint: its names must be a package and versions by
// policy's syntax, and the queue must confirm it (hold a newer version
// of the package in D for that architecture; the notice names none, as
// the merge of one architecture sends it) before anything is touched.
// It touches only the lines of D and that architecture and only exactly
// the old version, epoch included; build/ is shared by every dist, so the
// results are purged only when no other dist's queue of that
// architecture still holds that version (see purgeSuperseded).
func (j *job) newVersion(ctx context.Context) error {
	p := j.p
	mv := inVersionRE.FindStringSubmatch(j.m.Body)
	nv := newSourceRE.FindStringSubmatch(j.m.Body)
	if len(p.Cfg.Arches(j.subj.Dist)) == 0 || mv == nil || nv == nil {
		return p.forward(j)
	}
	pkg := j.subj.Package
	old, err := debversion.ParsePkgVersion(pkg + "_" + mv[1])
	var newer debversion.PkgVersion
	if err == nil {
		newer, err = debversion.ParsePkgVersion(pkg + "_" + nv[1])
	}
	if err == nil && j.subj.PkgVersion != "" && j.subj.PkgVersion != old.String() {
		err = fmt.Errorf("the subject names %s, the body version %s", j.subj.PkgVersion, mv[1])
	}
	if err != nil {
		p.logf("new-version notice from %s ignored: %v", j.m.FromAddr, err)
		return nil
	}
	// Every queue is asked first, so that one that cannot be reached
	// leaves REDO, SKIP and build/ as they are for the next run.
	infos := map[string]*queue.Info{} // per queue (Where); none when it does not know pkg
	for i := range p.Cfg.Dists {
		d := &p.Cfg.Dists[i]
		info, err := p.queue(d).Info(ctx, pkg)
		if queue.IsRefused(err) {
			if d.DistName == j.subj.Dist {
				p.logf("new-version notice for %s (%s) ignored: the queue does not know %s: %v", old, d.Where(), pkg, err)
			}
			continue
		}
		if err != nil {
			return err
		}
		infos[d.Where()] = info
	}
	for i := range p.Cfg.Dists {
		d := &p.Cfg.Dists[i]
		info := infos[d.Where()]
		if d.DistName != j.subj.Dist || info == nil {
			continue
		}
		if debversion.Compare(info.Version, old.Version) <= 0 || debversion.Compare(info.Version, nv[1]) < 0 {
			p.logf("new-version notice for %s (%s) ignored: the queue has %s_%s, not a newer version (the notice says %s)", old, d.Where(), pkg, info.Version, nv[1])
			continue
		}
		if err := p.superseded(d, old, newer, infos); err != nil {
			return err
		}
	}
	return nil
}

// superseded acts on a new-version notice that d's queue confirmed: old
// superseded by newer in d's dist for its architecture; infos are every
// queue's info on the package (see newVersion).
func (p *Processor) superseded(d *config.Dist, old, newer debversion.PkgVersion, infos map[string]*queue.Info) error {
	pkgv, newpkgv := old.String(), newer.String()
	p.logf("Build of %s (%s) obsolete -- new version %s", pkgv, d.Where(), newer.Version)
	mine := func(dist, arch string) (bool, error) { return p.Cfg.Means(d, dist, arch) }
	if cur, ok, err := p.Home.Outdated().IsOutdated(pkgv, mine); err != nil && !errors.As(err, new(*home.LineError)) {
		return err
	} else if !ok || cur != newpkgv {
		if err := p.Home.Outdated().Add(pkgv, newpkgv, d.DistName, d.BuiltArchitecture, p.Now()); err != nil {
			return err
		}
	}
	// build/ holds one set of results per package version and
	// architecture whatever the dist: while another dist's queue of this
	// architecture has this very version they may be its own (awaiting
	// the admin's "ok"); and build/NAME-UPSTREAM may be of any version
	// with that upstream part, of any architecture.
	var building, holding []string
	upstreams := map[string]bool{newer.Upstream(): true}
	for i := range p.Cfg.Dists {
		od := &p.Cfg.Dists[i]
		oi := infos[od.Where()]
		if od.Where() == d.Where() || oi == nil {
			continue
		}
		upstreams[debversion.PkgVersion{Name: old.Name, Version: oi.Version}.Upstream()] = true
		if oi.Version != old.Version || od.BuiltArchitecture != d.BuiltArchitecture {
			continue
		}
		holding = append(holding, od.Where())
		if oi.State == queue.Building && oi.Builder == od.WannaBuildDBUser {
			building = append(building, od.Where())
		}
	}
	// Not in REDO: buildd may still have it in hand, so SKIP tells it not
	// to build it in D for this architecture (the classic buildd-mail's
	// append_to_SKIP).
	if dropped, err := p.dropRedo(d, pkgv); err != nil {
		return err
	} else if !dropped {
		if err := p.Home.Skip().Add(pkgv, d.DistName, d.BuiltArchitecture); err != nil {
			return err
		}
		p.logf("%s (%s) added to SKIP", pkgv, d.Where())
	}
	switch {
	case len(building) > 0:
		p.logf("Not deleting, still building for %s", strings.Join(building, " "))
		return nil
	case len(holding) > 0:
		p.logf("Not deleting the results of %s: the queue of %s still has that version", pkgv, strings.Join(holding, " "))
		return nil
	}
	return p.purgeSuperseded(d, old, upstreams[old.Upstream()])
}

// dropRedo removes the REDO entries for exactly pkgv in d (its dist for
// its architecture, or its dist alone when d is the dist's only
// architecture) and reports whether there were any. REDO is rewritten
// (under its lock) only when it changes.
func (p *Processor) dropRedo(d *config.Dist, pkgv string) (bool, error) {
	dropped := false
	err := p.Home.REDO().Update(func(es []home.RedoEntry) []home.RedoEntry {
		return slices.DeleteFunc(es, func(e home.RedoEntry) bool {
			mine := e.PkgVersion == pkgv && p.means(d, e)
			dropped = dropped || mine
			return mine
		})
	})
	if err != nil {
		return false, fmt.Errorf("dropping %s (%s) from REDO: %w", pkgv, d.Where(), err)
	}
	if dropped {
		p.logf("Deleted %s (%s) from REDO list.", pkgv, d.Where())
	}
	return dropped, nil
}

// purgeSuperseded deletes what a build of exactly old (name and version,
// epoch included) for d left in build/: the .changes named for d's
// architecture, if its contents say it is that build (its Source and
// Version are old's, and its Distribution names d's dist or no dist this
// buildd builds for d's architecture), and the files it lists; and it schedules build/NAME-UPSTREAM
// for deletion unless sharedDir (a version still in a queue unpacks
// there too). The file name carries no epoch, so the contents decide: a
// .changes of another version, another dist's, or one that cannot be read
// is kept and logged.
func (p *Processor) purgeSuperseded(d *config.Dist, old debversion.PkgVersion, sharedDir bool) error {
	name := home.ChangesName(old, d.BuiltArchitecture)
	path := filepath.Join(p.Home.BuildDir(), name)
	c, err := p.buildOf(d, old, path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		p.logf("Not purging %s: %v", path, err)
	default:
		for _, f := range c.Files {
			if err := os.Remove(filepath.Join(p.Home.BuildDir(), f.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				p.logf("Cannot remove build/%s: %v", f.Name, err)
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.logf("Cannot remove build/%s: %v", name, err)
		}
		p.logf("Purging files: %s", name)
	}
	dir := filepath.Join(p.Home.BuildDir(), old.Name+"-"+old.Upstream())
	if st, err := os.Lstat(dir); err != nil || !st.IsDir() {
		return nil
	}
	if sharedDir {
		p.logf("Not scheduling %s for purging: a version still in a queue has it too", dir)
		return nil
	}
	if err := p.Home.Purge().Add(dir); err != nil {
		return fmt.Errorf("scheduling %s for purging: %w", dir, err)
	}
	p.logf("Scheduled %s for purging", dir)
	return nil
}

// buildOf reads the .changes at path and returns it if it is the build of
// exactly old for d; otherwise an error says why not (wrapping
// os.ErrNotExist when there is no such file).
func (p *Processor) buildOf(d *config.Dist, old debversion.PkgVersion, path string) (*control.Changes, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := control.ParseChanges(path, data)
	if err != nil {
		return nil, err
	}
	if c.Source != old.Name || c.Version != old.Version {
		return nil, fmt.Errorf("it is the build of %s_%s, not of %s", c.Source, c.Version, old)
	}
	var others []string
	for _, dn := range strings.Fields(c.Distribution) {
		if dn == d.DistName {
			return c, nil
		}
		if _, ok := p.Cfg.DistArch(dn, d.BuiltArchitecture); ok {
			others = append(others, dn)
		}
	}
	if len(others) > 0 {
		return nil, fmt.Errorf("it is the build for %s, not %s", strings.Join(others, " "), d.DistName)
	}
	return c, nil
}

// blacklisted matches the sender against ~/mail-blacklist: one regular
// expression a line, anchored at the end of the address as the classic
// suite does.
func (p *Processor) blacklisted(addr string) (bool, error) {
	f, err := os.Open(p.Home.Path("mail-blacklist"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		pat := strings.TrimSpace(sc.Text())
		if pat == "" || strings.HasPrefix(pat, "#") {
			continue
		}
		re, err := regexp.Compile("(?:" + pat + ")$")
		if err != nil {
			p.logf("mail-blacklist:%d: bad pattern %q: %v", n, pat, err)
			continue
		}
		if re.MatchString(addr) {
			return true, nil
		}
	}
	return false, sc.Err()
}

// countErrorMail records a mailer-daemon mail in ~/mail-errormails
// ("unixtime mail" a line; a mail counted once however often it is
// processed) and returns how many arrived within error_mail_window.
func (p *Processor) countErrorMail(id string) (int, error) {
	path := p.Home.Path("mail-errormails")
	now := p.Now()
	window := time.Duration(p.Cfg.ErrorMailWindow) * time.Second
	l, err := home.LockFile(path, home.LockTimeout)
	if err != nil {
		return 0, err
	}
	defer l.Unlock()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	var keep []string
	seen := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		sec, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || now.Sub(time.Unix(sec, 0)) > window {
			continue
		}
		if len(f) > 1 && f[1] == id {
			seen = true
		}
		keep = append(keep, line)
	}
	if !seen {
		keep = append(keep, fmt.Sprintf("%d %s", now.Unix(), id))
	}
	if err := atomicfile.WriteFile(path, []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		return 0, err
	}
	return len(keep), nil
}

// forward sends a mail buildd-mail does not handle to admin_mail, unchanged
// but for the Resent-* block on top.
func (p *Processor) forward(j *job) error {
	p.logf("Mail from %s, Subject: %s: not for me, forwarding to %s", j.m.From, j.m.Subject, p.Cfg.AdminMail)
	return p.forwardRaw(j.id, j.raw, j.m.FromAddr)
}

func (p *Processor) forwardRaw(id string, raw []byte, from string) error {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Resent-From: %s\r\n", p.Cfg.MailFrom)
	fmt.Fprintf(&b, "Resent-To: %s\r\n", p.Cfg.AdminMail)
	fmt.Fprintf(&b, "Resent-Date: %s\r\n", p.Now().Format(resentDateFm))
	fmt.Fprintf(&b, "Resent-Message-ID: <%s.buildd-mail@%s>\r\n", id, mailer.Hostname())
	b.Write(raw)
	if err := p.Mail.SendRaw(p.Cfg.MailFrom, []string{p.Cfg.AdminMail}, b.Bytes()); err != nil {
		p.logf("forward of %s: %v", id, err)
	}
	return nil
}

var reRE = regexp.MustCompile(`^Re\S{0,2}:`)

// An error reply quotes at most this much of the mail: it goes to an
// address the sender chose, so it must never be an amplifier.
const (
	maxQuoted      = 16 << 10
	maxQuotedLines = 200
	maxSubject     = 200
)

// errorReply answers the sender with what went wrong and the mail quoted,
// as the classic buildd-mail does: one mailbox (see replyAddress), at
// most error_reply_rate replies to it an hour (see home.ErrorReplyFile),
// never a mail that is itself automatic (Auto-Submitted other than "no",
// RFC 3834: two responders must not answer each other). A reply not sent
// is one log line.
func (j *job) errorReply() error {
	p := j.p
	errs := strings.Join(j.errs, "")
	p.logf("Error: %s", strings.ReplaceAll(strings.TrimSpace(errs), "\n", " / "))
	if as := strings.TrimSpace(j.m.Header.Get("Auto-Submitted")); as != "" && !strings.EqualFold(as, "no") {
		p.logf("no error reply for mail %s: it is Auto-Submitted: %.60q", j.id, as)
		return nil
	}
	to, err := j.replyAddress()
	if err != nil {
		p.logf("no error reply for mail %s: %v", j.id, err)
		return nil
	}
	if err := p.Home.ErrorReplies().Take(to, p.Now(), p.Cfg.ErrorReplyRate); err != nil {
		p.logf("no error reply for mail %s to %s: %v", j.id, to, err)
		return nil
	}
	if len(errs) > maxQuoted {
		errs = strings.ToValidUTF8(errs[:maxQuoted], "") + "\n[... more errors, not shown]\n"
	}
	subj := j.m.Subject
	if len(subj) > maxSubject {
		subj = strings.ToValidUTF8(subj[:maxSubject], "") + "..."
	}
	if !reRE.MatchString(subj) {
		subj = "Re: " + subj
	}
	quoted := strings.TrimRight(j.m.Body, "\n")
	var q strings.Builder
	for i, l := range strings.Split(quoted, "\n") {
		if i == maxQuotedLines || q.Len()+len(l) > maxQuoted {
			fmt.Fprintf(&q, "> [... the rest of your mail (%d bytes in all) is not quoted]\n", len(j.m.Body))
			break
		}
		q.WriteString("> ")
		q.WriteString(l)
		q.WriteByte('\n')
	}
	msg := &mailer.Message{
		To:        []string{to},
		Subject:   subj,
		InReplyTo: j.m.MessageID,
		Header:    map[string]string{"Auto-Submitted": "auto-replied"},
		Body:      "Your mail could not be processed:\n" + errs + "\n" + q.String(),
	}
	if err := p.Mail.Send(msg); err != nil {
		p.logf("error reply to %s: %v", to, err)
	}
	return nil
}

// replyAddress is the one address an error reply goes to: Reply-To if it
// is a single field that parses (net/mail, see mailer.Mailbox) as exactly
// one mailbox, else From if that does, else none: a header is never split
// into many recipients.
func (j *job) replyAddress() (string, error) {
	var why []string
	for _, k := range []string{"Reply-To", "From"} {
		vs := j.m.Header.Values(k)
		if len(vs) == 0 {
			continue
		}
		if len(vs) > 1 {
			why = append(why, fmt.Sprintf("%s: %d fields", k, len(vs)))
			continue
		}
		a, err := mailer.Mailbox(vs[0])
		if err == nil {
			return a, nil
		}
		why = append(why, k+": "+err.Error())
	}
	if len(why) == 0 {
		return "", errors.New("no Reply-To or From")
	}
	return "", fmt.Errorf("no single address to answer (%s)", strings.Join(why, "; "))
}

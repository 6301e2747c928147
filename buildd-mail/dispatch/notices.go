package dispatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/debversion"
	"buildd/internal/home"
	"buildd/internal/mailer"
	"buildd/internal/queue/client"
)

var (
	inVersionRE  = regexp.MustCompile(`(?m)^in version (\S+)\.$`)
	newSourceRE  = regexp.MustCompile(`(?m)new source version (\S+)\.`)
	resentDateFm = time.RFC1123Z
)

// newVersion handles wanna-build's "new version of PKG_VERSION (dist=D)":
// the old version is recorded as outdated, and unless it is still building
// here it leaves REDO and its files are purged. The notice is unsigned, so
// it is only a hint: its names must be a package and versions by policy's
// syntax, and the queue must confirm it (hold a newer version of the
// package in that dist) before anything is touched.
func (j *job) newVersion(ctx context.Context) error {
	p := j.p
	d, ok := p.Cfg.Dist(j.subj.Dist)
	mv := inVersionRE.FindStringSubmatch(j.m.Body)
	nv := newSourceRE.FindStringSubmatch(j.m.Body)
	if !ok || mv == nil || nv == nil {
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
	pkgv, newpkgv := old.String(), newer.String()
	info, err := p.queue(d).Info(ctx, pkg)
	var ref *client.Refused
	if errors.Is(err, client.ErrNotRegistered) || errors.As(err, &ref) {
		p.logf("new-version notice for %s (%s) ignored: the queue does not know %s: %v", pkgv, d.DistName, pkg, err)
		return nil
	}
	if err != nil {
		return err
	}
	if debversion.Compare(info.Version, old.Version) <= 0 || debversion.Compare(info.Version, nv[1]) < 0 {
		p.logf("new-version notice for %s (%s) ignored: the queue has %s_%s, not a newer version (the notice says %s)", pkgv, d.DistName, pkg, info.Version, nv[1])
		return nil
	}
	p.logf("Build of %s (%s) obsolete -- new version %s", pkgv, d.DistName, nv[1])
	if cur, ok, err := p.Home.Outdated().IsOutdated(pkgv, d.DistName); err != nil {
		return err
	} else if !ok || cur != newpkgv {
		if err := p.Home.Outdated().Add(pkgv, newpkgv, d.DistName, p.Now()); err != nil {
			return err
		}
	}
	var building []string
	for i := range p.Cfg.Dists {
		od := &p.Cfg.Dists[i]
		info, err := p.queue(od).Info(ctx, pkg)
		if errors.Is(err, client.ErrNotRegistered) || errors.As(err, &ref) {
			continue
		}
		if err != nil {
			return err
		}
		if info.Version == old.Version && info.State == "Building" && info.Builder == od.WannaBuildDBUser {
			building = append(building, od.DistName)
		}
	}
	if len(building) > 0 {
		p.logf("Not deleting, still building for %s", strings.Join(building, " "))
		return nil
	}
	// Not in REDO: buildd may still have it in hand, so SKIP tells it not
	// to build it (the classic buildd-mail's append_to_SKIP).
	es, _, err := p.Home.REDO().Read()
	if err != nil {
		return err
	}
	if !hasRedoPkg(es, pkgv) {
		if err := p.Home.Skip().Add(pkgv); err != nil {
			return err
		}
		p.logf("%s added to SKIP", pkgv)
	}
	return p.purge(d, pkgv)
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

// errorReply answers the sender (Reply-To, else From) with what went wrong
// and the mail quoted, as the classic buildd-mail does.
func (j *job) errorReply() error {
	p := j.p
	errs := strings.Join(j.errs, "")
	p.logf("Error: %s", strings.ReplaceAll(strings.TrimSpace(errs), "\n", " / "))
	to := j.m.ReplyTo
	if to == "" {
		to = j.m.From
	}
	if to == "" {
		p.logf("no address to send the error reply for mail %s to", j.id)
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

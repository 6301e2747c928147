package reply

import (
	"fmt"
	"regexp"
	"strings"

	"buildd/internal/debversion"
)

// Keyword is the action an admin's reply asks for.
type Keyword string

const (
	Changes   Keyword = "changes" // a signed .changes: "ok"
	Retry     Keyword = "retry"
	Fail      Keyword = "fail"
	DepWait   Keyword = "dep-wait"
	GiveBack  Keyword = "giveback"
	Manual    Keyword = "manual"
	NewVers   Keyword = "newvers"
	NotForUs  Keyword = "not-for-us"
	UploadRem Keyword = "upload-rem"
	Purge     Keyword = "purge"
	Build     Keyword = "build" // Should I build: build / ok
)

// Reply is the interpreted signed text of an admin's answer.
type Reply struct {
	Keyword Keyword
	Word    string // the first word as written
	Args    string // the rest of the first line (dep-wait's dependencies, newvers' version)
	Reason  string // fail: the lines after the keyword line
	Text    string // the signed text without quotes and the PKG_VERSION line
}

// The classic keyword patterns, tried in the classic order.
var logKeywords = []struct {
	re *regexp.Regexp
	kw Keyword
}{
	{regexp.MustCompile(`^not-for-us`), NotForUs},
	{regexp.MustCompile(`^up(l(oad)?)?-rem`), UploadRem},
	{regexp.MustCompile(`^fail`), Fail},
	{regexp.MustCompile(`^ret`), Retry},
	{regexp.MustCompile(`^d(ep(endency)?)?-(ret|w)`), DepWait},
	{regexp.MustCompile(`^man`), Manual},
	{regexp.MustCompile(`^newv`), NewVers},
	{regexp.MustCompile(`^(give|back)`), GiveBack},
	{regexp.MustCompile(`^purge`), Purge},
}

var shouldKeywords = []struct {
	re *regexp.Regexp
	kw Keyword
}{
	{regexp.MustCompile(`^(build|ok)`), Build},
	{regexp.MustCompile(`^fail`), Fail},
	{regexp.MustCompile(`^(not|no-b)`), NotForUs},
	{regexp.MustCompile(`^(give|back)`), GiveBack},
}

// KeywordError is a reply whose text cannot be understood; the message
// says what to send instead.
type KeywordError struct{ Msg string }

func (e *KeywordError) Error() string { return e.Msg }

var attributionRE = regexp.MustCompile(`(?i)(wrote|writes|schrieb|a écrit)\s*:\s*$`)

// IsQuoteLine reports whether a line is quoted text or the attribution
// line a mailer puts above a quote.
func IsQuoteLine(l string) bool {
	return strings.HasPrefix(l, ">") || attributionRE.MatchString(l)
}

// LooksLikeChanges reports whether a signed text is a .changes (its first
// line is a deb822 field) rather than a keyword.
func LooksLikeChanges(text string) bool {
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) == "" || IsQuoteLine(l) {
			continue
		}
		f := strings.Fields(l)
		return strings.HasSuffix(f[0], ":") && len(f[0]) > 1
	}
	return false
}

// NamesLine is the last line of a signed keyword answer about pkgv in
// dist for arch: "PKG_VERSION on ARCH (dist=DIST)", as the log mail's
// subject names the build.
func NamesLine(pkgv, arch, dist string) string {
	return fmt.Sprintf("%s on %s (dist=%s)", pkgv, arch, dist)
}

var namesRE = regexp.MustCompile(`^(\S+?)(?: on ([\w-]+))? \(dist=(\S+)\)$`)

// ParseKeywordReply interprets the signed text of a reply to a mail about
// pkgv in dist for arch. The keyword (and its arguments) is the first
// line, fail's reason the lines after it; the last non-blank line must
// name the package, its architecture and its distribution, "PKG_VERSION
// on ARCH (dist=DIST)" (see NamesLine), so that a signed answer cannot be
// re-aimed at another package, architecture or distribution. The older
// line without the architecture, "PKG_VERSION (dist=DIST)", is taken only
// when archOptional (the buildd builds dist for arch alone). Quoted lines
// are ignored.
func ParseKeywordReply(kind Kind, text, pkgv, arch, dist string, archOptional bool) (*Reply, error) {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if IsQuoteLine(l) {
			continue
		}
		lines = append(lines, strings.TrimRight(l, " \t\r"))
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return nil, &KeywordError{"The signed text is empty: put the keyword on its first line."}
	}
	last := strings.TrimSpace(lines[len(lines)-1])
	line := NamesLine(pkgv, arch, dist)
	m := namesRE.FindStringSubmatch(last)
	ours := len(lines) >= 2 && m != nil && m[1] == pkgv
	switch {
	case ours && m[3] != dist:
		return nil, &KeywordError{fmt.Sprintf("The signed text names dist=%s, but the subject says dist=%s.\n"+
			"A signed answer acts only in the distribution it names.", m[3], dist)}
	case ours && m[2] != "" && m[2] != arch:
		return nil, &KeywordError{fmt.Sprintf("The signed text names the build on %s, but this reply answers the build on %s.\n"+
			"A signed answer acts only on the architecture it names.", m[2], arch)}
	case ours && m[2] == "" && !archOptional:
		return nil, &KeywordError{fmt.Sprintf("The signed text names %s but not its architecture, and this buildd\n"+
			"builds dist=%s for several. Put %q alone on the last line of the\n"+
			"signed text, after the keyword (buildd-reply.el does this).", last, dist, line)}
	case ours:
	case len(lines) >= 2 && last == pkgv:
		return nil, &KeywordError{fmt.Sprintf("The signed text names %s but not its distribution.\n"+
			"Put %q alone on the last line of the signed text, after the keyword\n"+
			"(buildd-reply.el does this); a signed answer acts only where it names.", pkgv, line)}
	default:
		return nil, &KeywordError{fmt.Sprintf("The signed text does not name the package and dist=%s it answers for.\n"+
			"Put %q alone on the last line of the signed text, after the keyword\n"+
			"(buildd-reply.el does this); a signed answer for another package is refused.", dist, line)}
	}
	lines = lines[:len(lines)-1]
	first := strings.TrimSpace(lines[0])
	word, args, _ := strings.Cut(first, " ")
	r := &Reply{Word: word, Args: strings.TrimSpace(args), Text: strings.Join(lines, "\n") + "\n"}
	table := logKeywords
	want := "retry, fail, dep-wait, giveback, manual, newvers, not-for-us,\nupload-rem, purge, or a signed .changes"
	if kind == ShouldBuild {
		table = shouldKeywords
		want = "build, ok, fail, giveback, not-for-us or no-build"
	}
	for _, k := range table {
		if k.re.MatchString(word) {
			r.Keyword = k.kw
			break
		}
	}
	if r.Keyword == "" {
		return nil, &KeywordError{fmt.Sprintf("Bad keyword in answer %q.\nAnswer not understood (expected %s).", word, want)}
	}
	rest := lines[1:]
	for len(rest) > 0 && strings.TrimSpace(rest[0]) == "" {
		rest = rest[1:]
	}
	if kind == ShouldBuild && (len(rest) > 0 || r.Args != "") {
		// An answer to "Should I build" is the keyword alone: a log
		// answer's text (fail with its reason) cannot be passed off as one.
		return nil, &KeywordError{fmt.Sprintf("An answer to \"Should I build\" is the keyword alone, %q has more.", word)}
	}
	switch r.Keyword {
	case Fail:
		if kind == LogReply {
			r.Reason = strings.Join(rest, "\n")
			if r.Reason == "" {
				r.Reason = r.Args
			}
			if strings.TrimSpace(r.Reason) == "" {
				return nil, &KeywordError{"fail: no reason given. Write the reason on the lines after \"fail\"."}
			}
			r.Reason += "\n"
		}
	case DepWait:
		if r.Args == "" {
			return nil, &KeywordError{"dep-wait: no dependencies given. Write them on the keyword's line:\n\"dep-wait libfoo-dev (>= 1.2), libbar-dev\"."}
		}
	case NewVers:
		if r.Args == "" {
			return nil, &KeywordError{"newvers: no version given. Write it on the keyword's line: \"newvers 1.2-1\"."}
		}
		v := strings.Fields(r.Args)[0]
		if strings.Contains(v, "_") {
			v = debversion.SplitPkgVersion(v).Version
		}
		if err := debversion.CheckVersion(v); err != nil {
			return nil, &KeywordError{fmt.Sprintf("newvers: %v.", err)}
		}
		r.Args = v
	}
	return r, nil
}

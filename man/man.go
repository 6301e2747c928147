// Package man owns the suite's manual pages. They are made from README.md,
// the one place the programs and buildd.conf are documented: each page is
// a list of the README's sections (Pages), turned into Markdown for
// go-md2man by Markdown. Its tests fail when a program's options (its
// --help) and its page disagree, either way, so a page cannot drift from
// the code; buildd.conf(5) is the README's configuration reference, which
// internal/config's TestREADMEConfigReference holds to the config's keys.
package man

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// A Page is one manual page.
type Page struct {
	Name    string // "buildd"
	Section string // "1"
	Summary string // the NAME line after the dash
	// Headings are the README sections the page is made of, in order: the
	// first is the page's SYNOPSIS (its first code block) and DESCRIPTION,
	// each other one a section of its own.
	Headings []string
	// Commands are the command lines (without --help) whose --help lists
	// the options the page documents; none for a page of no program.
	Commands [][]string
	Synopsis string // the SYNOPSIS of a page of no program
}

// File is the page's file name, "buildd.1".
func (p Page) File() string { return p.Name + "." + p.Section }

// Pages are the suite's manual pages, in the sections of the classic
// suite's (buildd(1), buildd.conf(5)).
var Pages = []Page{
	{
		Name: "buildd", Section: "1",
		Summary:  "the build daemon: takes packages from the wanna-build queue and REDO, builds each in a btrfs snapshot of a build machine, mails the log",
		Headings: []string{"### buildd", "### buildd machine", "### buildd build", "## The home directory"},
		Commands: [][]string{{"buildd"}, {"buildd", "machine"}, {"buildd", "build"}, {"buildd", "quarantine"}},
	},
	{
		Name: "wanna-build", Section: "1",
		Summary:  "the build queue's command line, with the classic options and output, and its status web",
		Headings: []string{"### wanna-build"},
		Commands: [][]string{{"wanna-build"}},
	},
	{
		Name: "buildd-mail", Section: "1",
		Summary:  "acts on the admins' signed replies to build logs, and on archive and queue notices",
		Headings: []string{"### buildd-mail"},
		Commands: [][]string{{"buildd-mail"}},
	},
	{
		Name: "buildd-uploader", Section: "1",
		Summary:  "uploads the approved builds and tells wanna-build",
		Headings: []string{"### buildd-uploader"},
		Commands: [][]string{{"buildd-uploader"}},
	},
	{
		Name: "buildd-watcher", Section: "1",
		Summary:  "keeps a build host healthy: restarts buildd, mails old files, rotates logs, upgrades the machines",
		Headings: []string{"### buildd-watcher"},
		Commands: [][]string{{"buildd-watcher"}},
	},
	{
		Name: "buildd.conf", Section: "5",
		Summary:  "the configuration of buildd, buildd-mail, buildd-uploader, buildd-watcher and wanna-build",
		Headings: []string{"## Configuration reference"},
		Synopsis: "/etc/buildd/buildd.conf",
	},
}

// Doc is where the package installs the whole README, named in every
// page's SEE ALSO.
const Doc = "/usr/share/doc/buildd-go/README.md.gz"

// Markdown makes page p from readme, for go-md2man: a title line with
// version, NAME, SYNOPSIS, DESCRIPTION, one section for each further
// heading, and SEE ALSO. Links become their text (with the address when
// it is a web address); the README's sub-headings become the page's.
func Markdown(readme []byte, p Page, version string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%% %s %s \"\" \"buildd-go %s\" \"buildd in Go\"\n\n", strings.ToUpper(p.Name), p.Section, version)
	fmt.Fprintf(&b, "# NAME\n\n%s - %s\n\n", p.Name, p.Summary)
	for i, h := range p.Headings {
		sec, err := Section(readme, h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.File(), err)
		}
		body := sec.Body
		if i == 0 {
			synopsis := p.Synopsis
			if synopsis == "" {
				var ok bool
				if synopsis, body, ok = firstCodeBlock(body); !ok {
					return nil, fmt.Errorf("%s: README.md:%d: %q has no code block for the SYNOPSIS", p.File(), sec.Line, h)
				}
			}
			fmt.Fprintf(&b, "# SYNOPSIS\n\n```\n%s\n```\n\n# DESCRIPTION\n\n", strings.TrimRight(synopsis, "\n"))
		} else {
			fmt.Fprintf(&b, "# %s\n\n", strings.ToUpper(plain(sec.Title)))
		}
		b.WriteString(strings.TrimSpace(codeLinesSafe(body)))
		b.WriteString("\n\n")
	}
	b.WriteString("# SEE ALSO\n\n")
	var refs []string
	for _, q := range Pages {
		if q.Name != p.Name {
			refs = append(refs, fmt.Sprintf("**%s**(%s)", q.Name, q.Section))
		}
	}
	fmt.Fprintf(&b, "%s; the whole guide, with the setup of a build host and of a network of hosts: %s\n", strings.Join(refs, ", "), Doc)
	return b.Bytes(), nil
}

// A Part is a section of the README: its heading's title and line, and
// its text made ready for a page: links plain, tables definition lists,
// and sub-headings raised to the page's levels ("##", a page's
// subsection, for the section's first level below its own).
type Part struct {
	Title string
	Line  int
	Body  string
}

var headingRE = regexp.MustCompile(`^(#{1,6}) (.*)$`)

// Section finds heading (e.g. "### buildd", exactly as the README has
// it) in readme and returns its section, up to the next heading of its
// level or above; headings inside code blocks do not count.
func Section(readme []byte, heading string) (Part, error) {
	level := strings.IndexByte(heading, ' ')
	if level < 1 || strings.Trim(heading[:level], "#") != "" {
		return Part{}, fmt.Errorf("heading %q: not a Markdown heading", heading)
	}
	sec := Part{Title: heading[level+1:]}
	var body strings.Builder
	in, fence := false, false
	sc := bufio.NewScanner(bytes.NewReader(readme))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := headingRE.FindStringSubmatch(line)
		switch {
		case strings.HasPrefix(line, "```"):
			fence = !fence
		case fence || m == nil:
		case line == heading:
			if in || sec.Line != 0 {
				return Part{}, fmt.Errorf("README.md:%d: heading %q a second time", n, heading)
			}
			in, sec.Line = true, n
			continue
		case in && len(m[1]) <= level:
			in = false
		case in:
			line = strings.Repeat("#", len(m[1])-level+1) + " " + m[2]
		}
		if in {
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return Part{}, fmt.Errorf("README.md: %w", err)
	}
	if sec.Line == 0 {
		return Part{}, fmt.Errorf("README.md: no heading %q", heading)
	}
	sec.Body = plainLinks(tablesAsLists(body.String()))
	return sec, nil
}

var tableRuleRE = regexp.MustCompile(`^\|[-:| ]+\|$`)

// tablesAsLists makes each Markdown table of body a definition list, as
// manual pages list options and keys: a row's first cell is the term; its
// other cells, each after its column's header when there are several,
// are the definition. (A table in a page is as wide as its longest cell.)
func tablesAsLists(body string) string {
	lines := strings.Split(body, "\n")
	var out []string
	fence := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "```") {
			fence = !fence
		}
		if fence || !strings.HasPrefix(line, "|") || i+1 >= len(lines) || !tableRuleRE.MatchString(lines[i+1]) {
			out = append(out, line)
			continue
		}
		header := cells(line)
		for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
			row := cells(lines[i])
			term, first := "", 0
			for first < len(row) && term == "" {
				term = row[first]
				first++
			}
			var def []string
			for j := first; j < len(row); j++ {
				switch {
				case row[j] == "":
				case len(row) > 2 && j < len(header):
					def = append(def, "*"+header[j]+":* "+row[j])
				default:
					def = append(def, row[j])
				}
			}
			out = append(out, term, ": "+strings.Join(def, "; "), "")
		}
		i--
	}
	return strings.Join(out, "\n")
}

// cells splits a table row on its unescaped bars.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(strings.TrimSuffix(row, "|"), "|")
	var cs []string
	var c strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			c.WriteByte('|')
			i++
		case row[i] == '|':
			cs = append(cs, strings.TrimSpace(c.String()))
			c.Reset()
		default:
			c.WriteByte(row[i])
		}
	}
	return append(cs, strings.TrimSpace(c.String()))
}

var linkRE = regexp.MustCompile(`\[([^\[\]]+)\]\(([^()\s]+)\)`)

// plainLinks makes the links of body their text, keeping a web address;
// code blocks and code spans are left as they are.
func plainLinks(body string) string {
	blocks := strings.Split(body, "\n```")
	for i := 0; i < len(blocks); i += 2 {
		spans := strings.Split(blocks[i], "`")
		for j := 0; j < len(spans); j += 2 {
			spans[j] = linkRE.ReplaceAllStringFunc(spans[j], func(l string) string {
				m := linkRE.FindStringSubmatch(l)
				if strings.HasPrefix(m[2], "http://") || strings.HasPrefix(m[2], "https://") {
					return m[1] + " <" + m[2] + ">"
				}
				return m[1]
			})
		}
		blocks[i] = strings.Join(spans, "`")
	}
	return strings.Join(blocks, "\n```")
}

// firstCodeBlock splits the first fenced code block off body: its lines,
// and body without it.
func firstCodeBlock(body string) (code, rest string, ok bool) {
	start := strings.Index(body, "```")
	if start < 0 {
		return "", body, false
	}
	open := strings.IndexByte(body[start:], '\n')
	if open < 0 {
		return "", body, false
	}
	inner := body[start+open+1:]
	end := strings.Index(inner, "```")
	if end < 0 {
		return "", body, false
	}
	after := inner[end+3:]
	after = strings.TrimPrefix(after, "\n")
	return inner[:end], body[:start] + after, true
}

var listItemRE = regexp.MustCompile(`^\s*(?:[-*]|[0-9]+\.) `)

// codeLinesSafe makes body's code blocks what go-md2man renders as
// blocks. Its Markdown parser takes a block that follows a list for part
// of the list's last item, and makes it a code span, its lines run
// together: such a block gets a paragraph of one no-break space before
// it, which ends the list. A line of a block that begins with a roff
// control character (".", "'") gets a space first, as go-md2man passes
// it on and roff would take "..." for a request.
func codeLinesSafe(body string) string {
	var out []string
	fence, inList := false, false
	for _, l := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(l, "```"):
			if !fence && inList {
				out = append(out, "\u00a0", "")
			}
			fence, inList = !fence, false
		case fence && (strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'")):
			l = " " + l
		case fence || strings.TrimSpace(l) == "":
		case listItemRE.MatchString(l):
			inList = true
		case !strings.HasPrefix(l, " "):
			inList = false
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// plain is a heading's title without Markdown code marks.
func plain(title string) string { return strings.ReplaceAll(title, "`", "") }

package man

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"buildd/internal/config"
)

// ExampleHome is the home the example config sets, the one the Debian
// package makes.
const ExampleHome = "/var/lib/buildd"

// The tables of the README's configuration reference, in the example's
// order: the TOML table each documents ("" for the top level).
var exampleTables = []struct{ heading, table string }{
	{"### Our keys (top level)", ""},
	{"### Classic keys (top level)", ""},
	{"### `[[dist]]` (one table per distribution; order = priority)", "dist"},
	{"### `[[upload_queue]]`", "upload_queue"},
}

// exampleDist is what the example's [[dist]] and [[upload_queue]] are
// dumped from.
const exampleDist = `
[[dist]]
dist_name = "bookworm"
built_architecture = "amd64"

[[upload_queue]]
dupload_local_queue_dir = "upload"
`

// ExampleConfig makes the commented example buildd.conf from readme's
// configuration reference: every key with its type, default and meaning,
// then, commented out, the key as the config's own dump writes its
// default (or the README's default when the dump leaves it out). Only
// home is set; nothing runs until a [[dist]] is.
func ExampleConfig(readme []byte) ([]byte, error) {
	cfg, err := config.Parse("example", []byte(fmt.Sprintf("home = %q\n%s", ExampleHome, exampleDist)))
	if err != nil {
		return nil, err
	}
	var dump bytes.Buffer
	if err := cfg.Dump(&dump); err != nil {
		return nil, err
	}
	values := dumpedValues(dump.String())
	var b bytes.Buffer
	b.WriteString(`# /etc/buildd/buildd.conf: the configuration of buildd in Go (TOML), read by
# buildd, buildd-mail, buildd-uploader, buildd-watcher and wanna-build.
# Every key follows with its meaning and, commented out, its default
# (buildd.conf(5); "buildd --dump-config" prints what is in effect).
# Only home is set: nothing runs until at least one [[dist]] is.
`)
	fmt.Fprintf(&b, "home = %q\n", ExampleHome)
	for _, t := range exampleTables {
		sec, err := Section(readme, t.heading)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n%s\n# %s\n", strings.Repeat("#", 72), plain(sec.Title))
		if t.table != "" {
			fmt.Fprintf(&b, "#[[%s]]\n", t.table)
		}
		for _, entry := range strings.Split(sec.Body, "\n\n") {
			term, def, ok := strings.Cut(strings.TrimSpace(entry), "\n: ")
			if !ok || !strings.HasPrefix(term, "`") {
				continue
			}
			key, _, _ := strings.Cut(strings.Trim(term, "`"), "`")
			if key == "home" && t.table == "" {
				continue
			}
			b.WriteString("\n")
			text := key + ": " + def
			if m := rowRE.FindStringSubmatch(def); m != nil {
				text = fmt.Sprintf("%s (%s; default %s): %s", key, m[1], m[2], m[3])
			}
			b.WriteString(commentWrapped(strings.ReplaceAll(text, "*", ""), 72))
			switch v, ok := values[t.table+"."+key]; {
			case ok:
				fmt.Fprintf(&b, "#%s = %s\n", key, v)
			case literalDefault(def) != "":
				fmt.Fprintf(&b, "#%s = %s\n", key, literalDefault(def))
			}
		}
	}
	return b.Bytes(), nil
}

// dumpedValues maps "TABLE.KEY" ("" for the top level) to the value the
// config's dump writes for it.
func dumpedValues(dump string) map[string]string {
	values := map[string]string{}
	table := ""
	for _, line := range strings.Split(dump, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[[") {
			table = strings.Trim(line, "[]")
			continue
		}
		if k, v, ok := strings.Cut(line, " = "); ok {
			if _, seen := values[table+"."+k]; !seen {
				values[table+"."+k] = v
			}
		}
	}
	return values
}

var defaultCellRE = regexp.MustCompile("\\*default:\\* `([^`]*)`(;|$)")

// literalDefault is the default of a definition when the README gives it
// as a TOML value alone: `[]`, `""`, a number, true or false.
func literalDefault(def string) string {
	m := defaultCellRE.FindStringSubmatch(def)
	if m == nil {
		return ""
	}
	switch v := m[1]; {
	case v == "[]" || v == `""` || v == "true" || v == "false":
		return v
	case regexp.MustCompile(`^-?[0-9]+$`).MatchString(v):
		return v
	}
	return ""
}

// rowRE splits the definition a configuration reference row became.
var rowRE = regexp.MustCompile(`^\*type:\* (.*?); \*default:\* (.*?); \*meaning:\* (.*)$`)

// commentWrapped is text as "# " comment lines of at most width columns.
func commentWrapped(text string, width int) string {
	var b strings.Builder
	line := "#"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > width && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
	return b.String()
}

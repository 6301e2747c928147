package control

import (
	"fmt"
	"strings"
)

// Relation is one package in a dependency field such as Build-Depends:
// "name:qual (op version) [arches] <profiles>".
type Relation struct {
	Name string
	// Qualifier is the architecture qualifier after the name ("any",
	// "native", an architecture), or "".
	Qualifier string
	// Op is the version operator as written: "<<", "<=", "=", ">=", ">>",
	// the obsolete "<" and ">" (which dpkg reads as "<=" and ">=", and the
	// classic wanna-build's dep-wait as ">>"), or "" if none.
	Op      string
	Version string
	// Arches is the architecture restriction list, each entry as written
	// ("amd64", "!i386").
	Arches []string
	// Profiles is the build-profile restriction formula: one inner list per
	// <...> group, each term as written ("nocheck", "!nodoc").
	Profiles [][]string
}

// String writes the relation back in canonical form.
func (r Relation) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if r.Qualifier != "" {
		b.WriteString(":" + r.Qualifier)
	}
	if r.Op != "" {
		fmt.Fprintf(&b, " (%s %s)", r.Op, r.Version)
	}
	if len(r.Arches) > 0 {
		fmt.Fprintf(&b, " [%s]", strings.Join(r.Arches, " "))
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, " <%s>", strings.Join(p, " "))
	}
	return b.String()
}

// ParseRelations parses a dependency field (Build-Depends syntax): a comma
// separated list of alternatives separated by "|". As in dpkg (Dpkg::Deps),
// empty list elements ("a, , b", trailing commas) are skipped and trailing
// empty alternatives ("a |") dropped; an empty field gives no relations. The
// error quotes the offending relation and says what is wrong with it.
func ParseRelations(s string) ([][]Relation, error) {
	out := [][]Relation{}
	for _, and := range strings.Split(s, ",") {
		if strings.TrimSpace(and) == "" {
			continue
		}
		alts := strings.Split(and, "|")
		for len(alts) > 1 && strings.TrimSpace(alts[len(alts)-1]) == "" {
			alts = alts[:len(alts)-1]
		}
		group := make([]Relation, 0, len(alts))
		for _, alt := range alts {
			rel, err := parseRelation(alt)
			if err != nil {
				return nil, fmt.Errorf("relation %q: %w", strings.Join(strings.Fields(alt), " "), err)
			}
			group = append(group, rel)
		}
		out = append(out, group)
	}
	return out, nil
}

func parseRelation(s string) (Relation, error) {
	var r Relation
	p := relParser{s: s}
	p.skipSpace()
	if p.done() {
		return r, fmt.Errorf("empty relation")
	}
	name := p.word(isNameChar)
	if name == "" {
		return r, fmt.Errorf("missing package name before %q", p.rest())
	}
	if !isAlnum(name[0]) {
		return r, fmt.Errorf("bad package name %q", name)
	}
	r.Name = name
	if p.eat(':') {
		q := p.word(isArchChar)
		if q == "" || !isAlnum(q[0]) {
			return r, fmt.Errorf("bad architecture qualifier after %q", name+":")
		}
		r.Qualifier = q
	}
	p.skipSpace()
	if p.eat('(') {
		p.skipSpace()
		op := p.word(func(c byte) bool { return c == '<' || c == '=' || c == '>' })
		switch op {
		case "<<", "<=", "=", ">=", ">>", "<", ">":
		case "":
			return r, fmt.Errorf("missing version operator in (...)")
		default:
			return r, fmt.Errorf("unknown version operator %q", op)
		}
		p.skipSpace()
		v := p.word(func(c byte) bool { return c != ')' && !isSpace(c) })
		if v == "" {
			return r, fmt.Errorf("missing version after %q", op)
		}
		p.skipSpace()
		if !p.eat(')') {
			if p.done() {
				return r, fmt.Errorf("missing \")\" after the version")
			}
			return r, fmt.Errorf("unexpected %q after the version", p.rest())
		}
		r.Op, r.Version = op, v
		p.skipSpace()
	}
	if p.eat('[') {
		arches, err := p.list('[', ']', "architecture", func(n string) bool { return isAlnum(n[0]) && allOf(n, isArchChar) })
		if err != nil {
			return r, err
		}
		r.Arches = arches
		p.skipSpace()
	}
	for p.eat('<') {
		terms, err := p.list('<', '>', "build profile", func(n string) bool { return allOf(n, isProfileChar) })
		if err != nil {
			return r, err
		}
		r.Profiles = append(r.Profiles, terms)
		p.skipSpace()
	}
	if !p.done() {
		switch p.peek() {
		case '(':
			return r, fmt.Errorf("version restriction after the architecture or profile list")
		case '[':
			return r, fmt.Errorf("architecture list after the build profile list")
		}
		return r, fmt.Errorf("unexpected %q", p.rest())
	}
	return r, nil
}

type relParser struct {
	s string
	i int
}

// list reads the rest of an "[arch ...]" or "<profile ...>" list, open
// already eaten: its words, each valid after an optional "!".
func (p *relParser) list(open, close byte, what string, valid func(string) bool) ([]string, error) {
	text, ok := p.upTo(close)
	if !ok {
		return nil, fmt.Errorf("missing %q after the %s list", string(close), what)
	}
	words := strings.Fields(text)
	if len(words) == 0 {
		return nil, fmt.Errorf("empty %s list %c%c", what, open, close)
	}
	for _, w := range words {
		if n := strings.TrimPrefix(w, "!"); n == "" || !valid(n) {
			return nil, fmt.Errorf("bad %s %q in %c%s%c", what, w, open, text, close)
		}
	}
	return words, nil
}

// allOf reports whether every byte of s is ASCII and passes ok.
func allOf(s string, ok func(byte) bool) bool {
	return strings.IndexFunc(s, func(c rune) bool { return c > 0x7f || !ok(byte(c)) }) < 0
}

func (p *relParser) done() bool   { return p.i >= len(p.s) }
func (p *relParser) peek() byte   { return p.s[p.i] }
func (p *relParser) rest() string { return p.s[p.i:] }

func (p *relParser) skipSpace() {
	for p.i < len(p.s) && isSpace(p.s[p.i]) {
		p.i++
	}
}

func (p *relParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *relParser) word(ok func(byte) bool) string {
	j := p.i
	for j < len(p.s) && ok(p.s[j]) {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

// upTo returns the text up to the closing byte and moves past it.
func (p *relParser) upTo(c byte) (string, bool) {
	j := strings.IndexByte(p.s[p.i:], c)
	if j < 0 {
		return "", false
	}
	w := p.s[p.i : p.i+j]
	p.i += j + 1
	return w, true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isNameChar(c byte) bool    { return isAlnum(c) || c == '+' || c == '-' || c == '.' }
func isArchChar(c byte) bool    { return isAlnum(c) || c == '-' }
func isProfileChar(c byte) bool { return isAlnum(c) || c == '-' || c == '.' || c == '+' || c == '_' }

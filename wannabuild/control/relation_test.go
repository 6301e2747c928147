package control

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestParseRelations(t *testing.T) {
	tests := []struct {
		in   string
		want [][]Relation
	}{
		{"", [][]Relation{}},
		{"  ", [][]Relation{}},
		{"debhelper-compat (= 13)", [][]Relation{{{Name: "debhelper-compat", Op: "=", Version: "13"}}}},
		{"a (>= 1), b | c [amd64] <!nocheck>", [][]Relation{
			{{Name: "a", Op: ">=", Version: "1"}},
			{{Name: "b"}, {Name: "c", Arches: []string{"amd64"}, Profiles: [][]string{{"!nocheck"}}}},
		}},
		{"libc6-dev (<< 2.37~) [!hurd-i386 !kfreebsd-any], python3:any (>>3.9), gcc:native", [][]Relation{
			{{Name: "libc6-dev", Op: "<<", Version: "2.37~", Arches: []string{"!hurd-i386", "!kfreebsd-any"}}},
			{{Name: "python3", Qualifier: "any", Op: ">>", Version: "3.9"}},
			{{Name: "gcc", Qualifier: "native"}},
		}},
		{"foo <!nocheck !nodoc> <stage1>,\n bar (<= 1:2.0-1),\n", [][]Relation{
			{{Name: "foo", Profiles: [][]string{{"!nocheck", "!nodoc"}, {"stage1"}}}},
			{{Name: "bar", Op: "<=", Version: "1:2.0-1"}},
		}},
		{"old (< 1), older (> 2)", [][]Relation{{{Name: "old", Op: "<", Version: "1"}}, {{Name: "older", Op: ">", Version: "2"}}}},
		{"g++-12 ( >= 12.2 ) [ amd64 arm64 ]", [][]Relation{{{Name: "g++-12", Op: ">=", Version: "12.2", Arches: []string{"amd64", "arm64"}}}}},
	}
	for _, tt := range tests {
		got, err := ParseRelations(tt.in)
		if err != nil {
			t.Errorf("ParseRelations(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRelations(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseRelationsBad(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a, , b", `relation "": empty relation`},
		{", a", `relation "": empty relation`},
		{"a | ", `relation "": empty relation`},
		{"a (>= )", `relation "a (>= )": missing version after ">="`},
		{"a (1.0)", `relation "a (1.0)": missing version operator in (...)`},
		{"a (=> 1.0)", `relation "a (=> 1.0)": unknown version operator "=>"`},
		{"a (>= 1.0", `relation "a (>= 1.0": missing ")" after the version`},
		{"a (>= 1.0 2.0)", `relation "a (>= 1.0 2.0)": unexpected "2.0)" after the version`},
		{"a [amd64", `relation "a [amd64": missing "]" after the architecture list`},
		{"a []", `relation "a []": empty architecture list []`},
		{"a [amd64 !i386]", `relation "a [amd64 !i386]": architecture list [amd64 !i386] mixes negated and plain architectures`},
		{"a [am_d64]", `relation "a [am_d64]": bad architecture "am_d64" in [am_d64]`},
		{"a <nocheck", `relation "a <nocheck": missing ">" after the build profile list`},
		{"a <>", `relation "a <>": empty build profile list <>`},
		{"a [amd64] (>= 1)", `relation "a [amd64] (>= 1)": version restriction after the architecture or profile list`},
		{"a <nocheck> [amd64]", `relation "a <nocheck> [amd64]": architecture list after the build profile list`},
		{"-a", `relation "-a": bad package name "-a"`},
		{"(>= 1)", `relation "(>= 1)": missing package name before "(>= 1)"`},
		{"a:", `relation "a:": bad architecture qualifier after "a:"`},
		{"a b", `relation "a b": unexpected "b"`},
		{"a_b", `relation "a_b": unexpected "_b"`},
	}
	for _, tt := range tests {
		_, err := ParseRelations(tt.in)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseRelations(%q) error %v, want %s", tt.in, err, tt.want)
		}
	}
}

// TestParseRelationsRealSources parses every Build-Depends* and
// Build-Conflicts* field of the real bookworm Sources and checks that
// writing each relation back and parsing it again gives the same relation.
func TestParseRelationsRealSources(t *testing.T) {
	path := sharedData(t, "debian-bookworm-main/Sources.xz")
	rc, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	fields := []string{"Build-Depends", "Build-Depends-Indep", "Build-Depends-Arch", "Build-Conflicts", "Build-Conflicts-Indep", "Build-Conflicts-Arch"}
	r := NewReader(rc, path).Keep(fields...)
	n := 0
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Fields() {
			rels, err := ParseRelations(f.Value)
			if err != nil {
				t.Errorf("%s:%d: %s: %v", path, f.Line, f.Name, err)
				continue
			}
			for _, alts := range rels {
				var parts []string
				for _, rel := range alts {
					parts = append(parts, rel.String())
				}
				again, err := ParseRelations(strings.Join(parts, " | "))
				if err != nil || !reflect.DeepEqual(again, [][]Relation{alts}) {
					t.Errorf("%s:%d: %q does not round-trip: %v", path, f.Line, strings.Join(parts, " | "), err)
				}
				n += len(alts)
			}
		}
	}
	t.Logf("%d relations parsed", n)
}

package control

import (
	"context"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"buildd/internal/debiandata"
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
		{"a, , b,, c |", [][]Relation{{{Name: "a"}}, {{Name: "b"}}, {{Name: "c"}}}},
		{"a [amd64 !i386]", [][]Relation{{{Name: "a", Arches: []string{"amd64", "!i386"}}}}},
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
		{"a | | b", `relation "": empty relation`},
		{"| b", `relation "": empty relation`},
		{"a (>= )", `relation "a (>= )": missing version after ">="`},
		{"a (1.0)", `relation "a (1.0)": missing version operator in (...)`},
		{"a (=> 1.0)", `relation "a (=> 1.0)": unknown version operator "=>"`},
		{"a (>= 1.0", `relation "a (>= 1.0": missing ")" after the version`},
		{"a (>= 1.0 2.0)", `relation "a (>= 1.0 2.0)": unexpected "2.0)" after the version`},
		{"a [amd64", `relation "a [amd64": missing "]" after the architecture list`},
		{"a []", `relation "a []": empty architecture list []`},
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

// dpkgDepsScript prints Dpkg::Deps' canonical form of each input line.
const dpkgDepsScript = `use Dpkg::Deps;
while (my $l = <STDIN>) {
	chomp $l;
	my $d = deps_parse($l, build_dep => 1, reduce_arch => 0);
	print defined $d ? $d->output() . "\n" : "FAIL\n";
}`

// TestParseRelationsRealSources parses every Build-Depends* and
// Build-Conflicts* field of the real bookworm Sources and compares the
// result, written in canonical form, with what dpkg's own parser
// (Dpkg::Deps, perl) makes of the same field.
func TestParseRelationsRealSources(t *testing.T) {
	path := debiandata.Path(t, "debian-bookworm-main/Sources.xz")
	if err := exec.Command("perl", "-MDpkg::Deps", "-e", "1").Run(); err != nil {
		t.Skipf("SKIPPING: perl with Dpkg::Deps (libdpkg-perl) is not available: %v", err)
	}
	rc, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := NewReader(rc, path).Keep("Build-Depends", "Build-Depends-Indep", "Build-Depends-Arch", "Build-Conflicts", "Build-Conflicts-Indep", "Build-Conflicts-Arch")
	var fields []Field
	var in strings.Builder
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range p.Fields() {
			fields = append(fields, f)
			in.WriteString(strings.ReplaceAll(f.Value, "\n", " ") + "\n")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "perl", "-e", dpkgDepsScript)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl Dpkg::Deps: %v", err)
	}
	want := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(want) != len(fields) {
		t.Fatalf("Dpkg::Deps answered %d of %d fields", len(want), len(fields))
	}
	n := 0
	for i, f := range fields {
		rels, err := ParseRelations(f.Value)
		if err != nil {
			t.Errorf("%s:%d: %s: %v", path, f.Line, f.Name, err)
			continue
		}
		var ands []string
		for _, alts := range rels {
			var ors []string
			for _, rel := range alts {
				ors = append(ors, rel.String())
			}
			ands = append(ands, strings.Join(ors, " | "))
			n += len(alts)
		}
		if got := strings.Join(ands, ", "); got != want[i] {
			t.Errorf("%s:%d: %s:\n got  %s\n dpkg %s", path, f.Line, f.Name, got, want[i])
		}
	}
	t.Logf("%d fields, %d relations agree with Dpkg::Deps", len(fields), n)
}

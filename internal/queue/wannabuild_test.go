package queue

import (
	"reflect"
	"testing"
	"time"
)

func TestRecordEncoding(t *testing.T) {
	r := &Record{Package: "foo", Version: "1:2.0-1", State: Failed, Section: "contrib/libs", Priority: "optional",
		InstalledVersion: "1:1.9-1", PreviousState: Building, StateChange: 1700000000, Notes: "out-of-date",
		Builder: "buildd_a", Failed: "line 1\nline 2\n", OldFailed: "---", BinNMU: 3, BinNMUChangelog: "rebuild",
		BuildPri: -5, PermBuildPri: 7, Depends: "libx (>= 1)", BDProblem: "x", BuildTime: 7200, SuccessTime: 3600,
		ExtraDepends: "a", ExtraConflicts: "b"}
	data, _ := r.MarshalBinary()
	var got Record
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, got) {
		t.Errorf("round trip:\n%+v\n%+v", *r, got)
	}
	if st, err := StateOf(data); err != nil || st != Failed {
		t.Errorf("StateOf = %q, %v", st, err)
	}
	for n := 0; n < len(data); n++ {
		if err := new(Record).UnmarshalBinary(data[:n]); err == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
}

func TestCalPrio(t *testing.T) {
	now := time.Unix(1700000000, 0)
	day := int64(86400)
	for _, tc := range []struct {
		r    Record
		want int
	}{
		{Record{Priority: "required", Notes: "uncompiled"}, 70},
		{Record{Priority: "important", Section: "libs", Notes: "out-of-date"}, 84},
		{Record{Priority: "standard", Section: "devel"}, 32},
		{Record{Priority: "optional", Section: "contrib/libs"}, -1},
		{Record{Priority: "optional", Section: "non-free/devel"}, -13},
		{Record{Priority: "optional", StateChange: 1700000000 - 3*day}, 11},
		{Record{Priority: "optional", StateChange: 1700000000 - 30*day}, 17},
		{Record{Priority: "optional", BuildTime: 5 * 3600}, 0},
		{Record{Priority: "optional", SuccessTime: 40 * 3600}, -10},
		{Record{Priority: "optional", BuildPri: 10, PermBuildPri: -3}, 12},
		{Record{Priority: "source"}, 0},
	} {
		if tc.r.StateChange == 0 {
			tc.r.StateChange = now.Unix()
		}
		if got := CalPrio(&tc.r, now); got != tc.want {
			t.Errorf("CalPrio(%+v) = %d, want %d", tc.r, got, tc.want)
		}
	}
}

func TestSplitArg(t *testing.T) {
	for _, tc := range []struct{ arg, name, version string }{
		{"foo_1.0-1", "foo", "1.0-1"},
		{"libfoo++_1:2.0~rc1+dfsg-1", "libfoo++", "1:2.0~rc1+dfsg-1"},
		{"/srv/pool/foo_1.0-1.dsc", "foo", "1.0-1"},
		{"foo_1.0-1_amd64.changes", "foo", "1.0-1"},
		{"foo_1.0-1_amd64.deb", "foo", "1.0-1"},
		{"foo", "", ""},
		{"_1.0", "", ""},
	} {
		n, v, err := SplitArg(tc.arg)
		if n != tc.name || v != tc.version || (err != nil) != (tc.name == "") {
			t.Errorf("SplitArg(%q) = %q, %q, %v", tc.arg, n, v, err)
		}
	}
}

func TestCheckDepWait(t *testing.T) {
	for deps, ok := range map[string]bool{
		"libfoo": true, "libfoo (>= 1.0), libbar (>> 2), libbaz (> 3)": true, "a,b,c": true,
		"": false, "  ": false, "a | b": false, "a (<< 2)": false, "a (<= 2)": false, "a (= 2)": false, "a (>= ": false,
	} {
		if err := CheckDepWait(deps); (err == nil) != ok {
			t.Errorf("CheckDepWait(%q) = %v, want ok %v", deps, err, ok)
		}
	}
	if got := MergeDeps("a (>= 1), b", "a (> 2), c"); got != "a (>> 2), b, c" {
		t.Errorf("MergeDeps = %q", got)
	}
}

func TestParseMergeArgs(t *testing.T) {
	m, err := ParseMergeArgs([]string{"P1", "P2", ".", "S", ".", "D", ".", "PAS"})
	if err != nil || !reflect.DeepEqual(m, MergeFiles{Packages: []string{"P1", "P2"}, Sources: []string{"S"}, DepPackages: []string{"D"}, ArchSpecific: []string{"PAS"}}) {
		t.Errorf("got %+v, %v", m, err)
	}
	m, _ = ParseMergeArgs([]string{"P", ".", "S"})
	if !reflect.DeepEqual(m.DepPackages, []string{"P"}) {
		t.Errorf("Packages-for-deps default: %v", m.DepPackages)
	}
	for _, bad := range [][]string{{"P"}, {".", "S"}, {"P", "."}, {"P", ".", "S", ".", "D", ".", "X", ".", "Y"}} {
		if _, err := ParseMergeArgs(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestRecordFormat1 reads a record written before LeaseUntil existed.
func TestRecordFormat1(t *testing.T) {
	r := &Record{Package: "hello", Version: "1.0", State: Building, Builder: "buildd_a", StateChange: 7, LeaseUntil: 99}
	data, _ := r.MarshalBinary()
	old := append([]byte{recordFormat}, data[1:len(data)-2]...) // without the lease varint (2 bytes for 99)
	var got Record
	if err := got.UnmarshalBinary(old); err != nil {
		t.Fatal(err)
	}
	want := *r
	want.LeaseUntil = 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("format 1:\n%+v\nwant\n%+v", got, want)
	}
}

package debversion_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "buildd/internal/debversion"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		str     string
		err     string // substring of the error; "" if it parses
		dpkgErr bool   // dpkg refuses it outright (exit 2) rather than warning
	}{
		{in: "1.0", want: Version{0, "1.0", ""}, str: "1.0"},
		{in: "1.0-1", want: Version{0, "1.0", "1"}, str: "1.0-1"},
		{in: "1:2.3-4", want: Version{1, "2.3", "4"}, str: "1:2.3-4"},
		{in: "0:1.0", want: Version{0, "1.0", ""}, str: "1.0"},
		{in: "01:1.0", want: Version{1, "1.0", ""}, str: "1:1.0"},
		{in: "1:2:3-4", want: Version{1, "2:3", "4"}, str: "1:2:3-4"},
		{in: "1.0-1-2", want: Version{0, "1.0-1", "2"}, str: "1.0-1-2"},
		{in: "2.0~rc1+dfsg-1~bpo12+1", want: Version{0, "2.0~rc1+dfsg", "1~bpo12+1"}, str: "2.0~rc1+dfsg-1~bpo12+1"},
		{in: " 1.0 ", want: Version{0, "1.0", ""}, str: "1.0"},
		{in: "0:0:", want: Version{0, "0:", ""}, str: "0:0:"},
		{in: "", err: "version string is empty", dpkgErr: true},
		{in: "   ", err: "version string is empty", dpkgErr: true},
		{in: "1 0", err: "embedded spaces", dpkgErr: true},
		{in: ":1.0", err: "epoch in version is empty", dpkgErr: true},
		{in: "a:1.0", err: "epoch in version is not number", dpkgErr: true},
		{in: "1a:1.0", err: "epoch in version is not number", dpkgErr: true},
		{in: "99999999999:1.0", err: "epoch in version is too big", dpkgErr: true},
		{in: "1:", err: "nothing after colon", dpkgErr: true},
		{in: "1.0-", err: "revision number is empty", dpkgErr: true},
		{in: "1:-1", err: "version number is empty", dpkgErr: true},
		{in: "a1.0", err: "does not start with digit"},
		{in: "~1", err: "does not start with digit"},
		{in: "1.0_1", err: "invalid character in version number"},
		{in: "1.0-1_1", err: "invalid character in revision number"},
		{in: "1:1.0-1:1", err: "invalid character in revision number"},
	}
	for _, tt := range tests {
		v, err := Parse(tt.in)
		if tt.err == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tt.in, err)
				continue
			}
			if v != tt.want || v.String() != tt.str {
				t.Errorf("Parse(%q) = %+v (%q), want %+v (%q)", tt.in, v, v.String(), tt.want, tt.str)
			}
			if Compare(v.String(), tt.in) != 0 {
				t.Errorf("Compare(%q, %q) != 0", v.String(), tt.in)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Parse(%q) error = %v, want %q", tt.in, err, tt.err)
		}
		if tt.in == "" || strings.TrimSpace(tt.in) == "" {
			continue // dpkg takes an empty argument as "no version"
		}
		refused, warned := dpkgVerdict(t, tt.in)
		if refused != tt.dpkgErr || (!refused && warned != (tt.err != "")) {
			t.Errorf("%q: dpkg refused=%v warned=%v; the table expects error %q (dpkg refuses: %v)", tt.in, refused, warned, tt.err, tt.dpkgErr)
		}
	}
}

// dpkgVerdict asks dpkg what it thinks of a version: refused (exit 2) or
// accepted with a "bad syntax" warning.
func dpkgVerdict(t *testing.T, v string) (refused, warned bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dpkg", "--compare-versions", v, "eq", "1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
		return true, false
	} else if err != nil && !ok {
		t.Skipf("SKIPPING: cannot run dpkg: %v", err)
	}
	return false, strings.Contains(string(out), "bad syntax")
}

func TestCompareDoesNotAllocate(t *testing.T) {
	n := testing.AllocsPerRun(1000, func() {
		Compare("1:2.30-7+deb12u1", "1:2.30-7~bpo11+1")
		Compare("0.0~git20230101.abcdef-1", "0.0~git20221231.fedcba-3")
	})
	if n != 0 {
		t.Errorf("Compare allocates %v times per run", n)
	}
}

func BenchmarkCompare(b *testing.B) {
	pairs := [][2]string{
		{"1:2.30-7+deb12u1", "1:2.30-7~bpo11+1"},
		{"0.0~git20230101.abcdef-1", "0.0~git20221231.fedcba-3"},
		{"5.10.0-21", "5.10.0-21"},
		{"3.2.1-1", "3.12-2"},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := pairs[i%len(pairs)]
		Compare(p[0], p[1])
	}
}

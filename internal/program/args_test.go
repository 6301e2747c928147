package program

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantD   string
		wantErr bool
	}{
		{nil, nil, "", false},
		{[]string{"list"}, []string{"list"}, "", false},
		{[]string{"--d", "x", "create", "m"}, []string{"create", "m"}, "x", false},
		{[]string{"create", "--d", "x", "m"}, []string{"create", "m"}, "x", false},
		{[]string{"create", "m", "--d=x"}, []string{"create", "m"}, "x", false},
		{[]string{"create", "--", "--d", "x"}, []string{"create", "--d", "x"}, "", false},
		{[]string{"create", "--bogus"}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			d := fs.String("d", "", "")
			pos, err := ParseInterspersed(fs, tt.args)
			if (err != nil) != tt.wantErr || !slices.Equal(pos, tt.wantPos) || *d != tt.wantD {
				t.Errorf("pos %q, -d %q, err %v; want %q, %q, error %v", pos, *d, err, tt.wantPos, tt.wantD, tt.wantErr)
			}
		})
	}
}

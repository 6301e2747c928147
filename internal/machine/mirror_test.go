package machine

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestHostMirror(t *testing.T) {
	for _, tc := range []struct {
		root, dist, want, err string
	}{
		{"deb822", "bookworm", "http://archive.example.org/debian", ""},
		{"deb822", "trixie", "http://archive.example.org/debian", ""},
		{"oneline", "bookworm", "http://one.example.org/debian", ""},
		{"mixed", "trixie", "http://mixed.example.org/debian", ""},
		{"none", "bookworm", "", "no deb archive for bookworm"},
	} {
		got, err := HostMirror(filepath.Join("testdata/apt", tc.root), tc.dist)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s/%s: error %v, want %q", tc.root, tc.dist, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s/%s: got %q, %v; want %q", tc.root, tc.dist, got, err, tc.want)
		}
	}
}

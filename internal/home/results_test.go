package home

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRemoveBuild: a build's .changes and the files it lists leave build/,
// other files stay; an unparsable .changes goes alone, with an error; a
// missing one is not found.
func TestRemoveBuild(t *testing.T) {
	const name = "hello_2.10-3_amd64.changes"
	good, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		changes []byte // nil: none
		found   bool
		err     bool
		left    []string
	}{
		{"a build", good, true, false, []string{"other_1.0_amd64.deb"}},
		{"unparsable", []byte("not a .changes\n"), true, true, []string{"hello_2.10-3_amd64.deb", "other_1.0_amd64.deb"}},
		{"none", nil, false, false, []string{"hello_2.10-3_amd64.deb", "other_1.0_amd64.deb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			if err := h.Init(); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"hello_2.10-3_amd64.deb", "other_1.0_amd64.deb"} {
				os.WriteFile(filepath.Join(h.BuildDir(), f), nil, 0o644)
			}
			if tt.changes != nil {
				os.WriteFile(filepath.Join(h.BuildDir(), name), tt.changes, 0o644)
			}
			found, err := h.RemoveBuild(name)
			if found != tt.found || (err != nil) != tt.err {
				t.Errorf("RemoveBuild = %v, %v; want %v, error %v", found, err, tt.found, tt.err)
			}
			var left []string
			ents, _ := os.ReadDir(h.BuildDir())
			for _, e := range ents {
				left = append(left, e.Name())
			}
			if !slices.Equal(left, tt.left) {
				t.Errorf("build/ holds %v, want %v", left, tt.left)
			}
		})
	}
}

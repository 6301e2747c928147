package dose

import (
	"context"
	"os/exec"
	"reflect"
	"testing"
)

func TestCheck(t *testing.T) {
	if _, err := exec.LookPath(Program); err != nil {
		t.Skipf("SKIPPING: %s not installed (Debian package dose-builddebcheck): %v", Program, err)
	}
	got, err := Check(context.Background(), "arm64", []string{"testdata/Packages"}, []Source{
		{Name: "ok", Version: "1.0-1", BuildDepends: "debhelper (>= 13)"},
		{Name: "missing", Version: "1.0-1", BuildDepends: "debhelper (>= 13), libnothere-dev"},
		{Name: "tooold", Version: "1.0-1", BuildDepends: "debhelper (>= 14)"},
		{Name: "conflict", Version: "1.0-1", BuildDepends: "libold, debhelper"},
		{Name: "otherarch", Version: "1.0-1", BuildDepends: "libnothere-dev [amd64], debhelper"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	want := map[string]bool{"missing": true, "tooold": true, "conflict": true}
	if len(got) != len(want) {
		t.Fatalf("uninstallable: %v, want %v", got, want)
	}
	for n := range want {
		if got[n] == "" {
			t.Errorf("%s: no explanation in %v", n, got)
		}
	}
	if !reflect.DeepEqual(got["missing"], "unsat-dependency libnothere-dev:arm64") {
		t.Errorf("missing: %q", got["missing"])
	}
}

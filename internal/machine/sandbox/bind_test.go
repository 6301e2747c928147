package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
	"buildd/internal/machine/sandbox"
)

// listing is every entry under dir with its content: what must survive.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		b.WriteString(p + " " + fi.Mode().String())
		if d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// TestReadOnlyBind: a host directory bound into a working snapshot is
// readable there and cannot be changed, even by root; the mount exists only
// in the sandbox; deleting the snapshot afterwards leaves it intact. Bind
// targets that would lead out of the tree (a symlink) or hide the tree's
// files (a non-empty directory), and bad paths, are refused.
func TestReadOnlyBind(t *testing.T) {
	e := machinetest.New(t)
	w := working(t, e, "bind-test")
	host := filepath.Join(t.TempDir(), "archive")
	os.MkdirAll(filepath.Join(host, "pool"), 0o755)
	os.WriteFile(filepath.Join(host, "Release"), []byte("keep me\n"), 0o644)
	os.WriteFile(filepath.Join(host, "pool", "a.deb"), []byte("deb\n"), 0o644)
	before := listing(t, host)

	for _, user := range []string{"", machine.BuildUser} {
		var out strings.Builder
		script := `cat ARCHIVE/Release
for op in "touch ARCHIVE/new" "rm -f ARCHIVE/Release" "rm -rf ARCHIVE/pool" "mkdir ARCHIVE/d" "chmod 777 ARCHIVE"; do
	if $op 2>/dev/null; then echo "CHANGED: $op"; fi
done
awk '$5 == "ARCHIVE" { print "OPTIONS", $6 }' /proc/self/mountinfo`
		c := &sandbox.Cmd{Root: w.Path(), User: user, Output: &out, ReadOnly: []string{host},
			Args: []string{"/bin/sh", "-c", strings.ReplaceAll(script, "ARCHIVE", host)}}
		if err := c.Run(context.Background()); err != nil {
			t.Fatalf("as %q: %v\n%s", user, err, out.String())
		}
		got := out.String()
		if !strings.HasPrefix(got, "keep me\n") || strings.Contains(got, "CHANGED") {
			t.Errorf("as %q: bound directory not read-only:\n%s", user, got)
		}
		if !strings.Contains(got, "OPTIONS ro,nosuid,nodev") {
			t.Errorf("as %q: mount options:\n%s", user, got)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), host) {
		t.Errorf("the bind mount is visible outside the sandbox:\n%s", mi)
	}
	if err := w.Delete(); err != nil {
		t.Fatal(err)
	}
	if after := listing(t, host); after != before {
		t.Errorf("bound directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	w2 := working(t, e, "bind-refusals")
	// A symlink in the tree on the way to the target: it would lead out.
	elsewhere := t.TempDir()
	first := strings.SplitN(strings.TrimPrefix(host, "/"), "/", 3)
	link := filepath.Join(w2.Path(), first[0], first[1])
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.CheckBind(w2.Path(), host); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("CheckBind through a symlink: %v", err)
	}
	c := &sandbox.Cmd{Root: w2.Path(), Args: []string{"/bin/true"}, ReadOnly: []string{host}}
	if err := c.Run(context.Background()); err == nil {
		t.Error("Run bound through a symlink in the tree")
	}
	if ents, _ := os.ReadDir(elsewhere); len(ents) != 0 {
		t.Errorf("bind made %v outside the tree", ents)
	}
	os.Remove(link)
	// A non-empty directory in the tree would be hidden.
	for _, tc := range []struct{ dir, err string }{
		{"/etc", "not empty"},
		{"etc/apt", "absolute, clean"},
		{"/", "other than /"},
		{"/etc/../etc", "absolute, clean"},
		{"/nonexistent/buildd", "no such file"},
		{filepath.Join(host, "Release"), "not a directory"},
		{host, ""},
	} {
		err := sandbox.CheckBind(w2.Path(), tc.dir)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckBind %s: %v, want %q", tc.dir, err, tc.err)
		}
	}
	if err := w2.Delete(); err != nil {
		t.Fatal(err)
	}
	if after := listing(t, host); after != before {
		t.Errorf("bound directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

package machine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
)

const key1 = "00112233445566778899aabbccddeeff"

// TestLayers: a layer is made from a working snapshot as it is after an
// install, cleaned, read-only; a working snapshot of it has the install;
// LRU eviction, and Clean after the machine moved to a new revision, drop
// layers and shared lists; a half-made layer is a stray Clean deletes.
func TestLayers(t *testing.T) {
	e := machinetest.New(t)
	s, m := e.Store, e.Machine
	w, err := s.NewWorking(m, "dep_1.0")
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(w.Path(), rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/share/installed-dep", "the build-dependency")
	write("build/dep_1.0.dsc", "the build's own file")
	cleaned := ""
	nl := s.AddLayer(w, key1, machine.LayerInfo{SizeKiB: 2048, Packages: []string{"dep_1.0_amd64"}}, func(root string) error {
		cleaned = root
		return os.Remove(filepath.Join(root, "build/dep_1.0.dsc"))
	})
	// The build goes on in w at once; the layer keeps w as it was.
	write("usr/share/after-the-layer", "written while the layer is finished")
	err = nl.Wait()
	name := nl.Name
	if _, err := os.Stat(filepath.Join(s.Dir, m, name, "usr/share/after-the-layer")); err == nil {
		t.Error("the layer has a file written after AddLayer returned")
	}
	if err != nil || name != "layer-1-"+key1 {
		t.Fatalf("AddLayer = %q, %v", name, err)
	}
	if !strings.Contains(filepath.Base(cleaned), ".layer-new-1-"+key1) {
		t.Errorf("clean ran on %s, want the layer being made", cleaned)
	}
	if err := w.Delete(); err != nil {
		t.Fatal(err)
	}
	w2 := mustWorking(t, s, m)
	again := s.AddLayer(w2, key1, machine.LayerInfo{}, func(string) error {
		t.Error("a layer that exists is made again")
		return nil
	})
	if err := again.Wait(); err != nil || again.Name != name {
		t.Errorf("AddLayer again = %q, %v", again.Name, err)
	}
	if err := w2.Delete(); err != nil {
		t.Fatal(err)
	}

	lw, ok, err := s.NewWorkingFromLayer(m, key1, "user_2.0")
	if err != nil || !ok || lw.Layer != name || lw.Revision != m+"-1" {
		t.Fatalf("NewWorkingFromLayer = %+v, %v, %v", lw, ok, err)
	}
	if data, err := os.ReadFile(filepath.Join(lw.Path(), "usr/share/installed-dep")); err != nil || string(data) != "the build-dependency" {
		t.Errorf("layer snapshot lacks the install: %q %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(lw.Path(), "build/dep_1.0.dsc")); err == nil {
		t.Error("the layer kept the first build's file")
	}
	if err := os.WriteFile(filepath.Join(e.Dir, m, name, "x"), nil, 0o644); err == nil {
		t.Error("the layer is writable")
	}
	if err := lw.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.NewWorkingFromLayer(m, "ffffffffffffffffffffffffffffffff", "x_1"); ok || err != nil {
		t.Errorf("a missing layer: ok=%v err=%v", ok, err)
	}
	if _, _, err := s.NewWorkingFromLayer(m, "../../etc", "x_1"); err == nil {
		t.Error("a key that is not hex was accepted")
	}

	ls, err := s.Layers(m)
	if err != nil || len(ls) != 1 || ls[0].SizeKiB != 2048 || time.Since(ls[0].LastUsed) > time.Minute {
		t.Fatalf("Layers = %+v, %v", ls, err)
	}
	if gone, err := s.EvictLayers(m, 4096); err != nil || len(gone) != 0 {
		t.Errorf("EvictLayers within the budget deleted %v, %v", gone, err)
	}
	if gone, err := s.EvictLayers(m, 1024); err != nil || len(gone) != 1 {
		t.Errorf("EvictLayers over the budget deleted %v, %v", gone, err)
	}

	// A new revision: the old one's layer and lists go at Clean; a
	// half-made layer without its maker goes too.
	w = mustWorking(t, s, m)
	if err := s.AddLayer(w, key1, machine.LayerInfo{SizeKiB: 1}, func(string) error { return nil }).Wait(); err != nil {
		t.Fatal(err)
	}
	lists, err := s.OpenLists(m, w.Revision, key1)
	if err != nil {
		t.Fatal(err)
	}
	if err := lists.Save(w.Path(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := lists.Fetched(); time.Since(got) > time.Minute {
		t.Errorf("Fetched = %v", got)
	}
	btrfs(t, "subvolume", "snapshot", filepath.Join(w.Path()), filepath.Join(e.Dir, m, ".layer-new-1-"+key1[:16]))
	if err := w.Delete(); err != nil {
		t.Fatal(err)
	}
	btrfs(t, "subvolume", "snapshot", "-r", filepath.Join(e.Dir, m, m+"-1"), filepath.Join(e.Dir, m, m+"-2"))
	if err := os.Remove(filepath.Join(e.Dir, m, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(m+"-2", filepath.Join(e.Dir, m, "current")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Clean(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"layer-1-" + key1, ".layer-new-1-" + key1[:16], ".apt-lists/1-" + key1} {
		if !slices.Contains(rep.Deleted, filepath.Join(e.Dir, m, want)) {
			t.Errorf("Clean did not delete %s: %+v", want, rep)
		}
	}
	if len(rep.NotUnderstood) != 0 {
		t.Errorf("Clean did not understand %v", rep.NotUnderstood)
	}
	if ls, _ := s.Layers(m); len(ls) != 0 {
		t.Errorf("layers left: %+v", ls)
	}

	// Deleting the machine deletes its layers and apt caches too.
	w = mustWorking(t, s, m)
	if err := s.AddLayer(w, key1, machine.LayerInfo{SizeKiB: 1}, func(string) error { return nil }).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PackageCache(m); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Delete(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(e.Dir, m)); err == nil {
		ents, _ := os.ReadDir(filepath.Join(e.Dir, m))
		t.Errorf("machine directory left after delete: %v", ents)
	}
}

func mustWorking(t *testing.T, s *machine.Store, m string) *machine.Working {
	t.Helper()
	w, err := s.NewWorking(m, "job_1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Delete() })
	return w
}

// TestPackageCacheEviction: the least recently used files go first.
func TestPackageCacheEviction(t *testing.T) {
	e := machinetest.New(t)
	dir, err := e.Store.PackageCache(e.Machine)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for i, n := range []string{"a_1_all.deb", "b_1_all.deb", "c_1_all.deb"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, make([]byte, 1024), 0o644); err != nil {
			t.Fatal(err)
		}
		at := old.Add(time.Duration(i) * time.Minute)
		os.Chtimes(p, at, at)
	}
	if n, err := e.Store.EvictPackages(e.Machine, 2); err != nil || n != 1 {
		t.Fatalf("EvictPackages = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a_1_all.deb")); err == nil {
		t.Error("the least recently used file was kept")
	}
}

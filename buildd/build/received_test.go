package build_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"buildd/internal/machine"
	"buildd/internal/machine/machinetest"
)

// TestReceivedRevisionBuildsSame: a revision sent to a second machines_dir
// (another build host's) builds the same package into the same .deb, byte
// for byte, and both logs' summaries name the revision by the same UUID.
func TestReceivedRevisionBuildsSame(t *testing.T) {
	a := machinetest.New(t)
	bDir := machinetest.NewDir(t)
	bs, err := machine.Open(bDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(a.Store.Send(ctx, a.Machine, "", "", pw)) }()
	if _, err := bs.Receive(ctx, a.Machine, pr, machine.CreateOptions{Dist: a.Dist, Arch: a.Arch}); err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Dir, b.Store = bDir, bs
	var debs [][]byte
	var uuids []string
	for _, e := range []*machinetest.Env{a, &b} {
		cfg := testConfig(t, e)
		res, _ := buildOK(t, e, cfg, sourcePackage(t, "tiny-ok"), "tiny-ok-"+filepath.Base(filepath.Dir(e.Dir)))
		data, err := os.ReadFile(filepath.Join(cfg.Home, "build", "tiny-ok_1.0_"+e.Arch+".deb"))
		if err != nil {
			t.Fatal(err)
		}
		debs = append(debs, data)
		uuids = append(uuids, summary(t, res.LogPath)["Revision-UUID"])
	}
	if !bytes.Equal(debs[0], debs[1]) {
		t.Errorf("the .deb built on the received revision differs from the sender's")
	}
	if uuids[0] == "" || uuids[0] != uuids[1] {
		t.Errorf("Revision-UUID: %q on the sender, %q on the receiver", uuids[0], uuids[1])
	}
}

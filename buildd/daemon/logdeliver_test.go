package daemon

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/buildd/build"
	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// TestLogDeliveryRetries: finished builds' logs wait in the spool while
// the queue's store cannot be reached, are delivered by the next round
// that reaches it, with their status and contents, and leave the spool
// empty but for a file it does not understand, which is set aside.
func TestLogDeliveryRetries(t *testing.T) {
	q := newQueueEnv(t, "max_build = 2\nlog_keep = 30", pkg("good", "1.0"), pkg("bad", "1.0"))
	q.b.status["bad_1.0"] = build.Attempted
	spooled := func() []string {
		t.Helper()
		ents, err := os.ReadDir(q.path(LogSpoolDir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	good := *q.cfg
	broken := good
	broken.WannaBuildDB = filepath.Join(q.home, "missing", "wanna-build.db")
	q.round()
	if n := len(spooled()); n != 2 {
		t.Fatalf("%d logs spooled after two builds: %v", n, spooled())
	}
	q.d.SetConfig(&broken)
	q.round()
	if n := len(spooled()); n != 2 {
		t.Fatalf("the queue unreachable: %d logs left in the spool, want both kept", n)
	}
	if !strings.Contains(q.daemonLog(), "Logs of bookworm/amd64 wait in "+q.path(LogSpoolDir)) {
		t.Errorf("daemon.log does not say the logs wait:\n%s", q.daemonLog())
	}
	if err := os.WriteFile(q.path(LogSpoolDir, "garbage"), []byte("not a spooled log"), 0o644); err != nil {
		t.Fatal(err)
	}
	q.d.SetConfig(&good)
	q.round()
	if left := strings.Join(spooled(), " "); left != "garbage.bad" {
		t.Fatalf("the queue reachable again: %q spooled, want only garbage.bad", left)
	}
	db, err := store.Open(good.WannaBuildDB, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, status := range map[string]queue.Outcome{"good": queue.Successful, "bad": queue.Attempted} {
		logs, err := db.Logs(name)
		if err != nil || len(logs) != 1 {
			t.Fatalf("logs of %s: %v, %v", name, logs, err)
		}
		l := logs[0]
		if l.Dist != "bookworm" || l.Arch != "amd64" || l.Version != "1.0" || l.Status != status || l.Builder != good.Dists[0].WannaBuildDBUser {
			t.Errorf("log of %s: %+v", name, l)
		}
		if keep := time.Duration(l.Expires-l.Time) * time.Second; keep != 30*24*time.Hour {
			t.Errorf("log of %s kept %v, want log_keep 30 days", name, keep)
		}
		var gz bytes.Buffer
		if err := db.CopyLog(&l, &gz); err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(&gz)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(zr)
		files, _ := filepath.Glob(q.path("logs", name+"_1.0_amd64-*.build"))
		if len(files) != 1 {
			t.Fatalf("logs/ of %s: %v", name, files)
		}
		if want, _ := os.ReadFile(files[0]); !bytes.Equal(text, want) {
			t.Errorf("stored log of %s = %q, want %q", name, text, want)
		}
	}
}

// TestLogSpoolWithoutArch: a log spooled before spool entries carried
// the architecture is delivered to the store of its dist's only
// architecture; on a host that builds the dist for two, it can go to
// neither and is set aside for the admin, saying so.
func TestLogSpoolWithoutArch(t *testing.T) {
	q := newQueueEnv(t, "max_build = 1", pkg("good", "1.0"))
	spool := func(name string) {
		t.Helper()
		text := []byte("build of " + name + "_1.0\nStatus: successful\n")
		now := time.Now()
		e := spoolEntry{Dist: "bookworm", Package: name, Version: "1.0", Time: now.Unix(), Status: string(queue.Successful), Expires: now.Add(time.Hour).Unix()}
		if err := q.d.writeSpool(e, bytes.NewReader(text), int64(len(text))); err != nil {
			t.Fatal(err)
		}
	}
	spool("old")
	q.d.DeliverLogs(t.Context())
	db, err := store.Open(q.cfg.WannaBuildDB, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := db.Logs("old")
	db.Close()
	if err != nil || len(logs) != 1 || logs[0].Arch != "amd64" {
		t.Fatalf("the log spooled without its arch: %+v, %v; want it in bookworm/amd64's store", logs, err)
	}

	q.writeConf("max_build = 1", "[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"arm64\"\n")
	c, err := config.Load(q.conf)
	if err != nil {
		t.Fatal(err)
	}
	q.d.SetConfig(c)
	spool("older")
	q.d.DeliverLogs(t.Context())
	bad, _ := filepath.Glob(q.path(LogSpoolDir, "older_1.0_*"+badSuffix))
	if len(bad) != 1 || !strings.Contains(q.daemonLog(), "dist bookworm without an architecture: this host builds it for amd64 and arm64") {
		t.Errorf("set aside %v; daemon.log:\n%s", bad, q.daemonLog())
	}
}

package port_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
)

// builderPort is the port of a fresh PostgreSQL queue connected as
// the builder role buildd_a, its schema made by the admin, that has taken
// hello_1.0-1 (a builder delivers logs only of packages it took).
func builderPort(t *testing.T) (queue.Port, string) {
	db := pgtest.New(t)
	admin, err := store.Open(db.URL(pgtest.Admin), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = admin.Update("sid", "amd64", func(tx queue.Tx) error {
		return tx.Put(&queue.Record{Package: "hello", Version: "1.0-1", State: queue.NeedsBuild})
	})
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	db.Grant(t, "buildd_a", queue.Pair{Dist: "sid", Arch: "amd64"})
	cfg := &config.Config{Home: t.TempDir(), WannaBuildDB: db.URL("buildd_a")}
	cfg.Dists = []config.Dist{{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: "buildd_a"}}
	c := port.Open(cfg, &cfg.Dists[0])
	t.Cleanup(func() { c.Close() })
	if err := c.Take(context.Background(), "hello_1.0-1"); err != nil {
		t.Fatal(err)
	}
	return c, db.URL(pgtest.Admin)
}

// TestPutLog: a log reaches the store through each path a queue call
// takes: the local store, wanna-build --put-log over ssh, and PostgreSQL
// as a builder role. Input that is not a gzip stream is refused, naming
// it; a second delivery of the same log (after a lost answer) is no error.
func TestPutLog(t *testing.T) {
	text := "<script>alert('x')</script>\x00\x1b[31m\n" + strings.Repeat("a build log line\n", 100000)
	var gz bytes.Buffer
	if err := queue.CompressLog(&gz, strings.NewReader(text), int64(len(text))); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Unix()
	for _, tc := range []struct {
		mode, notGzip string
	}{
		{"bolt", "log hello_1.0-1: not a gzip stream"},
		{"ssh", "log hello_1.0-1: not a gzip stream"},
		{"postgres-builder", "log hello_1.0-1: not a gzip stream"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx := context.Background()
			var c queue.Port
			var spec string
			if tc.mode == "postgres-builder" {
				c, spec = builderPort(t)
			} else {
				c, spec = newPort(t, tc.mode)
			}
			l := queue.BuildLog{Package: "hello", Version: "1.0-1", Time: end, Status: "attempted", Expires: end + 86400}
			for i := 0; i < 2; i++ {
				if err := c.PutLog(ctx, l, bytes.NewReader(gz.Bytes())); err != nil {
					t.Fatalf("delivery %d: %v", i+1, err)
				}
			}
			if err := c.PutLog(ctx, l, strings.NewReader("plain text")); err == nil || !strings.Contains(err.Error(), tc.notGzip) {
				t.Errorf("plain text delivered: %v, want %q", err, tc.notGzip)
			}
			db, err := store.Open(spec, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			logs, err := db.Logs("hello")
			if err != nil || len(logs) != 1 {
				t.Fatalf("logs: %+v, %v", logs, err)
			}
			got := logs[0]
			want := queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "hello", Version: "1.0-1", Time: end, Builder: "buildd_a",
				Status: "attempted", Size: int64(len(text)), Stored: int64(gz.Len()), Expires: end + 86400}
			if got != want {
				t.Errorf("stored %+v\nwant %+v", got, want)
			}
			var out bytes.Buffer
			if err := db.CopyLog(&got, &out); err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			if back, _ := io.ReadAll(zr); string(back) != text {
				t.Errorf("the stored log differs: %d bytes, want %d", len(back), len(text))
			}
		})
	}
}

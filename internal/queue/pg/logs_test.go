package pg_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
)

// TestBuilderLogs: a builder role stores its own logs, not another
// builder's; its puts remove the expired logs of every builder and keep
// the others.
func TestBuilderLogs(t *testing.T) {
	db := pgtest.New(t)
	admin := open(t, db.URL(pgtest.Admin))
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("log\n"))
	zw.Close()
	gz := b.Bytes()
	now := time.Now().Unix()
	mk := func(builder, version string) *queue.BuildLog {
		return &queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "hello", Version: version, Time: now,
			Builder: builder, Status: "successful", Size: 4, Expires: now + 86400}
	}
	for _, v := range []string{"1", "2"} {
		if err := admin.PutLog(mk("buildd_b", v), gz); err != nil {
			t.Fatalf("admin puts a log of buildd_b: %v", err)
		}
	}
	if _, err := admin.Conn().Exec(context.Background(), "UPDATE wb_logs SET expires = 1 WHERE version = '1'"); err != nil {
		t.Fatal(err)
	}
	a := open(t, db.URL("buildd_a"))
	if err := a.PutLog(mk("buildd_a", "3"), gz); !errors.Is(err, pg.ErrRefused) {
		t.Errorf("a builder puts a log of a package it never took: %v, want ErrRefused", err)
	}
	admin.Update("sid", "amd64", func(tx queue.Tx) error {
		return tx.Put(&queue.Record{Package: "hello", Version: "3", State: queue.NeedsBuild})
	})
	db.Grant(t, "buildd_a", sidAmd64)
	s := &queue.Session{Dist: "sid", Arch: "amd64", User: "buildd_a", RealUser: "root", Now: time.Now(), Out: io.Discard}
	if err := a.Update("sid", "amd64", func(tx queue.Tx) error { return s.Apply(tx, queue.Take, "hello_3", 0) }); err != nil {
		t.Fatal(err)
	}
	if err := a.PutLog(mk("buildd_b", "3"), gz); !errors.Is(err, pg.ErrRefused) {
		t.Errorf("a builder puts another's log: %v, want ErrRefused", err)
	}
	if err := a.PutLog(mk("buildd_a", "3"), gz); err != nil {
		t.Fatalf("a builder puts its own log: %v", err)
	}
	list, err := a.Logs("hello")
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, l := range list {
		got += " " + l.Builder + ":" + l.Version
	}
	if got != " buildd_b:2 buildd_a:3" {
		t.Errorf("logs after the builder's put:%s; want the expired one of buildd_b gone, the rest kept", got)
	}
	var err64 error
	for i := 1; i < 64 && err64 == nil; i++ {
		l := mk("buildd_a", "3")
		l.Time += int64(i)
		err64 = a.PutLog(l, gz)
	}
	if err64 != nil {
		t.Fatalf("64 logs of one package: %v", err64)
	}
	l := mk("buildd_a", "3")
	l.Time += 64
	if err := a.PutLog(l, gz); !errors.Is(err, pg.ErrRefused) {
		t.Errorf("a 65th log of one package: %v, want ErrRefused", err)
	}
}

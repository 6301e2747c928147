package store_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
	"buildd/internal/queue/store/storetest"
)

// gzipOf is text's gzip form.
func gzipOf(t testing.TB, text string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := queue.CompressLog(&b, strings.NewReader(text), int64(len(text))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gunzip(t testing.TB, gz []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestLogs: PutLog, Logs and CopyLog on the store $BUILDD_TEST_STORE
// names: logs of every status across dists, arches and versions, listed
// newest first; a second put of a key keeps the first; bad keys are
// refused; an expired log is removed by the next put; a read-only store
// refuses to put.
func TestLogs(t *testing.T) {
	spec := storetest.New(t)
	db, err := store.Open(spec, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().Unix()
	later := now + 86400
	logs := []struct {
		log  queue.BuildLog
		text string
	}{
		{queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "hello", Version: "1.0-1", Time: now - 300, Builder: "buildd_a", Status: "given-back", Expires: later}, "first try\x00\x1b[31m <b>"},
		{queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "hello", Version: "1.0-1", Time: now - 100, Builder: "buildd_a", Status: "attempted", Expires: later}, "second try\n"},
		{queue.BuildLog{Dist: "sid", Arch: "arm64", Package: "hello", Version: "1.0-1+b1", Time: now - 200, Builder: "buildd_b", Status: "successful", Expires: later}, strings.Repeat("big log line\n", 300000)},
		{queue.BuildLog{Dist: "bookworm", Arch: "amd64", Package: "hello", Version: "1:0.9-1", Time: now - 50, Builder: "buildd_a", Status: "successful", Expires: later}, "old dist\n"},
		{queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "hello-doc", Version: "1.0-1", Time: now, Builder: "buildd_a", Status: "successful", Expires: later}, "another package\n"},
		{queue.BuildLog{Dist: "sid", Arch: "amd64", Package: "old", Version: "1", Time: now - 99*86400, Builder: "buildd_a", Status: "successful", Expires: now - 10}, "expired\n"},
	}
	for _, l := range logs {
		l.log.Size = int64(len(l.text))
		if err := db.PutLog(&l.log, gzipOf(t, l.text)); err != nil {
			t.Fatalf("put %+v: %v", l.log, err)
		}
	}
	again := logs[0].log
	again.Status = "successful"
	if err := db.PutLog(&again, gzipOf(t, "replaced")); err != nil {
		t.Fatalf("put the same key again: %v", err)
	}
	list, err := db.Logs("hello")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range list {
		got = append(got, l.Dist+"/"+l.Arch+" "+l.PkgVersion()+" "+string(l.Status))
		if l.Stored <= 0 || l.Size <= 0 || l.Expires != later {
			t.Errorf("%s: stored %d, size %d, expires %d", l.PkgVersion(), l.Stored, l.Size, l.Expires)
		}
	}
	want := "bookworm/amd64 hello_1:0.9-1 successful|sid/amd64 hello_1.0-1 attempted|sid/arm64 hello_1.0-1+b1 successful|sid/amd64 hello_1.0-1 given-back"
	if strings.Join(got, "|") != want {
		t.Errorf("Logs(hello) =\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
	for _, l := range logs[:5] {
		var b bytes.Buffer
		if err := db.CopyLog(&l.log, &b); err != nil {
			t.Fatalf("copy %s: %v", l.log.PkgVersion(), err)
		}
		if text := gunzip(t, b.Bytes()); text != l.text {
			t.Errorf("copy %s: %d bytes %.40q, want %d bytes %.40q", l.log.PkgVersion(), len(text), text, len(l.text), l.text)
		}
	}
	if list, err := db.Logs("old"); err != nil || len(list) != 0 {
		t.Errorf("the expired log is still listed: %v, %v", list, err)
	}
	gone := logs[5].log
	if err := db.CopyLog(&gone, &bytes.Buffer{}); !errors.Is(err, queue.ErrNoLog) {
		t.Errorf("copy of an expired log: %v, want ErrNoLog", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*queue.BuildLog)
	}{
		{"dist with a slash", func(l *queue.BuildLog) { l.Dist = "../sid" }},
		{"bad arch", func(l *queue.BuildLog) { l.Arch = "AMD64" }},
		{"bad package", func(l *queue.BuildLog) { l.Package = "Hello" }},
		{"bad version", func(l *queue.BuildLog) { l.Version = "1.0 1" }},
		{"NUL in the builder", func(l *queue.BuildLog) { l.Builder = "b\x00" }},
		{"bad status", func(l *queue.BuildLog) { l.Status = "<script>" }},
		{"no time", func(l *queue.BuildLog) { l.Time = 0 }},
	} {
		l := logs[1].log
		tc.edit(&l)
		if err := db.PutLog(&l, gzipOf(t, "x")); err == nil || !strings.Contains(err.Error(), "log ") {
			t.Errorf("%s: put = %v, want an error naming the log", tc.name, err)
		}
	}
	db.Close()
	ro, err := store.Open(spec, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	l := logs[1].log
	l.Time++
	if err := ro.PutLog(&l, gzipOf(t, "x")); !errors.Is(err, queue.ErrReadOnly) {
		t.Errorf("put into a read-only store: %v, want ErrReadOnly", err)
	}
	if list, err := ro.Logs("hello"); err != nil || len(list) != 4 {
		t.Errorf("read-only Logs: %d logs, %v", len(list), err)
	}
}

// TestReadLog: the receiver's checks of a delivered log name the input.
func TestReadLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		size int64
		err  string
	}{
		{"gzip", gzipOf(t, "hello\n"), 6, ""},
		{"empty log", gzipOf(t, ""), 0, ""},
		{"not gzip", []byte("plain text"), 0, "stdin: not a gzip stream"},
		{"cut short", gzipOf(t, strings.Repeat("abc", 1000))[:20], 0, "stdin: not a whole gzip stream"},
		{"too large", make([]byte, queue.MaxLogGzip+1), 0, "stdin: log too large: more than 104857600 bytes compressed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gz, size, err := queue.ReadLog(bytes.NewReader(tc.in), "stdin")
			switch {
			case tc.err == "" && (err != nil || size != tc.size || !bytes.Equal(gz, tc.in)):
				t.Errorf("ReadLog = %d bytes, size %d, %v; want size %d", len(gz), size, err, tc.size)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("ReadLog: %v, want %q", err, tc.err)
			}
		})
	}
}

package control

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buildd/internal/debiandata"
)

// compressed writes testdata/Sources.good compressed by the program (xz or
// gzip) into dir and returns its path.
func compressed(t *testing.T, dir, program, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, program, "-c", "testdata/Sources.good").Output()
	if err != nil {
		t.Fatalf("%s: %v", program, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	want, err := os.ReadFile("testdata/Sources.good")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"testdata/Sources.good",
		compressed(t, dir, "xz", "Sources.xz"),
		compressed(t, dir, "gzip", "Sources.gz"),
		compressed(t, dir, "xz", "Sources-xz-without-suffix"),
		compressed(t, dir, "gzip", "Sources-gz-without-suffix"),
	} {
		rc, err := Open(path)
		if err != nil {
			t.Errorf("Open(%s): %v", path, err)
			continue
		}
		got, err := io.ReadAll(rc)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: read %d bytes, %v", path, len(got), err)
		}
		if err := rc.Close(); err != nil {
			t.Errorf("%s: Close: %v", path, err)
		}
	}
}

func TestOpenBroken(t *testing.T) {
	dir := t.TempDir()
	truncate := func(path string) string {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data[:len(data)*2/3], 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct{ path, want string }{
		{truncate(compressed(t, dir, "xz", "Sources.xz")), "Sources.xz: xz -dc: exit status 1: xz: " + dir + "/Sources.xz: Unexpected end of input"},
		{truncate(compressed(t, dir, "gzip", "Sources.gz")), "Sources.gz: gzip: unexpected EOF"},
		{filepath.Join(dir, "missing.xz"), "missing.xz: no such file or directory"},
		{filepath.Join(dir, "missing"), "missing: no such file or directory"},
	}
	for _, tt := range tests {
		rc, err := Open(tt.path)
		if err == nil {
			_, err = readAll(NewReader(rc, tt.path))
			rc.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: error %v, want one naming the file and saying %q", tt.path, err, tt.want)
		}
	}
}

// TestOpenCloseEarly closes an xz stream before its end: xz must be stopped
// and waited for.
func TestOpenCloseEarly(t *testing.T) {
	path := debiandata.Path(t, "debian-bookworm-main/Sources.xz")
	rc, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewReader(rc, path).Next()
	if err != nil || p.Get("Package") == "" {
		t.Fatalf("first paragraph: %v", err)
	}
	x := rc.(*xzFile)
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if x.cmd.ProcessState == nil {
		t.Error("xz was not waited for")
	}
	if _, err := rc.Read(make([]byte, 10)); err == nil || err == io.EOF {
		t.Errorf("Read after Close: %v", err)
	}
}

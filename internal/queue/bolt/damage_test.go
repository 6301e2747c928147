package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"buildd/internal/queue"
)

// wbRun runs the wanna-build binary bin on db for sid/amd64.
func wbRun(t *testing.T, bin, db string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--db", db, "--dist=sid", "--arch=amd64", "-U", "buildd_a"}, args...)...)
	cmd.Env = append(os.Environ(), "BUILDD_CONF=", "WANNA_BUILD_NOW=1700000000")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("wanna-build %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// metaOf reads the page size, high-water mark and root page of the valid
// meta page 0 of a bbolt file.
func metaOf(t *testing.T, data []byte) (pageSize, pgid, root int) {
	t.Helper()
	m := data[pageHeaderSize:]
	e := binary.NativeEndian
	if e.Uint32(m) != boltMagic {
		t.Fatal("meta page 0 is not a bbolt meta page")
	}
	return int(e.Uint32(m[8:])), int(e.Uint64(m[40:])), int(e.Uint64(m[16:]))
}

// TestDamagedFileIsAnError: copies of a real queue, truncated or with a
// page overwritten, make the real wanna-build binary fail with an error
// naming the file (exit 2), never crash with a SIGBUS or a panic, and a
// copy refused when opened is not written. Copies whose used pages are all
// intact work as the original.
func TestDamagedFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "wanna-build")
	if out, err := exec.Command("go", "build", "-o", bin, "buildd/wannabuild/wanna-build").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	good := filepath.Join(dir, "wanna-build.db")
	if _, stderr, code := wbRun(t, bin, good, "--import", "testdata/queue.export"); code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	ps, pgid, root := metaOf(t, data)
	used := data[:pgid*ps]
	commands := [][]string{{"--info", "hello"}, {"--list=all"}, {"--take", "hello-traditional_2.10-1"}}
	want := map[string]string{}
	for _, args := range commands[:2] {
		want[args[0]], _, _ = wbRun(t, bin, good, args...)
		if !strings.Contains(want[args[0]], "hello") {
			t.Fatalf("%v on the good queue: %q", args, want[args[0]])
		}
	}

	// The top bucket's root page pointed past the end of the file (but
	// inside bbolt's map): passes the open check, faults when read.
	pastEnd := bytes.Clone(data)
	rootPage := pastEnd[root*ps : (root+1)*ps]
	at := bytes.Index(rootPage, []byte("sid/amd64"))
	if at < 0 {
		t.Fatal("no sid/amd64 bucket in the root page")
	}
	binary.NativeEndian.PutUint64(rootPage[at+len("sid/amd64"):], uint64(len(data)/ps+1))

	zeroed := func(pages ...int) []byte {
		b := bytes.Clone(data)
		for _, p := range pages {
			clear(b[p*ps : (p+1)*ps])
		}
		return b
	}
	type tc struct {
		name     string
		data     []byte
		damaged  string // "": works as the good queue; "?": either
		atOpen   bool   // refused before bbolt maps it: the file stays as it was
		commands [][]string
	}
	cases := []tc{
		{"empty", nil, "empty file (0 bytes)", true, commands},
		{"1 byte", data[:1], "no valid meta page", true, commands},
		{"one page", data[:ps], "(truncated)", true, commands},
		{"8192 bytes", data[:8192], "(truncated)", true, commands},
		{"12000 bytes", data[:12000], "not a whole number of", true, commands},
		{"last used page missing", used[:len(used)-ps], "(truncated)", true, commands},
		{"half a used page", used[:len(used)-ps/2], "not a whole number of", true, commands},
		{"both meta pages zeroed", zeroed(0, 1), "no valid meta page", true, commands},
		{"bucket past the end of the file", pastEnd, "memory fault at", false, commands},
		{"only the used pages", used, "", false, commands[:2]},
		{"half", data[:len(data)/2/ps*ps], "", false, commands[:2]},
	}
	for p := 2; p < pgid; p++ {
		cases = append(cases, tc{fmt.Sprintf("page %d zeroed", p), zeroed(p), "?", false, commands})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "wanna-build.db")
			if err := os.WriteFile(db, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range c.commands {
				stdout, stderr, code := wbRun(t, bin, db, args...)
				for _, crash := range []string{"fatal error", "SIGBUS", "SIGSEGV", "panic", "goroutine"} {
					if strings.Contains(stderr, crash) {
						t.Fatalf("%v: crashed: %s", args, stderr)
					}
				}
				damaged := code != 0
				if c.damaged == "" && (damaged || stdout != want[args[0]]) {
					t.Errorf("%v: exit %d, stderr %q, stdout\n%s\nwant the good queue's\n%s", args, code, stderr, stdout, want[args[0]])
				}
				if c.damaged != "" && c.damaged != "?" && !damaged {
					t.Errorf("%v: exit 0 on a damaged file, stdout %q", args, stdout)
				}
				if damaged && (code != 2 || !strings.Contains(stderr, db+": damaged database: ") ||
					c.damaged != "?" && !strings.Contains(stderr, c.damaged)) {
					t.Errorf("%v: exit %d, stderr %q: want exit 2, %q and %q", args, code, stderr, db+": damaged database: ", c.damaged)
				}
			}
			if now, _ := os.ReadFile(db); c.atOpen && !bytes.Equal(now, c.data) {
				t.Errorf("the refused file was written: %d bytes, was %d", len(now), len(c.data))
			}
		})
	}
}

// TestFaultInTransaction: a file cut short by another program while it is
// open makes the next transaction fail with ErrDamaged naming the file
// (bbolt reads it through a map, and the cut-off pages are a SIGBUS), for
// a reader and a writer alike.
func TestFaultInTransaction(t *testing.T) {
	for _, readOnly := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "wanna-build.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update("sid", "amd64", func(tx queue.Tx) error {
			for i := range 200 {
				if err := tx.Put(&queue.Record{Package: fmt.Sprintf("pkg%03d", i), Version: "1", State: queue.NeedsBuild}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		if db, err = Open(path, Options{ReadOnly: readOnly}); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, 8192); err != nil {
			t.Fatal(err)
		}
		run := db.View
		if !readOnly {
			run = db.Update
		}
		err = run("sid", "amd64", func(tx queue.Tx) error {
			return tx.ForEach(func(*queue.Record) error { return nil })
		})
		if !errors.Is(err, ErrDamaged) || !strings.HasPrefix(err.Error(), path+": damaged database: memory fault at ") {
			t.Errorf("read-only %v: %v, want %s: damaged database: memory fault at ...", readOnly, err, path)
		}
		if err := db.Close(); err != nil {
			t.Errorf("read-only %v: close after the fault: %v", readOnly, err)
		}
	}
}

// TestCreate: a writer makes a new queue only where no file exists (by a
// rename, leaving no PATH.new); an empty file is refused, by readers and
// writers, and stays empty.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	db, err := Open(fresh, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(fresh + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file left: %v", err)
	}
	if db, err = Open(fresh, Options{ReadOnly: true}); err != nil {
		t.Errorf("the new queue does not open: %v", err)
	} else {
		db.Close()
	}

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{true, false} {
		_, err := Open(empty, Options{ReadOnly: readOnly})
		var oe *OpenError
		if !errors.As(err, &oe) || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), empty) {
			t.Errorf("read-only %v: %v, want an OpenError naming %s with ErrDamaged", readOnly, err, empty)
		}
	}
	if st, _ := os.Stat(empty); st.Size() != 0 {
		t.Errorf("the empty file was initialised: %d bytes", st.Size())
	}
}

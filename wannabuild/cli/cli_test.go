package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"buildd/internal/mailer/smtptest"
	"buildd/internal/queue/bolt"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/store/storetest"
)

// wb runs wanna-build in-process on db for sid/amd64.
func wb(t *testing.T, db, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(append([]string{"--db", db, "--dist=sid", "--arch=amd64"}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestMalformedStanzaChangesNothing(t *testing.T) {
	t.Setenv(EnvNow, now)
	db := storetest.New(t)
	wb(t, db, "", "--import", "testdata/merge/before.export")
	before, _, _ := wb(t, db, "", "--list=all")
	_, stderr, code := wb(t, db, "", "--merge-v3", "testdata/merge/Packages", ".", "testdata/merge/Sources-bad")
	if code != 1 || !strings.Contains(stderr, "testdata/merge/Sources-bad:73:") {
		t.Fatalf("exit %d, stderr %q: want 1 and the file:line of the bad line", code, stderr)
	}
	after, _, _ := wb(t, db, "", "--list=all")
	if before != after {
		t.Errorf("the failed merge changed the queue:\n%s\n---\n%s", before, after)
	}
}

func TestDatabaseCannotBeOpened(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte("not a bbolt file "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(corrupt)

	locked := filepath.Join(dir, "locked.db")
	holder, err := bolt.Open(locked, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	boltLocked := filepath.Join(dir, "boltlocked.db")
	raw, err := bbolt.Open(boltLocked, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	for _, tc := range []struct {
		name, db string
		args     []string
		want     string
	}{
		{"corrupt-write", corrupt, []string{"--take", "foo_1.0"}, "cannot open database"},
		{"corrupt-read", corrupt, []string{"--list=needs-build"}, "cannot open database"},
		{"missing-dir", filepath.Join(dir, "nodir", "wb.db"), []string{"--take", "foo_1.0"}, "no such file or directory"},
		{"missing-dir-read", filepath.Join(dir, "nodir", "wb.db"), []string{"--info", "foo"}, "no such file or directory"},
		{"locked", locked, []string{"--lock-timeout=300ms", "--take", "foo_1.0"}, "database locked"},
		{"locked-read", locked, []string{"--lock-timeout=300ms", "--list=all"}, "database locked"},
		{"bbolt-locked", boltLocked, []string{"--lock-timeout=300ms", "--take", "foo_1.0"}, "database locked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			stdout, stderr, code := wb(t, tc.db, "", tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q: want exit 2 and %q", code, stdout, stderr, tc.want)
			}
			if strings.Contains(tc.name, "locked") && time.Since(start) < 250*time.Millisecond {
				t.Errorf("gave up after %s, before the timeout", time.Since(start))
			}
		})
	}
	if now, _ := os.ReadFile(corrupt); !bytes.Equal(now, orig) {
		t.Error("the corrupt database was written")
	}
	if _, err := os.Stat(filepath.Join(dir, "nodir")); err == nil {
		t.Error("the missing directory was created")
	}
}

func TestUsageErrors(t *testing.T) {
	db := storetest.New(t)
	for _, args := range [][]string{
		{"--list=nonsense"}, {"--bogus-option"}, {"--built"}, {"--take", "--built", "x_1"},
		{"--binNMU=x", "foo_1"}, {"--merge-v3", "onlyone"},
	} {
		if _, _, code := wb(t, db, "", args...); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
	var out, errb bytes.Buffer
	t.Setenv("BUILDD_CONF", filepath.Join(t.TempDir(), "none.conf"))
	if code := Main([]string{"--list=all"}, strings.NewReader(""), &out, &errb); code != 1 {
		t.Errorf("no config, no --db: exit %d, want 1 (%s)", code, errb.String())
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	roundTrip(t, storetest.New(t), storetest.New(t))
}

// TestExportImportAcrossStores moves a queue from a bbolt file to
// PostgreSQL and back, exactly.
func TestExportImportAcrossStores(t *testing.T) {
	boltDB := filepath.Join(t.TempDir(), "wb.db")
	pgDB := pgtest.New(t).URL(pgtest.Admin)
	t.Run("bolt-to-postgres", func(t *testing.T) { roundTrip(t, boltDB, pgDB) })
	t.Run("postgres-to-bolt", func(t *testing.T) { roundTrip(t, pgDB, filepath.Join(t.TempDir(), "back.db")) })
}

// roundTrip fills db1, exports it, imports it into db2 and checks that
// export → import → export is exact.
func roundTrip(t *testing.T, db1, db2 string) {
	t.Setenv(EnvNow, now)
	dir := t.TempDir()
	wb(t, db1, "", "--import", "testdata/queue.export")
	// Values with empty lines, leading dots and trailing newlines.
	wb(t, db1, "", "-U", "buildd_a", "--failed", "bld_1.0-1", "-m", "line one\n\n.dotted\n..two dots\nend\n")
	wb(t, db1, "", "-U", "buildd_a", "--give-back", "-o", "bld_1.0-1")
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	for _, step := range [][]string{
		{db1, "--export", a}, {db2, "--import", a}, {db2, "--export", b}, {db2, "--import", b}, {db2, "--export", c},
	} {
		if _, stderr, code := wb(t, step[0], "", step[1:]...); code != 0 {
			t.Fatalf("%v: exit %d: %s", step, code, stderr)
		}
	}
	ea, _ := os.ReadFile(a)
	eb, _ := os.ReadFile(b)
	ec, _ := os.ReadFile(c)
	if !bytes.Equal(ea, eb) || !bytes.Equal(eb, ec) {
		t.Fatalf("export → import → export differs:\n%s\n---\n%s", ea, eb)
	}
	i1, _, _ := wb(t, db1, "", "--info", "bld", "fail", "nmu")
	i2, _, _ := wb(t, db2, "", "--info", "bld", "fail", "nmu")
	if i1 != i2 || !strings.Contains(i1, ".dotted") {
		t.Errorf("--info differs after the round trip:\n%s\n---\n%s", i1, i2)
	}
}

func TestMergeMailsBuilderOfNewVersion(t *testing.T) {
	t.Setenv(EnvNow, now)
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "buildd.conf")
	os.WriteFile(conf, []byte(`home = "`+dir+`"
smtp = "`+srv.Addr+`"
mail_from = "wanna-build@example.org"

[[dist]]
dist_name = "sid"
built_architecture = "amd64"
`), 0o644)
	db := storetest.New(t)
	wb(t, db, "", "--import", "testdata/merge/before.export")
	_, stderr, code := wb(t, db, "", "--config", conf, "--merge-v3", "testdata/merge/Packages", ".", "testdata/merge/Sources")
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	mails := srv.Wait(1, 10*time.Second)
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	m := string(mails[0].Data)
	host, _ := os.Hostname()
	for _, want := range []string{"Subject: new version of bldnew_1.0-1 (dist=sid)", "in version 1.0-1.", "new source version 1.1-1."} {
		if !strings.Contains(m, want) {
			t.Errorf("mail lacks %q:\n%s", want, m)
		}
	}
	if len(mails[0].To) != 1 || mails[0].To[0] != "buildd_x@"+host {
		t.Errorf("mail to %v, want buildd_x@%s", mails[0].To, host)
	}
}

func TestMergeChecksInstallability(t *testing.T) {
	t.Setenv(EnvNow, now)
	dir := t.TempDir()
	conf := filepath.Join(dir, "buildd.conf")
	os.WriteFile(conf, []byte(`home = "`+dir+`"
check_installability = true

[[dist]]
dist_name = "sid"
built_architecture = "amd64"
`), 0o644)
	db := storetest.New(t)
	if _, stderr, code := wb(t, db, "", "--config", conf, "--merge-v3", "testdata/dose/Packages", ".", "testdata/dose/Sources"); code != 0 {
		t.Fatalf("merge: %d %s", code, stderr)
	}
	out, _, _ := wb(t, db, "", "--config", conf, "--list=all")
	for _, want := range []string{
		"misc/good_1.0-1: Needs-Build",
		"misc/bad_1.0-1: BD-Uninstallable",
		"  Reasons for BD-Uninstallable:\n    unsat-dependency libnothere-dev:amd64\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--list=all lacks %q:\n%s", want, out)
		}
	}
	// A given-back package waits in BD-Uninstallable for the next check.
	wb(t, db, "", "--config", conf, "-U", "b", "--take", "good_1.0-1")
	wb(t, db, "", "--config", conf, "-U", "b", "--give-back", "good_1.0-1")
	if out, _, _ := wb(t, db, "", "--config", conf, "--list=bd-uninstallable"); !strings.Contains(out, "good_1.0-1") {
		t.Errorf("given back without the check: %s", out)
	}
	wb(t, db, "", "--config", conf, "--merge-v3", "testdata/dose/Packages", ".", "testdata/dose/Sources")
	if out, _, _ := wb(t, db, "", "--config", conf, "--list=needs-build"); !strings.Contains(out, "good_1.0-1") {
		t.Errorf("the next merge did not move it back to Needs-Build: %s", out)
	}
}

func TestDumpConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "buildd.conf")
	os.WriteFile(conf, []byte("home = \"/srv/b\"\n[[dist]]\ndist_name = \"sid\"\nbuilt_architecture = \"arm64\"\n"), 0o644)
	var out, errb bytes.Buffer
	if code := Main([]string{"--config", conf, "--dump-config"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("--dump-config exit %d: %s", code, errb.String())
	}
	for _, want := range []string{`wanna_build_db = "/srv/b/wanna-build.db"`, `machine = "sid-arm64"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--dump-config lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := Main([]string{"--config", conf + ".missing", "--dump-config"}, strings.NewReader(""), &out, &errb); code != 1 {
		t.Errorf("--dump-config of a missing file: exit %d, want 1", code)
	}
}

// TestMergeOverwrittenBinaries: a source one of whose binaries a newer
// source now builds (gcc-11's libhwasan0, built by gcc-12 in bookworm) is
// not registered in a fresh queue ("skipped because binaries (assumed to
// be) overwritten"), as the classic merge does; a queue that already has it
// keeps it and updates it. The classic wanna-build, run on bookworm,
// differed from ours only because its queue had gcc-11 from before.
// TestMergeOverwrittenBinaries: a new source one of whose binaries a newer
// source now builds is skipped as probably outdated (oldfoo, whose libfoo1
// newfoo builds), as the classic merge does; one whose own binaries at its
// version are in Packages is registered Installed all the same (gcc-11,
// whose libhwasan0 gcc-12 builds: the classic merge skips it when that
// binary is on the first line of its Binary field); a queue that has the
// source keeps it.
func TestMergeOverwrittenBinaries(t *testing.T) {
	t.Setenv(EnvNow, now)
	merge := func(db string) (string, string) {
		t.Helper()
		log, stderr, code := wb(t, db, "", "-v", "--merge-v3", "testdata/overwritten/Packages", ".", "testdata/overwritten/Sources")
		if code != 0 {
			t.Fatalf("merge: exit %d: %s", code, stderr)
		}
		out, _, _ := wb(t, db, "", "--list=all")
		return out, log + stderr
	}
	out, log := merge(storetest.New(t))
	for _, want := range []string{"devel/gcc-11_11.3.0-12: Installed", "devel/gcc-12_12.2.0-14+deb12u1: Installed", "libs/newfoo_2.0-1: Installed"} {
		if !strings.Contains(out, want) {
			t.Errorf("fresh queue: no %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "oldfoo") || !strings.Contains(log, "oldfoo_1.0-1 (amd64, sid): skipped because binaries (assumed to be) overwritten (libfoo1, 1.0-1 vs. 2.0-1)") {
		t.Errorf("fresh queue: oldfoo registered or not logged as skipped:\n%s\n%s", out, log)
	}
	db := storetest.New(t)
	if _, stderr, code := wb(t, db, "", "-U", "buildd_a", "--take", "oldfoo_1.0-1"); code != 0 {
		t.Fatalf("take: %s", stderr)
	}
	if out, _ := merge(db); !strings.Contains(out, "oldfoo_1.0-1: Building by buildd_a") {
		t.Errorf("queue with oldfoo already: not kept:\n%s", out)
	}
}

// TestLeases: a take with --lease holds the package until the lease ends;
// --renew extends it (only for its builder); --expire-leases gives back
// what ended, with a history entry, and leaves live leases and packages
// taken without a lease alone.
func TestLeases(t *testing.T) {
	db := storetest.New(t)
	at := func(sec int64) { t.Setenv(EnvNow, fmt.Sprint(1700000000+sec)) }
	at(0)
	wb(t, db, "", "--import", "testdata/queue.export")
	run := func(want int, args ...string) string {
		t.Helper()
		out, stderr, code := wb(t, db, "", args...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d: %s%s", args, code, want, out, stderr)
		}
		return out + stderr
	}
	run(0, "-U", "buildd_a", "--take", "nb_1.0-1", "--lease=60")
	run(0, "-U", "buildd_b", "--take", "nb2_2.0-1")
	at(50)
	if out := run(0, "-U", "buildd_b", "--renew", "--lease=60", "nb_1.0-1"); !strings.Contains(out, "nb: not building it (state is Building, builder buildd_a)") {
		t.Errorf("another builder renewed: %q", out)
	}
	if out := run(0, "-U", "buildd_a", "--renew", "--lease=60", "nb_1.0-1"); out != "" {
		t.Errorf("renew: %q", out)
	}
	at(100) // the take's lease ended at 60, the renewal's runs to 110
	if out := run(0, "--expire-leases"); out != "" {
		t.Errorf("expired a renewed lease: %q", out)
	}
	at(111)
	out := run(0, "-U", "buildd_c", "--expire-leases")
	if want := "nb_1.0-1: lease of buildd_a ended 2023 Nov 14 22:15:10, given back\n"; out != want {
		t.Errorf("expire: %q, want %q", out, want)
	}
	info := run(0, "--info", "nb", "nb2")
	if !strings.Contains(info, "State               : Needs-Build") || !strings.Contains(info, "Builder             : buildd_b") {
		t.Errorf("after expiry:\n%s", info)
	}
	if h := run(0, "--history", "nb"); !strings.Contains(h, "--expire-leases: lease of buildd_a ended(sid): nb_1.0-1 changed from Building to Needs-Build") {
		t.Errorf("history:\n%s", h)
	}
	if out := run(0, "--expire-leases"); out != "" {
		t.Errorf("expired twice: %q", out)
	}
}

// TestMessageWithNUL: a failure text holding a NUL byte (which PostgreSQL
// cannot store) is refused on both stores, and nothing changes.
func TestMessageWithNUL(t *testing.T) {
	t.Setenv(EnvNow, now)
	db := storetest.New(t)
	wb(t, db, "", "--import", "testdata/queue.export")
	out, stderr, code := wb(t, db, "", "-U", "buildd_a", "--failed", "bld_1.0-1", "-m", "bad\x00text")
	if code != 0 || !strings.Contains(out+stderr, "bld: the message holds a NUL byte; nothing changed") {
		t.Errorf("exit %d: %q %q", code, out, stderr)
	}
	if info, _, _ := wb(t, db, "", "--info", "bld"); !strings.Contains(info, "State               : Building") {
		t.Errorf("changed:\n%s", info)
	}
	if _, stderr, code := wb(t, db, "", "--renew", "bld_1.0-1"); code != exitUsage || !strings.Contains(stderr, "--renew needs --lease=SECONDS") {
		t.Errorf("--renew without --lease: exit %d, %q", code, stderr)
	}
}

package pg_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
)

var sidAmd64 = queue.Pair{Dist: "sid", Arch: "amd64"}

// builderQueue makes a queue with a package in each state a builder meets
// and one it must not touch, and gives buildd_a sid/amd64 (not arm64).
func builderQueue(t *testing.T) (*pgtest.DB, *pg.DB) {
	t.Helper()
	db := pgtest.New(t)
	admin := open(t, db.URL(pgtest.Admin))
	now := time.Now().Unix()
	if err := admin.Update("sid", "amd64", func(tx queue.Tx) error {
		for _, r := range []*queue.Record{
			{Package: "free", Version: "1", State: queue.NeedsBuild},
			{Package: "free2", Version: "1", State: queue.NeedsBuild},
			{Package: "free3", Version: "1", State: queue.NeedsBuild},
			{Package: "free4", Version: "1", State: queue.NeedsBuild},
			{Package: "inst", Version: "1", State: queue.Installed},
			{Package: "nfu", Version: "1", State: queue.NotForUs},
			{Package: "mine", Version: "1", State: queue.Building, Builder: "buildd_a", LeaseUntil: now + 600},
			{Package: "theirs", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now + 600},
			{Package: "dead", Version: "1", State: queue.Building, Builder: "buildd_b", LeaseUntil: now - 10},
			{Package: "failed", Version: "1", State: queue.Failed, Builder: "buildd_b", Failed: "theirs"},
		} {
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Update("sid", "arm64", func(tx queue.Tx) error {
		return tx.Put(&queue.Record{Package: "free", Version: "1", State: queue.NeedsBuild})
	}); err != nil {
		t.Fatal(err)
	}
	db.Grant(t, "buildd_a", sidAmd64)
	return db, admin
}

// TestBuilderList: the whole of a builder's list works through the
// queue's commands, and the database writes each change's history in the
// builder's role with ids of its own, and keeps the counts.
func TestBuilderList(t *testing.T) {
	db, admin := builderQueue(t)
	a := open(t, db.URL("buildd_a"))
	s := &queue.Session{Dist: "sid", Arch: "amd64", User: "buildd_a", RealUser: "root", Lease: 300, Now: time.Now(), Out: io.Discard}
	run := func(what string, fn func(tx queue.Tx) error) {
		t.Helper()
		if err := a.Update("sid", "amd64", fn); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	apply := func(cmd queue.Command, arg, msg string) func(tx queue.Tx) error {
		return func(tx queue.Tx) error { s.Message = msg; return s.Apply(tx, cmd, arg, 0) }
	}
	run("take", apply(queue.Take, "free_1", ""))
	run("renew", func(tx queue.Tx) error { return s.Renew(tx, "free_1") })
	run("built", apply(queue.SetBuilt, "free_1", ""))
	run("uploaded", apply(queue.SetUploaded, "free_1", ""))
	run("take free2", apply(queue.Take, "free2_1", ""))
	run("attempted", apply(queue.SetAttempted, "free2_1", ""))
	run("fail", apply(queue.SetFailed, "free2_1", "does not compile"))
	run("fail again", apply(queue.SetFailed, "free2_1", "still not"))
	run("dep-wait after failing", apply(queue.SetDepWait, "free2_1", "libfoo-dev (>= 2)"))
	run("take free3", apply(queue.Take, "free3_1", ""))
	run("dep-wait", apply(queue.SetDepWait, "free3_1", "libbar-dev"))
	run("take free4", apply(queue.Take, "free4_1", ""))
	run("give back", apply(queue.GiveBack, "free4_1", ""))
	run("give back its own", apply(queue.GiveBack, "mine_1", ""))
	run("expire a dead lease", func(tx queue.Tx) error { _, err := s.ExpireLeases(tx); return err })

	want := map[string]queue.State{"free": queue.Uploaded, "free2": queue.DepWait, "free3": queue.DepWait, "free4": queue.NeedsBuild,
		"mine": queue.NeedsBuild, "dead": queue.NeedsBuild, "theirs": queue.Building, "inst": queue.Installed}
	counted := map[queue.State]int{}
	admin.View("sid", "amd64", func(tx queue.Tx) error {
		return tx.ForEach(func(r *queue.Record) error {
			counted[r.State]++
			if w, ok := want[r.Package]; ok && r.State != w {
				t.Errorf("%s is %s, want %s", r.Package, r.State, w)
			}
			return nil
		})
	})
	counts, err := admin.CountStates("sid", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	for st, n := range counted {
		if counts[sidAmd64][st] != n {
			t.Errorf("count of %s is %d, the rows say %d", st, counts[sidAmd64][st], n)
		}
	}
	var hist []string
	admin.View("sid", "amd64", func(tx queue.Tx) error {
		return tx.History("", func(tr *queue.Transaction) error {
			if tr.User == "buildd_a" {
				hist = append(hist, fmt.Sprintf("%s %s %s>%s by %s", tr.Package, tr.Action, tr.From, tr.To, tr.RealUser))
			}
			return nil
		})
	})
	wantHist := []string{
		"free --take Needs-Build>Building by root",
		"free --built Building>Built by root",
		"free --uploaded Built>Uploaded by root",
		"free2 --take Needs-Build>Building by root",
		"free2 --attempted Building>Build-Attempted by root",
		"free2 --failed Build-Attempted>Failed by root",
		"free2 --failed Build-Attempted>Failed by root",
		"free2 --dep-wait Failed>Dep-Wait by root",
		"free3 --take Needs-Build>Building by root",
		"free3 --dep-wait Building>Dep-Wait by root",
		"free4 --take Needs-Build>Building by root",
		"free4 --give-back Building>Needs-Build by root",
		"mine --give-back Building>Needs-Build by root",
		"dead --expire-leases: lease of buildd_b ended Building>Needs-Build by root",
	}
	if strings.Join(hist, "\n") != strings.Join(wantHist, "\n") {
		t.Errorf("history of buildd_a:\n%s\nwant\n%s", strings.Join(hist, "\n"), strings.Join(wantHist, "\n"))
	}

	other := &queue.Session{Dist: "sid", Arch: "arm64", User: "buildd_a", RealUser: "root", Now: time.Now(), Out: io.Discard}
	err = a.Update("sid", "arm64", func(tx queue.Tx) error { return other.Apply(tx, queue.Take, "free_1", 0) })
	if !errors.Is(err, pg.ErrRefused) || !strings.Contains(err.Error(), "not a queue of this builder") {
		t.Errorf("take from a queue it was not given: err = %v, want ErrRefused", err)
	}
}

// TestBuilderRefused: as a builder role, every other INSERT, UPDATE and
// DELETE shape on every table, in raw SQL, is refused and changes
// nothing.
func TestBuilderRefused(t *testing.T) {
	db, admin := builderQueue(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.URL("buildd_a"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	log := &queue.BuildLog{Package: "mine", Dist: "sid", Arch: "amd64", Version: "1", Time: time.Now().Unix(), Builder: "buildd_b",
		Status: "successful", Size: 1, Expires: time.Now().Unix() + 3600}
	if err := admin.PutLog(log, []byte{0x1f, 0x8b}); err != nil {
		t.Fatal(err)
	}
	// Revisions of both builders, and a required one, to be left alone.
	if _, err := admin.ReportRevisions("buildd_a", sidAmd64, []queue.HeldRevision{{Machine: "m", Revision: "m-1", UUID: testUUID(1), Current: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ReportRevisions("buildd_b", sidAmd64, []queue.HeldRevision{{Machine: "m", Revision: "m-2", UUID: testUUID(2), Current: true}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.RequireRevision(sidAmd64, testUUID(2), pgtest.Admin); err != nil {
		t.Fatal(err)
	}
	// free2 waits after a give-back; buildd_b has a heartbeat.
	if err := admin.Update("sid", "amd64", func(tx queue.Tx) error {
		return tx.AddBuild(&queue.BuildRecord{Package: "free2", Version: "1", Builder: "buildd_b", Time: time.Now().Unix(),
			Outcome: queue.GivenBack, Class: queue.ClassInfra, RetryAfter: time.Now().Unix() + 3600})
	}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Heartbeat(queue.BuilderStatus{Builder: "buildd_b", Pair: sidAmd64, Slots: 1}); err != nil {
		t.Fatal(err)
	}
	build := func(pkg, builder, class, outcome, retry string) string {
		return "INSERT INTO wb_builds (dist, arch, package, version, builder, time, outcome, class, stage, peak_memory, cpu_ms, disk, wall, slot_memory, retry_after, held) " +
			"VALUES ('sid', 'amd64', '" + pkg + "', '1', '" + builder + "', extract(epoch FROM now()), '" + outcome + "', '" + class + "', '', 0, 0, 0, 0, 0, " + retry + ", '')"
	}
	heartbeat := func(who, dist, arch string) string {
		return "SELECT wb_heartbeat('" + who + "', '" + dist + "', '" + arch + "', 1, 0, 0, '', 0)"
	}
	report := func(who, machines, revisions, uuids, currents string) string {
		return "SELECT wb_report_revisions(" + who + ", " + machines + ", " + revisions + ", " + uuids + ", " + currents + ")"
	}
	upd := func(set, pkg string) string {
		return "UPDATE wb_records SET " + set + " WHERE dist = 'sid' AND arch = 'amd64' AND package = '" + pkg + "'"
	}
	take := "state = 'Building', builder = 'buildd_a', previous_state = state, state_change = extract(epoch FROM now())"
	for _, c := range []struct {
		what, action, sql string
	}{
		{"take an Installed package", "--take", upd(take, "inst")},
		{"take a Not-For-Us package", "--take", upd(take, "nfu")},
		{"Not-For-Us back to Needs-Build", "--give-back", upd("state = 'Needs-Build', previous_state = state", "nfu")},
		{"Installed to Needs-Build", "", upd("state = 'Needs-Build'", "inst")},
		{"take without saying so", "", upd(take, "free")},
		{"take in another builder's name", "--take", upd(strings.Replace(take, "'buildd_a'", "'buildd_b'", 1), "free")},
		{"take another builder's package", "--take", upd(take, "theirs")},
		{"take with a ten-year lease", "--take", upd(take+", lease_until = extract(epoch FROM now()) + 315360000", "free")},
		{"take from a queue not given", "--take", "UPDATE wb_records SET " + take + " WHERE dist = 'sid' AND arch = 'arm64'"},
		{"Needs-Build straight to Built", "--built", upd("state = 'Built', builder = 'buildd_a', previous_state = state", "free")},
		{"its own package to Installed", "--built", upd("state = 'Installed', previous_state = state", "mine")},
		{"its own package to Not-For-Us", "--failed", upd("state = 'Not-For-Us', previous_state = state", "mine")},
		{"its own package to Failed, said to be built", "--built", upd("state = 'Failed', previous_state = state", "mine")},
		{"its own package to Built in silence", "", upd("state = 'Built', previous_state = state", "mine")},
		{"its own package's failure text in silence", "", upd("failed = 'forged'", "mine")},
		{"another builder's package built", "--built", upd("state = 'Built', previous_state = state", "theirs")},
		{"another builder's failure", "--failed", upd("failed = 'forged'", "failed")},
		{"give back a live lease", "--expire-leases: lease of buildd_b ended", upd("state = 'Needs-Build', builder = '', previous_state = state, lease_until = 0", "theirs")},
		{"renew another builder's lease", "", upd("lease_until = lease_until + 600", "theirs")},
		{"renew its own for ten years", "", upd("lease_until = extract(epoch FROM now()) + 315360000", "mine")},
		{"hand its package to another builder", "", upd("builder = 'buildd_b'", "mine")},
		{"set a rev", "", upd("rev = rev + 100", "mine")},
		{"set a state_change", "", upd("state_change = 0", "mine")},
		{"move a package to another dist", "", upd("dist = 'evil'", "mine")},
		{"move a package to another arch", "", upd("arch = 'evil'", "mine")},
		{"rename a package", "", upd("package = 'evil'", "mine")},
		{"change a version", "", upd("version = '99'", "mine")},
		{"change a build priority", "", upd("buildpri = 100", "free")},
		{"change a permanent build priority", "", upd("permbuildpri = 100", "free")},
		{"change notes", "", upd("notes = 'x'", "free")},
		{"change a section", "", upd("section = 'x'", "free")},
		{"change a priority", "", upd("priority = 'x'", "free")},
		{"change an installed version", "", upd("installed_version = '9'", "inst")},
		{"schedule a binNMU", "", upd("binary_nmu_version = 1", "inst")},
		{"add extra depends", "", upd("extra_depends = 'x'", "free")},
		{"change the build time", "", upd("build_time = 1", "free")},
		{"change every row", "--take", "UPDATE wb_records SET " + take},
		{"add a package", "", "INSERT INTO wb_records (dist, arch, package, version, state) VALUES ('sid', 'amd64', 'new', '1', 'Needs-Build')"},
		{"remove a package", "", "DELETE FROM wb_records WHERE package = 'free'"},
		{"empty the queue", "", "TRUNCATE wb_records"},
		{"history in the admin's name", "", "INSERT INTO wb_history (dist, arch, package, version, action, from_state, to_state, real_user, wb_user, time) " +
			"VALUES ('sid', 'amd64', 'free', '1', '--take', 'Needs-Build', 'Building', 'root', 'wbadmin', 1)"},
		{"history with a huge id", "", "INSERT INTO wb_history (id, dist, arch, package, version, action, from_state, to_state, real_user, wb_user, time) " +
			"VALUES (9000000000000000000, 'sid', 'amd64', 'free', '1', '--take', 'Needs-Build', 'Building', 'root', 'buildd_a', 1)"},
		{"rewrite history", "", "UPDATE wb_history SET wb_user = 'buildd_a'"},
		{"remove history", "", "DELETE FROM wb_history"},
		{"take the sequence", "", "SELECT setval('wb_history_id_seq', 9000000000000000000)"},
		{"add to the counts", "", "INSERT INTO wb_state_counts VALUES ('sid', 'amd64', 'Built', 1000)"},
		{"change the counts", "", "UPDATE wb_state_counts SET n = n + 1"},
		{"remove the counts", "", "DELETE FROM wb_state_counts"},
		{"count through the function", "", "SELECT wb_count_states('sid', 'amd64', ARRAY['Built'], ARRAY[1000]::bigint[])"},
		{"give itself a queue", "", "INSERT INTO wb_builder_queues VALUES ('buildd_a', 'sid', 'arm64')"},
		{"take another builder's queue", "", "UPDATE wb_builder_queues SET role = 'buildd_b'"},
		{"remove the queues", "", "DELETE FROM wb_builder_queues"},
		{"a log in another builder's name", "", "INSERT INTO wb_logs VALUES ('free', 'sid', 'amd64', '1', 1, 'buildd_b', 'successful', 1, 9999999999, '\\x1f8b')"},
		{"change a log", "", "UPDATE wb_logs SET status = 'failed'"},
		{"remove a live log", "", "DELETE FROM wb_logs"},
		{"change the schema version", "", "UPDATE wb_schema SET version = 99"},
		{"add a column", "", "ALTER TABLE wb_records ADD COLUMN evil text"},
		{"drop the trigger", "", "DROP TRIGGER wb_builder_change ON wb_records"},
		{"disable the trigger", "", "ALTER TABLE wb_records DISABLE TRIGGER wb_builder_change"},
		{"drop a table", "", "DROP TABLE wb_logs"},
		{"replace the trigger's function", "", "CREATE OR REPLACE FUNCTION wb_builder_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"},
		{"make a table", "", "CREATE TABLE evil (x int)"},
		{"a revision in another builder's name", "", "INSERT INTO wb_revisions VALUES ('buildd_b', 'sid', 'amd64', 'm', 'm-9', '" + testUUID(9) + "', false, 1)"},
		{"its own revision past the function", "", "INSERT INTO wb_revisions VALUES ('buildd_a', 'sid', 'amd64', 'm', 'm-9', '" + testUUID(9) + "', false, 1)"},
		{"change a reported revision", "", "UPDATE wb_revisions SET current = NOT current"},
		{"remove another builder's revisions", "", "DELETE FROM wb_revisions WHERE builder = 'buildd_b'"},
		{"report in another builder's name", "", report("'buildd_b', 'sid', 'amd64'", "ARRAY['m']", "ARRAY['m-9']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report of a queue not given", "", report("'buildd_a', 'sid', 'arm64'", "ARRAY['m']", "ARRAY['m-9']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report seventeen revisions", "", report("'buildd_a', 'sid', 'amd64'", "array_fill('m'::text, ARRAY[17])",
			"ARRAY(SELECT 'm-' || i FROM generate_series(1, 17) i)",
			"ARRAY(SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-000000000000' FROM generate_series(1, 17) i)", "array_fill(false, ARRAY[17])")},
		{"report arrays of different lengths", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY['m', 'm']", "ARRAY['m-9']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report not a UUID", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY['m']", "ARRAY['m-9']", "ARRAY['x']", "ARRAY[true]")},
		{"report a machine name with a slash", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY['../m']", "ARRAY['m-9']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report a long revision name", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY['m']", "ARRAY[repeat('r', 101)]", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report a revision name with a newline", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY['m']", "ARRAY[E'm-1\\nm-2']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report a NULL machine", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY[NULL::text]", "ARRAY['m-9']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")},
		{"report two current", "", report("'buildd_a', 'sid', 'amd64'", "ARRAY['m', 'm']", "ARRAY['m-8', 'm-9']", "ARRAY['"+testUUID(8)+"', '"+testUUID(9)+"']", "ARRAY[true, true]")},
		{"require a revision", "", "INSERT INTO wb_required_revisions VALUES ('sid', 'arm64', '" + testUUID(9) + "', 'buildd_a', 1)"},
		{"change the required revision", "", "UPDATE wb_required_revisions SET uuid = '" + testUUID(9) + "'"},
		{"lift the required revision", "", "DELETE FROM wb_required_revisions"},
		{"replace the report's function", "", "CREATE OR REPLACE FUNCTION wb_report_revisions(who text, d text, a text, machines text[], revisions text[], uuids text[], currents boolean[]) " +
			"RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$"},
		{"drop the report's function", "", "DROP FUNCTION wb_report_revisions"},
		{"a build of another builder's package", "", build("theirs", "buildd_a", "infrastructure", "given-back", "0")},
		{"a build in another builder's name", "", build("mine", "buildd_b", "infrastructure", "given-back", "0")},
		{"a build of a package not taken", "", build("free", "buildd_a", "infrastructure", "given-back", "0")},
		{"its own build with a retry a year away", "", build("mine", "buildd_a", "infrastructure", "given-back", "extract(epoch FROM now()) + 31536000")},
		{"its own build of an unknown class", "", build("mine", "buildd_a", "evil", "given-back", "0")},
		{"the admin's retry", "", build("mine", "buildd_a", "retry", "", "0")},
		{"change a build", "", "UPDATE wb_builds SET retry_after = 0"},
		{"remove the builds", "", "DELETE FROM wb_builds"},
		{"take a package in backoff", "--take", upd(take, "free2")},
		{"drop the backoff's trigger", "", "DROP TRIGGER wb_retry_check ON wb_records"},
		{"a heartbeat in another builder's name", "", heartbeat("buildd_b", "sid", "amd64")},
		{"a heartbeat of a queue not given", "", heartbeat("buildd_a", "sid", "arm64")},
		{"a heartbeat past the function", "", "INSERT INTO wb_builders VALUES ('buildd_a', 'sid', 'amd64', 1, 0, 0, '', 0, 1)"},
		{"change a heartbeat", "", "UPDATE wb_builders SET quarantined = 'x'"},
		{"remove the heartbeats", "", "DELETE FROM wb_builders"},
	} {
		t.Run(c.what, func(t *testing.T) {
			before := dump(t, admin)
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, "SELECT set_config('wb.action', $1, true)", c.action); err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(ctx, c.sql)
			if err == nil {
				err = tx.Commit(ctx)
			}
			if after := dump(t, admin); after != before {
				t.Fatalf("%s changed the database (err %v):\nbefore:\n%s\nafter:\n%s", c.sql, err, before, after)
			}
		})
	}
	// The report the list allows, in the same SQL, is taken: the reports
	// above were refused by the database, not for their SQL.
	before := dump(t, admin)
	if _, err := conn.Exec(ctx, report("'buildd_a', 'sid', 'amd64'", "ARRAY['m']", "ARRAY['m-9']", "ARRAY['"+testUUID(9)+"']", "ARRAY[true]")); err != nil {
		t.Errorf("buildd_a's own report: %v", err)
	}
	if dump(t, admin) == before {
		t.Errorf("buildd_a's own report changed nothing")
	}
	for what, sql := range map[string]string{
		"its own heartbeat":       heartbeat("buildd_a", "sid", "amd64"),
		"its own package's build": build("mine", "buildd_a", "infrastructure", "given-back", "extract(epoch FROM now()) + 600"),
	} {
		before := dump(t, admin)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if dump(t, admin) == before {
			t.Errorf("%s changed nothing", what)
		}
	}
}

// dump is every table a builder could reach, as text.
func dump(t *testing.T, d *pg.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"wb_records", "wb_history", "wb_state_counts", "wb_builder_queues", "wb_logs", "wb_schema", "wb_revisions", "wb_required_revisions", "wb_builds", "wb_builders"} {
		var s string
		if err := d.Conn().QueryRow(context.Background(), "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM "+table+" t").Scan(&s); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", table, s)
	}
	var cols, evil int
	d.Conn().QueryRow(context.Background(), "SELECT count(*) FROM information_schema.columns WHERE table_name = 'wb_records'").Scan(&cols)
	d.Conn().QueryRow(context.Background(), "SELECT count(*) FROM pg_tables WHERE tablename = 'evil'").Scan(&evil)
	var trig, report string
	d.Conn().QueryRow(context.Background(), "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'wb_builder_change'").Scan(&trig)
	d.Conn().QueryRow(context.Background(), "SELECT coalesce(string_agg(md5(prosrc), ' '), '') FROM pg_proc WHERE proname = 'wb_report_revisions'").Scan(&report)
	// A refused change may still have drawn ids (sequences are not
	// transactional); what must not happen is a jump.
	var seq int64
	d.Conn().QueryRow(context.Background(), "SELECT last_value FROM wb_history_id_seq").Scan(&seq)
	fmt.Fprintf(&b, "columns %d, evil %d, trigger %q, report function %q, history ids below a million %v\n", cols, evil, trig, report, seq < 1e6)
	return b.String()
}

// TestHistoryReadOutOfOrder: the status web's incremental read of the
// history takes a row whose transaction commits after one with a higher
// id, and is not stopped by a huge id.
func TestHistoryReadOutOfOrder(t *testing.T) {
	db := pgtest.New(t)
	d := open(t, db.URL(pgtest.Admin))
	ctx := context.Background()
	insert := func(q interface {
		Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	}, id int64, pkg string) {
		t.Helper()
		if _, err := q.Exec(ctx, "INSERT INTO wb_history (id, dist, arch, package, version, action, from_state, to_state, real_user, wb_user, time) "+
			"VALUES ($1, 'sid', 'amd64', $2, '1', '--take', 'Needs-Build', 'Building', 'root', $2, $3)", id, pkg, time.Now().Unix()); err != nil {
			t.Fatal(err)
		}
	}
	slow, err := pgx.Connect(ctx, db.URL(pgtest.Admin))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close(ctx)
	stx, err := slow.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insert(stx, 10, "late")        // the lower id, committed last
	insert(d.Conn(), 9e18, "huge") // a huge id, committed at once
	insert(d.Conn(), 11, "early")  // a higher id than late's, committed first
	heard := func(ds map[queue.Pair]*queue.Digest) []string {
		var users []string
		if dg := ds[sidAmd64]; dg != nil {
			for u := range dg.Heard {
				users = append(users, u)
			}
		}
		slices.Sort(users)
		return users
	}
	ds := map[queue.Pair]*queue.Digest{}
	pos, final, err := d.DigestsAfter(ds, "")
	if err != nil || !final {
		t.Fatalf("first read: %v, final %v", err, final)
	}
	if got := heard(ds); strings.Join(got, " ") != "early huge" {
		t.Errorf("first read heard %v, want early huge", got)
	}
	if err := stx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	insert(d.Conn(), 12, "after")
	if _, _, err := d.DigestsAfter(ds, pos); err != nil {
		t.Fatal(err)
	}
	if got := heard(ds); strings.Join(got, " ") != "after early huge late" {
		t.Errorf("second read heard %v, want after early huge late", got)
	}
}

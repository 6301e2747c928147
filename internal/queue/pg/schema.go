package pg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrations[i] takes the schema from version i to i+1, in one
// transaction with the others that run.
var migrations = []string{
	`CREATE TABLE wb_records (
		dist text NOT NULL,
		arch text NOT NULL,
		package text NOT NULL,
		version text NOT NULL,
		state text NOT NULL,
		section text NOT NULL DEFAULT '',
		priority text NOT NULL DEFAULT '',
		installed_version text NOT NULL DEFAULT '',
		previous_state text NOT NULL DEFAULT '',
		state_change bigint NOT NULL DEFAULT 0,
		notes text NOT NULL DEFAULT '',
		builder text NOT NULL DEFAULT '',
		failed text NOT NULL DEFAULT '',
		old_failed text NOT NULL DEFAULT '',
		binary_nmu_version integer NOT NULL DEFAULT 0,
		binary_nmu_changelog text NOT NULL DEFAULT '',
		buildpri integer NOT NULL DEFAULT 0,
		permbuildpri integer NOT NULL DEFAULT 0,
		depends text NOT NULL DEFAULT '',
		bd_problem text NOT NULL DEFAULT '',
		build_time bigint NOT NULL DEFAULT 0,
		success_time bigint NOT NULL DEFAULT 0,
		extra_depends text NOT NULL DEFAULT '',
		extra_conflicts text NOT NULL DEFAULT '',
		lease_until bigint NOT NULL DEFAULT 0,
		rev bigint NOT NULL DEFAULT 0,
		PRIMARY KEY (dist, arch, package)
	);
	CREATE INDEX wb_records_state ON wb_records (dist, arch, state, package);
	CREATE TABLE wb_history (
		id bigserial PRIMARY KEY,
		dist text NOT NULL,
		arch text NOT NULL,
		package text NOT NULL,
		version text NOT NULL,
		action text NOT NULL,
		from_state text NOT NULL,
		to_state text NOT NULL,
		real_user text NOT NULL,
		wb_user text NOT NULL,
		time bigint NOT NULL
	);
	CREATE INDEX wb_history_package ON wb_history (dist, arch, package, id);
	GRANT SELECT ON wb_schema, wb_records, wb_history TO PUBLIC;
	GRANT UPDATE ON wb_records TO PUBLIC;
	GRANT INSERT ON wb_history TO PUBLIC;
	GRANT USAGE ON SEQUENCE wb_history_id_seq TO PUBLIC;
	ALTER TABLE wb_records ENABLE ROW LEVEL SECURITY;
	CREATE POLICY wb_read ON wb_records FOR SELECT USING (true);
	CREATE POLICY wb_builder ON wb_records FOR UPDATE
		USING (builder IN ('', current_user) OR state = 'Needs-Build'
			OR state = 'Building' AND lease_until > 0 AND lease_until < extract(epoch FROM now()))
		WITH CHECK (builder IN ('', current_user)
			AND state IN ('Needs-Build', 'Building', 'Built', 'Build-Attempted', 'Uploaded', 'Dep-Wait', 'Failed'));`,
	// Version 2: the build logs (logs.go). A builder stores its own logs
	// and removes any whose expiry has passed; the gzip streams are stored
	// uncompressed by PostgreSQL (EXTERNAL), so CopyLog reads them in
	// slices.
	`CREATE TABLE wb_logs (
		package text NOT NULL,
		dist text NOT NULL,
		arch text NOT NULL,
		version text NOT NULL,
		time bigint NOT NULL,
		builder text NOT NULL,
		status text NOT NULL,
		size bigint NOT NULL,
		expires bigint NOT NULL,
		data bytea NOT NULL,
		PRIMARY KEY (package, dist, arch, version, time, builder)
	);
	ALTER TABLE wb_logs ALTER COLUMN data SET STORAGE EXTERNAL;
	CREATE INDEX wb_logs_expires ON wb_logs (expires);
	GRANT SELECT, INSERT, DELETE ON wb_logs TO PUBLIC;
	ALTER TABLE wb_logs ENABLE ROW LEVEL SECURITY;
	CREATE POLICY wb_logs_read ON wb_logs FOR SELECT USING (true);
	CREATE POLICY wb_logs_put ON wb_logs FOR INSERT WITH CHECK (builder = current_user);
	CREATE POLICY wb_logs_expire ON wb_logs FOR DELETE USING (expires < extract(epoch FROM now()));`,
	// Version 3: when a Building package's builder last renewed its lease
	// (queue.Record.LeaseRenewed), for the status web's "last heard".
	`ALTER TABLE wb_records ADD COLUMN lease_renewed bigint NOT NULL DEFAULT 0;`,
	// Version 4: the packages of each queue by state, for the status web
	// (counts.go): a write adds its changes of the counts, in its
	// own rows (no lock shared with other writers), through
	// wb_count_states, which folds a queue's rows into one per state once
	// they are many. The sum of a queue's rows of a state is its count.
	// Taken under a lock that waits for the writes in progress.
	`LOCK TABLE wb_records IN SHARE MODE;
	CREATE TABLE wb_state_counts (
		dist text NOT NULL,
		arch text NOT NULL,
		state text NOT NULL,
		n bigint NOT NULL
	);
	CREATE INDEX wb_state_counts_queue ON wb_state_counts (dist, arch);
	INSERT INTO wb_state_counts SELECT dist, arch, state, count(*) FROM wb_records GROUP BY dist, arch, state;
	GRANT SELECT ON wb_state_counts TO PUBLIC;
	CREATE FUNCTION wb_count_states(d text, a text, states text[], ns bigint[]) RETURNS void
		LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	BEGIN
		INSERT INTO wb_state_counts SELECT d, a, s, n FROM unnest(states, ns) AS u(s, n);
		IF (SELECT count(*) FROM (SELECT FROM wb_state_counts WHERE dist = d AND arch = a LIMIT 257) r) > 256 THEN
			WITH gone AS (DELETE FROM wb_state_counts WHERE dist = d AND arch = a RETURNING state, n)
			INSERT INTO wb_state_counts SELECT d, a, state, sum(n) FROM gone GROUP BY state HAVING sum(n) <> 0;
		END IF;
	END $$;`,
	// Version 5: a builder role can do only a builder's list, whatever
	// SQL it sends (builder.go says what the list is and why). Its
	// changes of wb_records pass wb_builder_change, which refuses every
	// other change and writes the history row and the counts itself;
	// it cannot insert history, count states or take a queue it was
	// not given in wb_builder_queues (which the admin fills; here with
	// the queues each builder has taken packages of, so a running
	// network goes on). It may add logs only of packages it took, at
	// most 64 of each, of at most 100 MiB. The history notes each row's transaction
	// (xid), so the status web reads what committed since its last
	// snapshot, whatever the ids' order.
	`CREATE TABLE wb_builder_queues (
		role text NOT NULL,
		dist text NOT NULL,
		arch text NOT NULL,
		PRIMARY KEY (role, dist, arch)
	);
	GRANT SELECT ON wb_builder_queues TO PUBLIC;
	INSERT INTO wb_builder_queues SELECT DISTINCT wb_user, dist, arch FROM wb_history
		WHERE action = '--take' AND NOT pg_has_role(wb_user, (SELECT relowner FROM pg_class WHERE oid = 'wb_records'::regclass), 'MEMBER')
		AND wb_user IN (SELECT rolname FROM pg_roles)
		ON CONFLICT DO NOTHING;
	REVOKE INSERT ON wb_history FROM PUBLIC;
	REVOKE USAGE ON SEQUENCE wb_history_id_seq FROM PUBLIC;
	REVOKE EXECUTE ON FUNCTION wb_count_states(text, text, text[], bigint[]) FROM PUBLIC;
	ALTER TABLE wb_history ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
	CREATE INDEX wb_history_xid ON wb_history (xid);
	DROP POLICY wb_builder ON wb_records;
	CREATE POLICY wb_builder ON wb_records FOR UPDATE USING (true) WITH CHECK (true);
	CREATE FUNCTION wb_builder_change() RETURNS trigger
		LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	DECLARE
		who text := session_user;
		now_s bigint := floor(extract(epoch FROM clock_timestamp()));
		act text := coalesce(current_setting('wb.action', true), '');
		real_user text := coalesce(current_setting('wb.real_user', true), '');
		mine boolean := OLD.builder = session_user;
		moved boolean := OLD.state IS DISTINCT FROM NEW.state;
		ok boolean := false;
		what text;
	BEGIN
		IF pg_has_role(who, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
			RETURN NEW;
		END IF;
		what := format('builder %s may not change %s/%s %s (%s, builder %L) to %s, builder %L',
			who, OLD.dist, OLD.arch, OLD.package, OLD.state, OLD.builder, NEW.state, NEW.builder);
		IF NOT EXISTS (SELECT 1 FROM wb_builder_queues q WHERE q.role = who AND q.dist = OLD.dist AND q.arch = OLD.arch) THEN
			RAISE EXCEPTION '%: % is not a queue of this builder (wb_builder_queues)', what, OLD.dist || '/' || OLD.arch
				USING ERRCODE = '42501';
		END IF;
		-- What no builder ever changes.
		IF (NEW.dist, NEW.arch, NEW.package, NEW.version, NEW.section, NEW.priority, NEW.installed_version,
				NEW.notes, NEW.binary_nmu_version, NEW.binary_nmu_changelog, NEW.buildpri, NEW.permbuildpri,
				NEW.build_time, NEW.success_time, NEW.extra_depends, NEW.extra_conflicts)
			IS DISTINCT FROM (OLD.dist, OLD.arch, OLD.package, OLD.version, OLD.section, OLD.priority, OLD.installed_version,
				OLD.notes, OLD.binary_nmu_version, OLD.binary_nmu_changelog, OLD.buildpri, OLD.permbuildpri,
				OLD.build_time, OLD.success_time, OLD.extra_depends, OLD.extra_conflicts) THEN
			RAISE EXCEPTION '%: only the admin changes a package''s name, version, dist, arch, priorities or notes', what
				USING ERRCODE = '42501';
		END IF;
		-- The transitions of a builder's list.
		IF act = '' AND NOT moved THEN
			-- renew: its own Building package's lease, nothing else
			ok := mine AND OLD.state = 'Building' AND NEW.builder = who
				AND (NEW.failed, NEW.old_failed, NEW.depends, NEW.bd_problem, NEW.previous_state, NEW.state_change)
					IS NOT DISTINCT FROM (OLD.failed, OLD.old_failed, OLD.depends, OLD.bd_problem, OLD.previous_state, OLD.state_change)
				AND NEW.lease_until BETWEEN now_s AND now_s + 604800 AND NEW.lease_renewed BETWEEN now_s - 3600 AND now_s + 3600;
		ELSIF act = '--take' THEN
			ok := OLD.state = 'Needs-Build' AND NEW.state = 'Building' AND NEW.builder = who
				AND (NEW.failed, NEW.depends) IS NOT DISTINCT FROM (OLD.failed, OLD.depends)
				AND (NEW.lease_until = 0 OR NEW.lease_until BETWEEN now_s AND now_s + 604800);
		ELSIF act = '--built' OR act = '--attempted' THEN
			ok := mine AND OLD.state IN ('Building', 'Build-Attempted') AND NEW.builder = who
				AND NEW.state = CASE act WHEN '--built' THEN 'Built' ELSE 'Build-Attempted' END
				AND (NEW.failed, NEW.depends) IS NOT DISTINCT FROM (OLD.failed, OLD.depends);
		ELSIF act = '--uploaded' THEN
			ok := mine AND OLD.state IN ('Building', 'Built', 'Build-Attempted') AND NEW.state = 'Uploaded' AND NEW.builder = who
				AND (NEW.failed, NEW.depends) IS NOT DISTINCT FROM (OLD.failed, OLD.depends);
		ELSIF act = '--failed' THEN
			ok := mine AND OLD.state IN ('Building', 'Built', 'Build-Attempted', 'Dep-Wait', 'Failed') AND NEW.state = 'Failed'
				AND NEW.builder = who AND NEW.depends IS NOT DISTINCT FROM OLD.depends AND octet_length(NEW.failed) <= 262144;
		ELSIF act = '--dep-wait' THEN
			ok := mine AND OLD.state IN ('Building', 'Built', 'Build-Attempted', 'Dep-Wait', 'Failed') AND NEW.state = 'Dep-Wait'
				AND NEW.builder = who AND octet_length(NEW.depends) <= 65536;
		ELSIF act = '--give-back' THEN
			ok := mine AND OLD.state IN ('Building', 'Built', 'Build-Attempted') AND NEW.state IN ('Needs-Build', 'BD-Uninstallable')
				AND NEW.builder = '' AND NEW.depends = '' AND NEW.failed IS NOT DISTINCT FROM OLD.failed;
		ELSIF act = '--expire-leases: lease of ' || OLD.builder || ' ended' THEN
			ok := OLD.state = 'Building' AND OLD.lease_until > 0 AND OLD.lease_until < now_s
				AND NEW.state = 'Needs-Build' AND NEW.builder = '' AND (NEW.failed, NEW.depends) IS NOT DISTINCT FROM (OLD.failed, OLD.depends);
		END IF;
		IF ok AND act <> '' THEN
			-- A change of state as change_state makes it: the old state
			-- kept, the lease ended unless taken, a failure moved into
			-- old_failed, the problem text only of BD-Uninstallable.
			ok := NEW.previous_state = CASE WHEN moved THEN OLD.state ELSE OLD.previous_state END
				AND (NOT moved OR NEW.state_change BETWEEN now_s - 3600 AND now_s + 3600)
				AND (moved OR NEW.state_change = OLD.state_change)
				AND (NEW.state = 'Building' OR NEW.lease_until = 0 AND NEW.lease_renewed = 0)
				AND (NEW.old_failed = OLD.old_failed OR OLD.state = 'Failed' AND moved AND right(NEW.old_failed, length(OLD.old_failed)) = OLD.old_failed)
				AND (NEW.failed = OLD.failed OR act = '--failed' OR OLD.state = 'Failed' AND moved AND NEW.failed = '')
				AND (NEW.bd_problem = OLD.bd_problem OR NEW.state = 'BD-Uninstallable' AND NEW.bd_problem = 'Installability of build dependencies not tested yet');
		END IF;
		IF NOT ok THEN
			RAISE EXCEPTION '%: not a change of a builder''s list (take a Needs-Build package; renew, build, attempt, fail, dep-wait, give back or mark uploaded its own; give back an ended lease)', what
				USING ERRCODE = '42501';
		END IF;
		NEW.rev := OLD.rev + 1;
		IF act <> '' THEN
			IF real_user !~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$' THEN
				real_user := who;
			END IF;
			INSERT INTO wb_history (dist, arch, package, version, action, from_state, to_state, real_user, wb_user, time)
				VALUES (OLD.dist, OLD.arch, OLD.package, OLD.version, act, NEW.previous_state, NEW.state, real_user, who, now_s);
		END IF;
		IF moved THEN
			PERFORM wb_count_states(OLD.dist, OLD.arch, ARRAY[OLD.state, NEW.state], ARRAY[-1, 1]::bigint[]);
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER wb_builder_change BEFORE UPDATE ON wb_records FOR EACH ROW EXECUTE FUNCTION wb_builder_change();
	DROP POLICY wb_logs_put ON wb_logs;
	CREATE POLICY wb_logs_put ON wb_logs FOR INSERT WITH CHECK (builder = session_user
		AND octet_length(data) <= 104857600 AND expires <= time + 3650 * 86400
		AND EXISTS (SELECT 1 FROM wb_history h WHERE h.dist = wb_logs.dist AND h.arch = wb_logs.arch
			AND h.package = wb_logs.package AND h.wb_user = session_user AND h.action = '--take')
		AND (SELECT count(*) FROM wb_logs l WHERE l.package = wb_logs.package AND l.dist = wb_logs.dist
			AND l.arch = wb_logs.arch AND l.builder = session_user) < 64);`,
	// Version 6: the builders' machine revisions and those the queues
	// require (revisions.go). A builder role writes wb_revisions only
	// through wb_report_revisions, which replaces its own rows of one of
	// its queues (wb_builder_queues), at most 16, stamped by the
	// database's clock; the table's checks keep every name to its syntax
	// and a UUID to a UUID, one current revision at most. Only the admin
	// writes wb_required_revisions; everyone reads both.
	`CREATE TABLE wb_revisions (
		builder text NOT NULL CHECK (builder COLLATE "C" ~ '^[A-Za-z0-9][A-Za-z0-9+._@-]*$' AND octet_length(builder) <= 256),
		dist text NOT NULL CHECK (dist COLLATE "C" ~ '^[a-z0-9][a-z0-9+.-]*$' AND octet_length(dist) <= 64),
		arch text NOT NULL CHECK (arch COLLATE "C" ~ '^[a-z0-9][a-z0-9+.-]*$' AND octet_length(arch) <= 64),
		machine text NOT NULL CHECK (machine COLLATE "C" ~ '^[A-Za-z0-9][A-Za-z0-9.+_-]*$' AND octet_length(machine) <= 100),
		revision text NOT NULL CHECK (revision COLLATE "C" ~ '^[A-Za-z0-9][A-Za-z0-9.+_-]*$' AND octet_length(revision) <= 100),
		uuid uuid NOT NULL,
		current boolean NOT NULL,
		reported bigint NOT NULL,
		PRIMARY KEY (builder, dist, arch, uuid)
	);
	CREATE UNIQUE INDEX wb_revisions_current ON wb_revisions (builder, dist, arch) WHERE current;
	GRANT SELECT ON wb_revisions TO PUBLIC;
	CREATE TABLE wb_required_revisions (
		dist text NOT NULL CHECK (dist COLLATE "C" ~ '^[a-z0-9][a-z0-9+.-]*$' AND octet_length(dist) <= 64),
		arch text NOT NULL CHECK (arch COLLATE "C" ~ '^[a-z0-9][a-z0-9+.-]*$' AND octet_length(arch) <= 64),
		uuid uuid NOT NULL,
		set_by text NOT NULL CHECK (octet_length(set_by) BETWEEN 1 AND 256),
		set_at bigint NOT NULL,
		PRIMARY KEY (dist, arch)
	);
	GRANT SELECT ON wb_required_revisions TO PUBLIC;
	CREATE FUNCTION wb_report_revisions(who text, d text, a text, machines text[], revisions text[], uuids text[], currents boolean[])
		RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	DECLARE
		n integer := coalesce(cardinality(uuids), 0);
		req text;
	BEGIN
		IF NOT pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'wb_records'::regclass), 'MEMBER') THEN
			IF who IS DISTINCT FROM session_user THEN
				RAISE EXCEPTION 'builder % may not report the revisions of builder %', session_user, who USING ERRCODE = '42501';
			END IF;
			IF NOT EXISTS (SELECT 1 FROM wb_builder_queues q WHERE q.role = session_user AND q.dist = d AND q.arch = a) THEN
				RAISE EXCEPTION 'builder % may not report revisions of %/%: not a queue of this builder (wb_builder_queues)', session_user, d, a
					USING ERRCODE = '42501';
			END IF;
		END IF;
		IF n > 16 OR coalesce(cardinality(machines), 0) <> n OR coalesce(cardinality(revisions), 0) <> n OR coalesce(cardinality(currents), 0) <> n THEN
			RAISE EXCEPTION 'revisions of % in %/%: % reported, at most 16, each with a machine, a revision, a UUID and whether it is current', who, d, a, n
				USING ERRCODE = '22023';
		END IF;
		-- One report of a builder's queue at a time: the next one, waiting
		-- here, then deletes all this one wrote.
		PERFORM pg_advisory_xact_lock(hashtextextended('wb_revisions ' || who || ' ' || d || ' ' || a, 0));
		DELETE FROM wb_revisions WHERE builder = who AND dist = d AND arch = a;
		INSERT INTO wb_revisions (builder, dist, arch, machine, revision, uuid, current, reported)
			SELECT who, d, a, m, r, u::uuid, c, floor(extract(epoch FROM clock_timestamp()))
			FROM unnest(machines, revisions, uuids, currents) AS x(m, r, u, c);
		SELECT uuid::text INTO req FROM wb_required_revisions WHERE dist = d AND arch = a;
		RETURN req;
	END $$;`,
	// Version 7: the builds' ends and the builders' heartbeats
	// (health.go). A builder role adds a build only of a package it is
	// building (Building, its own, that version), stamped near the
	// database's clock, with a retry at most a week away; the database
	// keeps the last 8 of each package. It takes no package whose last
	// build was given back and is held for the admin or waits until a
	// time to come (wb_retry_check). It writes its heartbeat only
	// through wb_heartbeat, for itself and its own queues.
	`CREATE TABLE wb_builds (
		id bigserial PRIMARY KEY,
		dist text NOT NULL,
		arch text NOT NULL,
		package text NOT NULL,
		version text NOT NULL,
		builder text NOT NULL CHECK (octet_length(builder) BETWEEN 1 AND 256),
		time bigint NOT NULL,
		outcome text NOT NULL CHECK (outcome IN ('', 'successful', 'attempted', 'given-back')),
		class text NOT NULL CHECK (class IN ('ok', 'package', 'deps', 'timeout', 'oom', 'infrastructure', 'retry')),
		stage text NOT NULL CHECK (stage COLLATE "C" ~ '^[a-z-]{0,32}$'),
		peak_memory bigint NOT NULL CHECK (peak_memory BETWEEN 0 AND 1099511627776),
		cpu_ms bigint NOT NULL CHECK (cpu_ms BETWEEN 0 AND 1099511627776),
		disk bigint NOT NULL CHECK (disk BETWEEN 0 AND 1099511627776),
		wall bigint NOT NULL CHECK (wall BETWEEN 0 AND 4294967296),
		slot_memory bigint NOT NULL CHECK (slot_memory BETWEEN 0 AND 1099511627776),
		retry_after bigint NOT NULL,
		held text NOT NULL CHECK (octet_length(held) <= 1024)
	);
	CREATE INDEX wb_builds_package ON wb_builds (dist, arch, package, id);
	GRANT SELECT, INSERT ON wb_builds TO PUBLIC;
	GRANT USAGE ON SEQUENCE wb_builds_id_seq TO PUBLIC;
	ALTER TABLE wb_builds ENABLE ROW LEVEL SECURITY;
	CREATE POLICY wb_builds_read ON wb_builds FOR SELECT USING (true);
	CREATE POLICY wb_builds_put ON wb_builds FOR INSERT WITH CHECK (builder = session_user
		AND class <> 'retry' AND outcome <> ''
		AND time BETWEEN floor(extract(epoch FROM now())) - 3600 AND floor(extract(epoch FROM now())) + 3600
		AND retry_after <= time + 604800
		AND EXISTS (SELECT 1 FROM wb_records r WHERE r.dist = wb_builds.dist AND r.arch = wb_builds.arch
			AND r.package = wb_builds.package AND r.version = wb_builds.version
			AND r.state = 'Building' AND r.builder = session_user));
	CREATE FUNCTION wb_builds_trim() RETURNS trigger
		LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	BEGIN
		DELETE FROM wb_builds WHERE dist = NEW.dist AND arch = NEW.arch AND package = NEW.package
			AND id NOT IN (SELECT id FROM wb_builds WHERE dist = NEW.dist AND arch = NEW.arch AND package = NEW.package
				ORDER BY id DESC LIMIT 8);
		RETURN NULL;
	END $$;
	CREATE TRIGGER wb_builds_trim AFTER INSERT ON wb_builds FOR EACH ROW EXECUTE FUNCTION wb_builds_trim();
	CREATE FUNCTION wb_retry_check() RETURNS trigger
		LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	DECLARE
		last wb_builds%ROWTYPE;
	BEGIN
		IF pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
			RETURN NEW;
		END IF;
		SELECT * INTO last FROM wb_builds WHERE dist = OLD.dist AND arch = OLD.arch AND package = OLD.package
			ORDER BY id DESC LIMIT 1;
		IF FOUND AND last.outcome = 'given-back' AND (last.held <> '' OR last.retry_after > extract(epoch FROM now())) THEN
			RAISE EXCEPTION 'builder % may not take %/% %: given back by %, %', session_user, OLD.dist, OLD.arch, OLD.package, last.builder,
				CASE WHEN last.held <> '' THEN 'held for the admin: ' || last.held ELSE 'waiting until ' || to_timestamp(last.retry_after) END
				USING ERRCODE = '42501';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER wb_retry_check BEFORE UPDATE ON wb_records FOR EACH ROW
		WHEN (OLD.state = 'Needs-Build' AND NEW.state = 'Building') EXECUTE FUNCTION wb_retry_check();
	CREATE TABLE wb_builders (
		builder text NOT NULL CHECK (builder COLLATE "C" ~ '^[A-Za-z0-9][A-Za-z0-9+._@-]*$' AND octet_length(builder) <= 256),
		dist text NOT NULL CHECK (dist COLLATE "C" ~ '^[a-z0-9][a-z0-9+.-]*$' AND octet_length(dist) <= 64),
		arch text NOT NULL CHECK (arch COLLATE "C" ~ '^[a-z0-9][a-z0-9+.-]*$' AND octet_length(arch) <= 64),
		slots integer NOT NULL CHECK (slots BETWEEN 0 AND 1024),
		slot_memory bigint NOT NULL CHECK (slot_memory BETWEEN 0 AND 1099511627776),
		running integer NOT NULL CHECK (running BETWEEN 0 AND 1024),
		quarantined text NOT NULL CHECK (octet_length(quarantined) <= 1024),
		quarantined_since bigint NOT NULL,
		heard bigint NOT NULL,
		PRIMARY KEY (builder, dist, arch)
	);
	GRANT SELECT ON wb_builders TO PUBLIC;
	CREATE FUNCTION wb_heartbeat(who text, d text, a text, n_slots integer, slot_mem bigint, n_running integer, q text, q_since bigint)
		RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
	BEGIN
		IF NOT pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'wb_records'::regclass), 'MEMBER') THEN
			IF who IS DISTINCT FROM session_user THEN
				RAISE EXCEPTION 'builder % may not report the heartbeat of builder %', session_user, who USING ERRCODE = '42501';
			END IF;
			IF NOT EXISTS (SELECT 1 FROM wb_builder_queues q WHERE q.role = session_user AND q.dist = d AND q.arch = a) THEN
				RAISE EXCEPTION 'builder % may not report a heartbeat of %/%: not a queue of this builder (wb_builder_queues)', session_user, d, a
					USING ERRCODE = '42501';
			END IF;
		END IF;
		INSERT INTO wb_builders (builder, dist, arch, slots, slot_memory, running, quarantined, quarantined_since, heard)
			VALUES (who, d, a, n_slots, slot_mem, n_running, q, q_since, floor(extract(epoch FROM clock_timestamp())))
			ON CONFLICT (builder, dist, arch) DO UPDATE SET slots = EXCLUDED.slots, slot_memory = EXCLUDED.slot_memory,
				running = EXCLUDED.running, quarantined = EXCLUDED.quarantined,
				quarantined_since = EXCLUDED.quarantined_since, heard = EXCLUDED.heard;
	END $$;`,
}

// SchemaVersion is the schema this program reads and writes.
var SchemaVersion = len(migrations)

// schemaLock is the advisory lock key under which the schema is created
// and migrated ("wbschema").
const schemaLock = 0x7762736368656d61

// migrate brings the schema to SchemaVersion and reports whether the
// session's role is the admin (owns the schema). Two processes starting
// at once take turns on the advisory lock; the second finds the work done.
func (d *DB) migrate(ctx context.Context, timeout time.Duration) (bool, error) {
	v, admin, err := d.version(ctx, d.conn)
	if err != nil {
		return false, err
	}
	if v < SchemaVersion {
		if err := d.upgrade(ctx, timeout); err != nil {
			return false, err
		}
		if v, admin, err = d.version(ctx, d.conn); err != nil {
			return false, err
		}
	}
	if v > SchemaVersion {
		return false, fmt.Errorf("schema version %d is newer than this program's %d", v, SchemaVersion)
	}
	return admin, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// version is the schema's version (0 when there is none) and whether the
// session's role owns it, in one round trip.
func (d *DB) version(ctx context.Context, q querier) (int, bool, error) {
	var v int
	var admin bool
	err := q.QueryRow(ctx, `SELECT version, coalesce(pg_has_role(session_user,
		(SELECT relowner FROM pg_class WHERE oid = to_regclass('wb_records')), 'MEMBER'), false) FROM wb_schema`).Scan(&v, &admin)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return 0, false, nil
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("schema version: %w", err)
	}
	return v, admin, nil
}

func (d *DB) upgrade(ctx context.Context, timeout time.Duration) error {
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", timeout.Milliseconds())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
		return fmt.Errorf("schema lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS wb_schema (version integer NOT NULL)"); err != nil {
		return d.needAdmin(0, err)
	}
	v, _, err := d.version(ctx, tx)
	if err != nil {
		return err
	}
	if v == 0 {
		if _, err := tx.Exec(ctx, "INSERT INTO wb_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM wb_schema)"); err != nil {
			return d.needAdmin(v, err)
		}
	}
	for i := v; i < SchemaVersion; i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return d.needAdmin(v, fmt.Errorf("migration to version %d: %w", i+1, err))
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE wb_schema SET version = $1", SchemaVersion); err != nil {
		return d.needAdmin(v, err)
	}
	return tx.Commit(ctx)
}

func (d *DB) needAdmin(v int, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return fmt.Errorf("the schema is at version %d and this program needs %d: run any wanna-build command once as the admin role (%v)", v, SchemaVersion, err)
	}
	return err
}

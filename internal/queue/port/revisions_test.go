package port_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/port"
	"buildd/internal/queue/store"
)

// revUUID is the test's UUID number n.
func revUUID(n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n) }

// heldOf are revisions m-N with UUID N of machine m, the first current.
func heldOf(ns ...int) []queue.HeldRevision {
	var h []queue.HeldRevision
	for i, n := range ns {
		h = append(h, queue.HeldRevision{Machine: "m", Revision: fmt.Sprintf("m-%d", n), UUID: revUUID(n), Current: i == 0})
	}
	return h
}

// TestRevisions: a builder's report reaches the queue and the required
// revision comes back through every way to a queue (a bbolt file,
// PostgreSQL as the admin and as the builder's role, wanna-build over
// ssh); a report the queue must not take is refused, naming what is
// wrong, and changes nothing.
func TestRevisions(t *testing.T) {
	for _, kind := range append(kinds, "builder") {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var p queue.Port
			var db string
			if kind == "builder" {
				p, db = builderPort(t)
			} else {
				p, db = newPort(t, kind)
			}
			report := func(held []queue.HeldRevision, want string) {
				t.Helper()
				if got, err := p.Revisions(ctx, held); err != nil || got != want {
					t.Fatalf("report %v: required %q, %v; want %q", held, got, err, want)
				}
			}
			report(heldOf(1, 2), "")
			if out, err := exec.Command(bin, "--db", db, "-d", "sid", "-A", "amd64", "-U", pgtest.Admin, "--require-revision="+strings.ToUpper(revUUID(0xabc))).CombinedOutput(); err != nil {
				t.Fatalf("--require-revision: %v\n%s", err, out)
			}
			report(heldOf(3, 1), revUUID(0xabc))
			report(nil, revUUID(0xabc))
			report(heldOf(4), revUUID(0xabc))
			bad := heldOf(5)
			bad[0].UUID = "not-a-uuid"
			for _, tc := range []struct {
				name string
				held []queue.HeldRevision
				want string
			}{
				{"not a UUID", bad, `"not-a-uuid"`},
				{"seventeen", heldOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17), "17 reported, at most 16"},
			} {
				if _, err := p.Revisions(ctx, tc.held); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want an error saying %s", tc.name, err, tc.want)
				}
			}
			s, err := store.Open(db, store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rs, err := s.Revisions("", queue.Pair{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, fmt.Sprintf("%s %s/%s %s %s %v", r.Builder, r.Dist, r.Arch, r.Revision, r.UUID, r.Current))
			}
			if want := []string{"buildd_a sid/amd64 m-4 " + revUUID(4) + " true"}; !reflect.DeepEqual(got, want) {
				t.Errorf("the queue holds %q, want %q", got, want)
			}
		})
	}
}

// TestRevisionsOldQueueHost: a queue host whose wanna-build is older than
// the report refuses its option with a usage error, which is what the
// report returns; the other calls go on as before.
func TestRevisionsOldQueueHost(t *testing.T) {
	_, db := newPort(t, "bolt")
	ssh := filepath.Join(t.TempDir(), "ssh")
	// ssh [OPTIONS] HOST wanna-build WORDS: the words quoted for the
	// remote shell, which eval unquotes.
	script := fmt.Sprintf(`#!/bin/sh
while [ "$1" != wanna-build ]; do shift; done
shift
case " $* " in
*" --report-revisions "*) echo 'Unknown option: report-revisions' >&2; echo 'Usage: wanna-build <options...> <package_version...>'; exit 1;;
esac
export WANNA_BUILD_DB=%q BUILDD_CONF=
eval "exec %q $*"
`, db, bin)
	if err := os.WriteFile(ssh, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Home: t.TempDir()}
	cfg.Dists = []config.Dist{{DistName: "sid", BuiltArchitecture: "amd64", WannaBuildDBUser: "buildd_a", WannaBuildSSHHost: "queue.example.org"}}
	p := port.Open(cfg, &cfg.Dists[0])
	p.(*port.Remote).SSH = ssh
	ctx := context.Background()
	_, err := p.Revisions(ctx, heldOf(1))
	if err == nil || !strings.Contains(err.Error(), "Unknown option: report-revisions") ||
		!strings.Contains(err.Error(), "the queue host's wanna-build must be this suite's") {
		t.Errorf("the report to an old queue host: %v", err)
	}
	if list, err := p.NeedsBuild(ctx); err != nil || len(list) == 0 {
		t.Errorf("needs-build from the same queue host: %v, %v", list, err)
	}
}

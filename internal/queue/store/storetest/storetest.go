// Package storetest gives tests a fresh, empty queue of the kind
// $BUILDD_TEST_STORE names: a bbolt file (unset or "bolt") or a database
// of a real PostgreSQL cluster ("postgres", see pgtest). Running a
// package's tests once with each kind is the conformance suite of the two
// stores: `make test` does.
package storetest

import (
	"os"
	"path/filepath"
	"testing"

	"buildd/internal/queue/pg/pgtest"
)

// Env selects the store kind.
const Env = "BUILDD_TEST_STORE"

// Postgres reports whether the tests run on PostgreSQL.
func Postgres() bool { return os.Getenv(Env) == "postgres" }

// New returns the wanna_build_db value of a fresh queue: on PostgreSQL as
// the admin role.
func New(t testing.TB) string {
	t.Helper()
	return NewOf(t, os.Getenv(Env))
}

// Kinds are the store kinds, for benchmarks that compare them.
var Kinds = []string{"bolt", "postgres"}

// NewOf is New for the kind given ("" is bolt).
func NewOf(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case "", "bolt":
		return filepath.Join(t.TempDir(), "wb.db")
	case "postgres":
		return pgtest.New(t).URL(pgtest.Admin)
	default:
		t.Fatalf("store kind %q: want bolt or postgres", kind)
		return ""
	}
}

// Main runs the tests and stops a PostgreSQL cluster they started: use it
// as TestMain.
func Main(m *testing.M) int { return pgtest.Main(m) }

// Package pgtest gives tests a real PostgreSQL: one cluster per test
// process, made with initdb in a temporary directory, run as the postgres
// user, reached only through a unix socket in that directory, and removed
// when the process's tests end (Main). Each New is a fresh database owned
// by the admin role "wbadmin", with builder roles "buildd_a" and
// "buildd_b". Without root or PostgreSQL the test is skipped loudly.
package pgtest

import (
	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Admin and Builders are the roles every cluster has.
const Admin = "wbadmin"

var Builders = []string{"buildd_a", "buildd_b"}

var (
	once     sync.Once
	cluster  *Cluster
	startErr error
	dbSeq    atomic.Int64
)

// Cluster is a running PostgreSQL.
type Cluster struct {
	Dir    string // holds data/ and the socket
	server *exec.Cmd
}

// Main runs the tests and stops the cluster if one was started. Use it as
// TestMain: func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if cluster != nil {
		cluster.stop()
	}
	return code
}

// bin finds the newest PostgreSQL's programs.
func bin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
}

func start() (*Cluster, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not root (initdb runs as the postgres user)")
	}
	dir, err := bin()
	if err != nil {
		return nil, err
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	tmp, err := os.MkdirTemp("", "buildd-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: tmp}
	if err := os.Chown(tmp, uid, gid); err != nil {
		c.remove()
		return nil, err
	}
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(dir, name), args...)
		cmd.Dir = tmp
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return cmd
	}
	data := filepath.Join(tmp, "data")
	if out, err := asPostgres("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8").CombinedOutput(); err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	c.server = asPostgres("postgres", "-D", data, "-k", tmp, "-c", "listen_addresses=", "-c", "max_connections=200",
		"-c", "shared_buffers=128MB")
	c.server.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	log, err := os.Create(filepath.Join(tmp, "server.log"))
	if err != nil {
		c.remove()
		return nil, err
	}
	c.server.Stdout, c.server.Stderr = log, log
	if err := c.server.Start(); err != nil {
		c.remove()
		return nil, fmt.Errorf("postgres: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), c.URL("postgres", "postgres"))
		if err == nil {
			defer conn.Close(context.Background())
			for _, role := range append([]string{Admin}, Builders...) {
				if _, err := conn.Exec(context.Background(), "CREATE ROLE "+role+" LOGIN"); err != nil {
					c.stop()
					return nil, fmt.Errorf("create role %s: %v", role, err)
				}
			}
			return c, nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			c.stop()
			return nil, fmt.Errorf("postgres did not start: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL is the unix-socket URL of database db as role.
func (c *Cluster) URL(db, role string) string {
	return fmt.Sprintf("postgres:///%s?host=%s&user=%s&sslmode=disable", db, url.QueryEscape(c.Dir), role)
}

// Role creates the LOGIN role name in the cluster (through the postgres
// superuser), unless it exists already: a builder of every database, as
// Builders are. Roles belong to the cluster, so every test of the process
// sees them.
func (c *Cluster) Role(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN")
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42710" || pe.Code == "23505") { // exists, or made at the same moment
		return
	}
	if err != nil {
		t.Fatalf("create role %s: %v", name, err)
	}
}

func (c *Cluster) stop() {
	if c.server != nil && c.server.Process != nil {
		c.server.Process.Signal(syscall.SIGINT) // fast shutdown
		done := make(chan struct{})
		go func() { c.server.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			c.server.Process.Kill()
			<-done
		}
	}
	c.remove()
}

func (c *Cluster) remove() { os.RemoveAll(c.Dir) }

// Require returns the process's cluster, starting it on first use, or
// skips t loudly.
func Require(t testing.TB) *Cluster {
	t.Helper()
	once.Do(func() { cluster, startErr = start() })
	if startErr != nil {
		t.Skipf("!!!!! SKIPPED %s: needs a real PostgreSQL: %v !!!!!", t.Name(), startErr)
	}
	return cluster
}

// DB is a fresh database of the cluster.
type DB struct {
	Cluster *Cluster
	Name    string
}

// URL is the database's URL as role (Admin or one of Builders).
func (d *DB) URL(role string) string { return d.Cluster.URL(d.Name, role) }

// New makes a fresh database owned by Admin and returns it.
func New(t testing.TB) *DB {
	t.Helper()
	c := Require(t)
	name := fmt.Sprintf("wb%d_%d", os.Getpid(), dbSeq.Add(1))
	conn, err := pgx.Connect(context.Background(), c.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name+" OWNER "+Admin); err != nil {
		t.Fatal(err)
	}
	return &DB{Cluster: c, Name: name}
}

// Grant gives builder role the queues dist/arch, as the admin does
// (wb_builder_queues); the admin's first connection makes the schema.
func (d *DB) Grant(t testing.TB, role string, queues ...queue.Pair) {
	t.Helper()
	ctx := context.Background()
	admin, err := pg.Open(ctx, d.URL(Admin), pg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, q := range queues {
		if _, err := admin.Conn().Exec(ctx, "INSERT INTO wb_builder_queues VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", role, q.Dist, q.Arch); err != nil {
			t.Fatalf("grant %s the queue %s/%s: %v", role, q.Dist, q.Arch, err)
		}
	}
}

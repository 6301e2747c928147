package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// BouncerProgram is Debian's pgbouncer (the pgbouncer package).
const BouncerProgram = "/usr/sbin/pgbouncer"

// BouncerPort is the port in the name of a Bouncer's socket
// (.s.PGSQL.6432 in its directory); it listens on no TCP port.
const BouncerPort = 6432

// BouncerConfig is what a test's pgbouncer is given.
type BouncerConfig struct {
	// Roles may connect (auth_type trust: pgbouncer knows only the users of
	// its auth_file). Each gets pools of its own, connecting to the cluster
	// as itself.
	Roles []string
	// PoolSize is default_pool_size: server connections per database and
	// role at most; 0 is 1.
	PoolSize int
}

// Bouncer is a pgbouncer of the test's own in front of the cluster:
// Debian's program, run as the postgres user (pgbouncer refuses root)
// with an ini of its own in a temporary directory, in transaction pooling
// mode, reached only through a unix socket there. It is never the
// system's pgbouncer service. It stops when the test ends.
type Bouncer struct {
	Dir string // holds the ini, the auth file, the log and the socket
	cmd *exec.Cmd
}

// StartBouncer starts a pgbouncer for the test, or skips the test loudly
// when Debian's pgbouncer is not installed.
func (c *Cluster) StartBouncer(t testing.TB, cfg BouncerConfig) *Bouncer {
	t.Helper()
	if _, err := os.Stat(BouncerProgram); err != nil {
		t.Skipf("!!!!! SKIPPED %s: needs Debian's pgbouncer (apt-get install pgbouncer): %v !!!!!", t.Name(), err)
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("pgbouncer: no postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	dir, err := os.MkdirTemp("", "buildd-pgbouncer-")
	if err != nil {
		t.Fatalf("pgbouncer: %v", err)
	}
	b := &Bouncer{Dir: dir}
	t.Cleanup(func() { b.stop(t) })
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 1
	}
	var users strings.Builder
	for _, role := range append([]string{"postgres"}, cfg.Roles...) {
		fmt.Fprintf(&users, "%q \"\"\n", role)
	}
	ini := fmt.Sprintf(`[databases]
* = host=%s

[pgbouncer]
unix_socket_dir = %s
listen_port = %d
auth_type = trust
auth_file = %s
admin_users = postgres
pool_mode = transaction
default_pool_size = %d
max_client_conn = 2000
logfile = %s
`, c.Dir, dir, BouncerPort, filepath.Join(dir, "userlist.txt"), cfg.PoolSize, filepath.Join(dir, "pgbouncer.log"))
	for name, text := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": users.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatalf("pgbouncer: %v", err)
		}
	}
	for _, name := range []string{"", "pgbouncer.ini", "userlist.txt"} {
		if err := os.Chown(filepath.Join(dir, name), uid, gid); err != nil {
			t.Fatalf("pgbouncer: %v", err)
		}
	}
	b.cmd = exec.Command(BouncerProgram, "-q", filepath.Join(dir, "pgbouncer.ini")) // -q: its log only in the logfile
	b.cmd.Dir = dir
	b.cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Pdeathsig:  syscall.SIGTERM,
	}
	out, err := os.Create(filepath.Join(dir, "stderr.log")) // what it says before it has read its ini
	if err != nil {
		t.Fatalf("pgbouncer: %v", err)
	}
	defer out.Close()
	b.cmd.Stdout, b.cmd.Stderr = out, out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("pgbouncer: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgconn.Connect(context.Background(), b.URL("pgbouncer", "postgres"))
		if err == nil {
			conn.Close(context.Background())
			return b
		}
		if time.Now().After(deadline) {
			early, _ := os.ReadFile(out.Name())
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Fatalf("pgbouncer did not start: %v\n%s%s", err, early, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is the URL of database db as role through the pgbouncer.
func (b *Bouncer) URL(db, role string) string {
	return fmt.Sprintf("postgres:///%s?host=%s&port=%d&user=%s&sslmode=disable", db, url.QueryEscape(b.Dir), BouncerPort, role)
}

// Pid is the pgbouncer's process id.
func (b *Bouncer) Pid() int { return b.cmd.Process.Pid }

// stop shuts the pgbouncer down at once (SIGTERM: its clients are
// disconnected) and removes its directory.
func (b *Bouncer) stop(t testing.TB) {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("pgbouncer did not stop on SIGTERM: killed")
			b.cmd.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(b.Dir)
}

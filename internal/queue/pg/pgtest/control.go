package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Fault injection: a test that stops its queue's server (a crash, an
// operator's restart, an outage) takes a cluster of its own (Own), so that
// the other tests of the process keep theirs, and stops and starts it as
// pg_ctl would.

// Stop modes, as pg_ctl stop -m names them: the signal each sends the
// postmaster.
const (
	Smart     = "smart"     // SIGTERM: waits for the sessions to end
	Fast      = "fast"      // SIGINT: ends the sessions, checkpoints
	Immediate = "immediate" // SIGQUIT: no checkpoint; the next start recovers from the WAL, as after a crash
)

var stopSignals = map[string]syscall.Signal{Smart: syscall.SIGTERM, Fast: syscall.SIGINT, Immediate: syscall.SIGQUIT}

// Own starts a cluster for t alone, with the roles every cluster has,
// stopped and removed when t ends. Without root or PostgreSQL t is
// skipped loudly.
func Own(t testing.TB) *Cluster {
	t.Helper()
	c, err := start()
	if err != nil {
		t.Skipf("!!!!! SKIPPED %s: needs a real PostgreSQL: %v !!!!!", t.Name(), err)
	}
	t.Cleanup(c.stop)
	return c
}

// NewDB makes a fresh database of c owned by Admin, as New does in the
// process's cluster.
func (c *Cluster) NewDB(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("wb%d_%d", os.Getpid(), dbSeq.Add(1))
	conn, err := pgx.Connect(ctx, c.URL("postgres", "postgres"))
	if err != nil {
		t.Fatalf("new database in %s: %v", c.Dir, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" OWNER "+Admin); err != nil {
		t.Fatalf("create database %s in %s: %v", name, c.Dir, err)
	}
	return &DB{Cluster: c, Name: name}
}

// Stop stops the server the way pg_ctl stop -m mode does and waits until
// it has exited (at most a minute; then it is killed).
func (c *Cluster) Stop(mode string) error {
	sig, ok := stopSignals[mode]
	if !ok {
		return fmt.Errorf("stop %s: unknown mode %q (smart, fast or immediate)", c.Dir, mode)
	}
	if err := c.server.Process.Signal(sig); err != nil {
		return fmt.Errorf("stop %s -m %s: %w", c.Dir, mode, err)
	}
	done := make(chan struct{})
	go func() { c.server.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(time.Minute):
		c.server.Process.Kill()
		<-done
		return fmt.Errorf("stop %s -m %s: still running after a minute, killed", c.Dir, mode)
	}
}

// Start starts the stopped server again, on the same data directory and
// socket with the same settings, and waits until it accepts connections
// (after an immediate stop, once it has recovered).
func (c *Cluster) Start() error {
	old := c.server
	cmd := exec.Command(old.Path, old.Args[1:]...)
	cmd.Dir = old.Dir
	attr := *old.SysProcAttr
	cmd.SysProcAttr = &attr
	cmd.Stdout, cmd.Stderr = old.Stdout, old.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s again: %w", c.Dir, err)
	}
	c.server = cmd
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres", "postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start %s again: not accepting connections after 2 minutes: %w", c.Dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart stops the server with mode and starts it again.
func (c *Cluster) Restart(mode string) error {
	if err := c.Stop(mode); err != nil {
		return err
	}
	return c.Start()
}

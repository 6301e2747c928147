package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// PutLog delivers a finished build's log, gz its gzip form, to the log
// store of the queue, the way the queue calls go: into the local bbolt
// file or PostgreSQL database, or by `wanna-build --put-log` over ssh with
// gz on its stdin. l names the package, version, end time, status and
// expiry; the distribution, architecture and builder are the client's.
// A nil error means the store has the log.
func (c *Client) PutLog(ctx context.Context, l queue.BuildLog, gz io.Reader) error {
	l.Dist, l.Arch, l.Builder = c.dist.DistName, c.dist.BuiltArchitecture, c.user()
	pkgv := l.PkgVersion()
	if c.Remote() {
		args := []string{"--put-log", "--log-time=" + strconv.FormatInt(l.Time, 10), "--log-status=" + l.Status,
			"--log-expires=" + strconv.FormatInt(l.Expires, 10), pkgv}
		cmd := commandContext(ctx, c.SSH, c.sshArgs(args...)...)
		cmd.Stdin = gz
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("log %s: %s %s: %w: %s", pkgv, c.SSH, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
		}
		return nil
	}
	data, size, err := queue.ReadLog(gz, "log "+pkgv)
	if err != nil {
		return err
	}
	l.Size = size
	db, err := store.Open(c.DB, store.Options{Timeout: c.Timeout})
	if err != nil {
		return fmt.Errorf("log %s: %w", pkgv, err)
	}
	defer db.Close()
	return db.PutLog(&l, data)
}

// Package port is the one way the programs of a build host reach the
// wanna-build queue of a distribution (queue.Port), chosen once from the
// config: the dist's wanna_build_ssh_host runs wanna-build on that host
// over ssh, answering in JSON lines (wire.go); otherwise wanna_build_db is
// opened here, a bbolt file for each call (its lock is shared with other
// processes) or a PostgreSQL pool kept for the process's life (and a
// LISTEN connection to wanna_build_listen_db, for Listen). Every way
// gives the same answers: the remote side runs this package's local port.
package port

import (
	"os/user"
	"time"

	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// Open returns the port of dist's queue. Nothing is connected until the
// first call; Close lets go of what it keeps.
func Open(cfg *config.Config, dist *config.Dist) queue.Port {
	if dist.WannaBuildSSHHost != "" {
		return &Remote{dist: dist, SSH: "ssh"}
	}
	h := store.NewHandle(cfg.WannaBuildDB, store.Options{Timeout: store.DefaultTimeout, MaxConns: 2, Listen: cfg.WannaBuildListenDB})
	return Local(h, func() *queue.Session {
		real := dist.WannaBuildDBUser
		if u, err := user.Current(); err == nil {
			real = u.Username
		}
		return &queue.Session{
			Dist: dist.DistName, Arch: dist.BuiltArchitecture,
			User: dist.WannaBuildDBUser, RealUser: real,
			CheckInstall: cfg.CheckInstall, Lease: int64(dist.Lease()),
			Now: time.Now(), Verbose: true,
		}
	})
}

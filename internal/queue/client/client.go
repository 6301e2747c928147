// Package client is how buildd, buildd-mail and buildd-uploader talk to the
// wanna-build queue of one distribution: in-process on the local bbolt
// database (config wanna_build_db), or, when the dist has
// wanna_build_ssh_host, by running `wanna-build` on that host over ssh and
// parsing the classic output. Both ways give the same results: a
// per-package refusal is a *Refused carrying the classic message, an
// unknown package matches ErrNotRegistered.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"buildd/internal/config"
	"buildd/internal/debversion"
	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/store"
)

// Refused is a per-package refusal with the classic message ("already taken
// by X", "not taken by you, but by B. Skipping.", "version mismatch (V by
// B)", ...). Nothing was changed for that package.
type Refused = queue.Refused

// ErrNotRegistered is matched (errors.Is) when the queue does not know the
// package.
var ErrNotRegistered = queue.ErrNotRegistered

// Listed is one line of --list=needs-build.
type Listed struct {
	Name, Version, Section, Priority string
	BinNMU                           int
	Notes                            string
	CalPrio                          int
}

// PkgVersion is "name_version".
func (l Listed) PkgVersion() string {
	return debversion.PkgVersion{Name: l.Name, Version: l.Version}.String()
}

// Info is what --info says about a package.
type Info struct {
	Name, Version, State, Builder   string
	Section, Priority               string
	InstalledVersion, PreviousState string
	StateChange                     string
	FailedText, OldFailed           string
	BinNMU                          int
	BinNMUChangelog                 string
	Depends, BDProblem, Notes       string
	BuildPri, PermBuildPri, CalPrio int
}

// Client talks to the queue of one distribution as dist.WannaBuildDBUser.
type Client struct {
	cfg  *config.Config
	dist *config.Dist
	// DB is the local database file (default: the config's wanna_build_db).
	DB string
	// Timeout is how long a local command waits for the database lock.
	Timeout time.Duration
	// SSH is the ssh program for the remote mode.
	SSH string
}

// New returns the client for dist.
func New(cfg *config.Config, dist *config.Dist) *Client {
	return &Client{cfg: cfg, dist: dist, DB: cfg.WannaBuildDB, Timeout: store.DefaultTimeout, SSH: "ssh"}
}

// Remote reports whether the client goes over ssh.
func (c *Client) Remote() bool { return c.dist.WannaBuildSSHHost != "" }

func (c *Client) user() string { return c.dist.WannaBuildDBUser }

func (c *Client) session(out io.Writer) *queue.Session {
	real := c.user()
	if u, err := user.Current(); err == nil {
		real = u.Username
	}
	return &queue.Session{
		Dist: c.dist.DistName, Arch: c.dist.BuiltArchitecture,
		User: c.user(), RealUser: real,
		CheckInstall: c.cfg.CheckInstall, Lease: int64(c.dist.Lease()),
		Now: time.Now(), Out: out, Verbose: true,
	}
}

func (c *Client) local(readOnly bool, fn func(queue.Tx, *queue.Session) error) error {
	db, err := store.Open(c.DB, store.Options{ReadOnly: readOnly, Timeout: c.Timeout})
	if err != nil {
		return err
	}
	defer db.Close()
	s := c.session(io.Discard)
	run := db.Update
	if readOnly {
		run = db.View
	}
	var pkgErr error
	err = run(c.dist.DistName, c.dist.BuiltArchitecture, func(tx queue.Tx) error {
		pkgErr = nil // a PostgreSQL transaction may run again
		err := fn(tx, s)
		if queue.IsPackageError(err) {
			pkgErr = err
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return pkgErr
}

// NeedsBuild lists the packages in Needs-Build, in calprio order.
func (c *Client) NeedsBuild(ctx context.Context) ([]Listed, error) {
	if c.Remote() {
		out, err := c.remote(ctx, nil, "--list=needs-build")
		if err != nil {
			return nil, err
		}
		return parseList(out)
	}
	var list []Listed
	err := c.local(true, func(tx queue.Tx, s *queue.Session) error {
		var recs []*queue.Record
		if err := tx.ForEachInState(queue.NeedsBuild, func(r *queue.Record) error {
			recs = append(recs, r)
			return nil
		}); err != nil {
			return err
		}
		for _, p := range queue.SortForBuild(recs, s.Now) {
			list = append(list, Listed{Name: p.Package, Version: p.Version, Section: p.Section,
				Priority: p.Priority, BinNMU: p.BinNMU, Notes: p.Notes, CalPrio: p.CalPrio})
		}
		return nil
	})
	return list, err
}

// Take takes pkgv ("name_version") for building.
func (c *Client) Take(ctx context.Context, pkgv string) error {
	return c.set(ctx, queue.Take, "--take", pkgv, "", nil)
}

// Built marks pkgv built.
func (c *Client) Built(ctx context.Context, pkgv string) error {
	return c.set(ctx, queue.SetBuilt, "--built", pkgv, "", nil)
}

// Attempted marks pkgv Build-Attempted.
func (c *Client) Attempted(ctx context.Context, pkgv string) error {
	return c.set(ctx, queue.SetAttempted, "--attempted", pkgv, "", nil)
}

// GiveBack gives pkgv back.
func (c *Client) GiveBack(ctx context.Context, pkgv string) error {
	return c.set(ctx, queue.GiveBack, "--give-back", pkgv, "", nil)
}

// Uploaded marks pkgv uploaded.
func (c *Client) Uploaded(ctx context.Context, pkgv string) error {
	return c.set(ctx, queue.SetUploaded, "--uploaded", pkgv, "", nil)
}

// NoBuild sets pkgv Not-For-Us (or back to Failed if it was).
func (c *Client) NoBuild(ctx context.Context, pkgv string) error {
	return c.set(ctx, queue.NoBuild, "--no-build", pkgv, "", nil)
}

// Failed marks pkgv failed with msg appended to its failure text.
func (c *Client) Failed(ctx context.Context, pkgv, msg string) error {
	msg = strings.TrimRight(msg, "\n")
	return c.set(ctx, queue.SetFailed, "--failed", pkgv, msg, []byte(msg+"\n.\n"))
}

// DepWait puts pkgv in Dep-Wait on deps (a dependency list of ">", ">>",
// ">=" relations).
func (c *Client) DepWait(ctx context.Context, pkgv, deps string) error {
	deps = strings.TrimSpace(deps)
	return c.set(ctx, queue.SetDepWait, "--dep-wait", pkgv, deps, []byte(deps+"\n"))
}

func (c *Client) set(ctx context.Context, cmd queue.Command, opt, pkgv, msg string, stdin []byte) error {
	if c.Remote() {
		args := []string{opt, pkgv}
		if cmd == queue.Take {
			args = []string{"-v", "--take", pkgv}
			if c.dist.Lease() > 0 {
				args = append(args, fmt.Sprintf("--lease=%d", c.dist.Lease()))
			}
		}
		out, err := c.remote(ctx, stdin, args...)
		if err != nil {
			return err
		}
		return parseResult(cmd, pkgv, out)
	}
	return c.local(false, func(tx queue.Tx, s *queue.Session) error {
		s.Message = msg
		return s.Apply(tx, cmd, pkgv, 0)
	})
}

// ErrNoListen is Listen's answer for a queue that cannot notify: a bbolt
// file, or a queue reached over ssh.
var ErrNoListen = errors.New("the queue cannot notify (not a local PostgreSQL queue)")

// Listen calls wake whenever a package of this dist becomes Needs-Build
// in the queue, until ctx ends or the connection fails; ready is called
// once it listens. Only a PostgreSQL queue can do this (LISTEN/NOTIFY).
func (c *Client) Listen(ctx context.Context, ready, wake func()) error {
	if c.Remote() || !pg.IsURL(c.DB) {
		return ErrNoListen
	}
	want := c.dist.DistName + "/" + c.dist.BuiltArchitecture
	return pg.Listen(ctx, c.DB, ready, func(payload string) {
		if payload == want {
			wake()
		}
	})
}

// Renew renews the leases of pkgvs, which this builder is building, for
// the dist's lease_timeout, and returns those the queue refused to renew:
// no longer this builder's (the lease ended and the package was given
// back), or gone.
func (c *Client) Renew(ctx context.Context, pkgvs ...string) (lost []string, err error) {
	if c.dist.Lease() <= 0 || len(pkgvs) == 0 {
		return nil, nil
	}
	if c.Remote() {
		out, err := c.remote(ctx, nil, append([]string{"--renew", fmt.Sprintf("--lease=%d", c.dist.Lease())}, pkgvs...)...)
		if err != nil {
			return nil, err
		}
		return parseRenew(out, pkgvs), nil
	}
	err = c.local(false, func(tx queue.Tx, s *queue.Session) error {
		lost = nil // a PostgreSQL transaction may run again
		for _, p := range pkgvs {
			err := s.Renew(tx, p)
			if queue.IsPackageError(err) {
				lost = append(lost, p)
				continue
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return lost, err
}

// ExpireLeases gives back the packages of the dist whose lease ended, and
// returns them.
func (c *Client) ExpireLeases(ctx context.Context) ([]queue.Expired, error) {
	if c.Remote() {
		out, err := c.remote(ctx, nil, "--expire-leases")
		if err != nil {
			return nil, err
		}
		return parseExpired(out)
	}
	var expired []queue.Expired
	err := c.local(false, func(tx queue.Tx, s *queue.Session) error {
		var err error
		expired, err = s.ExpireLeases(tx)
		return err
	})
	return expired, err
}

// Info returns what the queue knows about the source package name ("name"
// or "name_version").
func (c *Client) Info(ctx context.Context, name string) (*Info, error) {
	name = debversion.SplitPkgVersion(name).Name
	if c.Remote() {
		out, err := c.remote(ctx, nil, "--info", name)
		if err != nil {
			return nil, err
		}
		return parseInfo(name, out)
	}
	var info *Info
	err := c.local(true, func(tx queue.Tx, s *queue.Session) error {
		r, err := tx.Get(name)
		if err != nil {
			return err
		}
		if r == nil {
			return &Refused{Pkg: name, Msg: "not registered"}
		}
		info = &Info{
			Name: r.Package, Version: r.Version, State: string(r.State), Builder: r.Builder,
			Section: r.Section, Priority: r.Priority, InstalledVersion: r.InstalledVersion,
			PreviousState: string(r.PreviousState), FailedText: r.Failed, OldFailed: r.OldFailed,
			BinNMU: r.BinNMU, BinNMUChangelog: r.BinNMUChangelog, Depends: r.Depends,
			BDProblem: r.BDProblem, Notes: r.Notes, BuildPri: r.BuildPri, PermBuildPri: r.PermBuildPri,
			CalPrio: queue.CalPrio(r, s.Now),
		}
		if r.StateChange != 0 {
			info.StateChange = r.StateChangeTime().Format(queue.TimeFormat)
		}
		return nil
	})
	return info, err
}

// sshArgs is the classic WANNA_BUILD_SSH_CMD followed by the wanna-build
// command line, each word quoted for the remote shell.
func (c *Client) sshArgs(args ...string) []string {
	d := c.dist
	var cmd []string
	if d.WannaBuildSSHSocket != "" {
		cmd = append(cmd, "-S", d.WannaBuildSSHSocket)
	}
	cmd = append(cmd, d.WannaBuildSSHOptions...)
	host := d.WannaBuildSSHHost
	if d.WannaBuildSSHUser != "" {
		host = d.WannaBuildSSHUser + "@" + host
	}
	cmd = append(cmd, host, "wanna-build")
	wb := []string{"--arch=" + d.BuiltArchitecture, "--dist=" + d.DistName}
	if c.user() != "" {
		wb = append(wb, "--user="+c.user())
	}
	for _, a := range append(wb, args...) {
		cmd = append(cmd, shellQuote(a))
	}
	return cmd
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.,:/+~@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (c *Client) remote(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := commandContext(ctx, c.SSH, c.sshArgs(args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", c.SSH, strings.Join(args, " "), err, strings.TrimSpace(errb.String()+out.String()))
	}
	if errb.Len() > 0 {
		fmt.Fprint(os.Stderr, errb.String())
	}
	return out.String(), nil
}

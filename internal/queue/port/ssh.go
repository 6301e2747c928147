package port

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"buildd/internal/config"
	"buildd/internal/queue"
)

// Remote is the port of a queue on another host: each call runs
// wanna-build there over ssh (the classic WANNA_BUILD_SSH_CMD: the dist's
// wanna_build_ssh_socket, _options, _user and _host) and reads its one
// JSON line (wire.go).
type Remote struct {
	dist *config.Dist
	// SSH is the ssh program.
	SSH string
}

var _ queue.Port = (*Remote)(nil)

func (p *Remote) NeedsBuild(ctx context.Context) ([]queue.Candidate, error) {
	a, err := p.call(ctx, nil, "--list=needs-build")
	if err != nil {
		return nil, err
	}
	return a.Candidates, nil
}

func (p *Remote) set(ctx context.Context, opt, pkgv string, stdin []byte) error {
	_, err := p.call(ctx, stdin, opt, pkgv)
	return err
}

func (p *Remote) Take(ctx context.Context, pkgv string) error {
	if l := p.dist.Lease(); l > 0 {
		_, err := p.call(ctx, nil, "--take", fmt.Sprintf("--lease=%d", l), pkgv)
		return err
	}
	return p.set(ctx, "--take", pkgv, nil)
}
func (p *Remote) Built(ctx context.Context, pkgv string) error {
	return p.set(ctx, "--built", pkgv, nil)
}
func (p *Remote) Attempted(ctx context.Context, pkgv string) error {
	return p.set(ctx, "--attempted", pkgv, nil)
}
func (p *Remote) GiveBack(ctx context.Context, pkgv string) error {
	return p.set(ctx, "--give-back", pkgv, nil)
}
func (p *Remote) Uploaded(ctx context.Context, pkgv string) error {
	return p.set(ctx, "--uploaded", pkgv, nil)
}
func (p *Remote) NoBuild(ctx context.Context, pkgv string) error {
	return p.set(ctx, "--no-build", pkgv, nil)
}

// Failed sends msg on stdin as the classic tool reads it: lines ended by
// one of a single ".".
func (p *Remote) Failed(ctx context.Context, pkgv, msg string) error {
	return p.set(ctx, "--failed", pkgv, []byte(failureText(msg)+"\n.\n"))
}
func (p *Remote) DepWait(ctx context.Context, pkgv, deps string) error {
	return p.set(ctx, "--dep-wait", pkgv, []byte(depList(deps)+"\n"))
}

func (p *Remote) Renew(ctx context.Context, pkgvs ...string) ([]string, error) {
	if p.dist.Lease() <= 0 || len(pkgvs) == 0 {
		return nil, nil
	}
	a, err := p.call(ctx, nil, append([]string{"--renew", fmt.Sprintf("--lease=%d", p.dist.Lease())}, pkgvs...)...)
	if err != nil {
		return nil, err
	}
	return a.Lost, nil
}

func (p *Remote) ExpireLeases(ctx context.Context) ([]queue.Expired, error) {
	a, err := p.call(ctx, nil, "--expire-leases")
	if err != nil {
		return nil, err
	}
	return a.Expired, nil
}

func (p *Remote) Info(ctx context.Context, name string) (*queue.Info, error) {
	a, err := p.call(ctx, nil, "--info", name)
	if err != nil {
		return nil, err
	}
	if a.Info == nil {
		return nil, fmt.Errorf("--info %s: the queue host's answer has no info", name)
	}
	return a.Info, nil
}

// PutLog runs wanna-build --put-log with gz on its stdin.
func (p *Remote) PutLog(ctx context.Context, l queue.BuildLog, gz io.Reader) error {
	l.Dist, l.Arch, l.Builder = p.dist.DistName, p.dist.BuiltArchitecture, p.dist.WannaBuildDBUser
	pkgv := l.PkgVersion()
	_, err := p.run(ctx, gz, "--put-log", "--log-time="+strconv.FormatInt(l.Time, 10), "--log-status="+string(l.Status),
		"--log-expires="+strconv.FormatInt(l.Expires, 10), pkgv)
	if err != nil {
		return fmt.Errorf("log %s: %w", pkgv, err)
	}
	return nil
}

// Revisions runs wanna-build --report-revisions with held on its stdin
// (queue.WriteHeld). A queue host whose wanna-build is older than the
// call answers with a usage error, which is the error returned.
func (p *Remote) Revisions(ctx context.Context, held []queue.HeldRevision) (string, error) {
	var b bytes.Buffer
	if err := queue.WriteHeld(&b, held); err != nil {
		return "", err
	}
	a, err := p.call(ctx, b.Bytes(), "--report-revisions")
	if err != nil {
		return "", err
	}
	if a.Required != "" && !queue.ValidUUID(a.Required) {
		return "", fmt.Errorf("--report-revisions: the queue host's answer requires %q, not a UUID", a.Required)
	}
	return a.Required, nil
}

// End runs wanna-build --end with e on its stdin. A queue host whose
// wanna-build is older than the call answers with a usage error: the
// outcome is then told with the classic call, and no build is kept.
func (p *Remote) End(ctx context.Context, pkgv string, e queue.BuildEnd) (*queue.BuildRecord, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	a, err := p.call(ctx, body, "--end", pkgv)
	if err != nil && errors.Is(err, errNoJSON) {
		switch e.Outcome {
		case queue.Successful:
			return nil, p.Built(ctx, pkgv)
		case queue.Attempted:
			return nil, p.Attempted(ctx, pkgv)
		}
		return nil, p.GiveBack(ctx, pkgv)
	}
	if err != nil {
		return nil, err
	}
	return a.Build, nil
}

// Heartbeat runs wanna-build --heartbeat with st on its stdin.
func (p *Remote) Heartbeat(ctx context.Context, st queue.BuilderStatus) error {
	body, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = p.call(ctx, body, "--heartbeat")
	return err
}

// Builders runs wanna-build --builders.
func (p *Remote) Builders(ctx context.Context) ([]queue.BuilderStatus, error) {
	a, err := p.call(ctx, nil, "--builders")
	if err != nil {
		return nil, err
	}
	return a.Builders, nil
}

// Close: nothing is kept between calls.
func (p *Remote) Close() error { return nil }

func (p *Remote) call(ctx context.Context, stdin []byte, args ...string) (*Answer, error) {
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	return p.run(ctx, in, args...)
}

// run runs wanna-build on the queue host with args and reads its answer.
func (p *Remote) run(ctx context.Context, stdin io.Reader, args ...string) (*Answer, error) {
	cmd := exec.CommandContext(ctx, p.SSH, p.sshArgs(args...)...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	a, err := decode(out.Bytes())
	if errors.Is(err, errNoJSON) {
		what := strings.TrimSpace(errb.String() + out.String())
		if runErr != nil {
			return nil, fmt.Errorf("%s %s: %w: %s (%v)", p.SSH, strings.Join(args, " "), runErr, what, err)
		}
		return nil, fmt.Errorf("%s %s: %w: %s", p.SSH, strings.Join(args, " "), err, what)
	}
	if errb.Len() > 0 {
		fmt.Fprint(os.Stderr, errb.String())
	}
	return a, err
}

// sshArgs is the classic WANNA_BUILD_SSH_CMD followed by the wanna-build
// command line, each word quoted for the remote shell.
func (p *Remote) sshArgs(args ...string) []string {
	d := p.dist
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
	wb := []string{"--json=" + strconv.Itoa(WireVersion), "--arch=" + d.BuiltArchitecture, "--dist=" + d.DistName}
	if d.WannaBuildDBUser != "" {
		wb = append(wb, "--user="+d.WannaBuildDBUser)
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

package machine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// PushOptions say how Push reaches a build host.
type PushOptions struct {
	// SSH is the ssh command with its options, before the destination
	// (e.g. ssh -o BatchMode=yes); nil is plain ssh.
	SSH []string
	// Remote is `buildd machine` on the host (push_command).
	Remote []string
}

// PushResult is what one push did.
type PushResult struct {
	Host     string
	Revision string // the revision sent, NAME-N here
	UUID     string
	Parent   string // the revision the stream was incremental from; "" for a full one
	UpToDate bool   // the host had the revision current already: nothing sent
	Bytes    int64  // the stream's size
	Took     time.Duration
	Received string // the revision's name on the host
}

// String is the line `buildd machine push` prints for the result.
func (r PushResult) String() string {
	if r.UpToDate {
		return fmt.Sprintf("%s: up to date (%s, UUID %s, is %s there)", r.Host, r.Revision, r.UUID, r.Received)
	}
	from := "whole"
	if r.Parent != "" {
		from = "incremental from " + r.Parent
	}
	return fmt.Sprintf("%s: pushed %s (UUID %s) %s, %.1f MiB in %.1f s, received as %s",
		r.Host, r.Revision, r.UUID, from, float64(r.Bytes)/(1<<20), r.Took.Seconds(), r.Received)
}

// RemoteRevision is one revision a host holds, as `buildd machine
// revisions NAME` prints it.
type RemoteRevision struct {
	Name    string
	UUID    string
	Current bool
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// safeWord is what Push puts on a remote command line unquoted: a machine
// name, a dist, an architecture.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]*$`)

// Push ships machine name's current revision to host: it asks the host
// which revisions it holds, sends incrementally from the newest revision
// both hold (by UUID), or whole when they share none, into `buildd machine
// receive` there, and checks the host received what was sent.
func (s *Store) Push(ctx context.Context, name, host string, opt PushOptions) (PushResult, error) {
	res := PushResult{Host: host}
	m, err := s.Machine(name)
	if err != nil {
		return res, err
	}
	var cur *Revision
	for i := range m.Revisions {
		if m.Revisions[i].Current {
			cur = &m.Revisions[i]
		}
	}
	if cur == nil || cur.UUID == "" {
		return res, fmt.Errorf("push %s: no current revision to push", name)
	}
	res.Revision, res.UUID = cur.Name, cur.UUID
	words := []string{name, m.Dist, m.Arch}
	if m.Cross != "" {
		words = append(words, m.Cross)
	}
	for _, w := range words {
		if !safeWord.MatchString(w) {
			return res, fmt.Errorf("push %s: %q cannot go on a remote command line", name, w)
		}
	}
	held, err := s.remoteRevisions(ctx, name, host, opt)
	if err != nil {
		return res, err
	}
	has := map[string]bool{}
	for _, r := range held {
		if r.UUID == cur.UUID {
			if !r.Current {
				return res, fmt.Errorf("push %s to %s: the host holds revision %s (UUID %s) as %s, but not as current", name, host, cur.Name, cur.UUID, r.Name)
			}
			res.UpToDate, res.Received = true, r.Name
			return res, nil
		}
		has[r.UUID] = true
	}
	for _, r := range m.Revisions {
		if r.Number < cur.Number && r.ReadOnly && has[r.UUID] {
			res.Parent = r.Name
		}
	}
	start := time.Now()
	out, err := s.pushStream(ctx, name, host, cur.Name, res.Parent, m, opt, &res.Bytes)
	res.Took = time.Since(start)
	if err != nil {
		return res, err
	}
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != "received" || f[2] != cur.UUID {
		return res, fmt.Errorf("push %s to %s: the host answered %q, not \"received %s-N %s\"", name, host, strings.TrimSpace(out), name, cur.UUID)
	}
	res.Received = f[1]
	return res, nil
}

// pushStream pipes Send into the host's receive and returns what the
// host printed.
func (s *Store) pushStream(ctx context.Context, name, host, rev, parent string, m Machine, opt PushOptions, n *int64) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := []string{"receive", name, "--dist", m.Dist, "--arch", m.Arch}
	if m.Cross != "" {
		args = append(args, "--cross", m.Cross)
	}
	c := s.remote(ctx, host, opt, args...)
	stdin, err := c.StdinPipe()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	c.Stdout = &limitedWriter{w: &out, n: 4096}
	c.Stderr = s.log()
	if err := c.Start(); err != nil {
		return "", fmt.Errorf("push %s to %s: %w", name, host, err)
	}
	cw := &countingWriter{w: stdin}
	serr := s.Send(ctx, name, rev, parent, cw)
	*n = cw.n
	stdin.Close()
	if serr != nil {
		cancel()
	}
	rerr := c.Wait()
	if serr != nil || rerr != nil {
		if rerr != nil {
			rerr = fmt.Errorf("push %s to %s: %s: %w", name, host, strings.Join(c.Args, " "), rerr)
		}
		return "", errors.Join(serr, rerr)
	}
	return out.String(), nil
}

// remoteRevisions asks host which revisions of name it holds.
func (s *Store) remoteRevisions(ctx context.Context, name, host string, opt PushOptions) ([]RemoteRevision, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := s.remote(ctx, host, opt, "revisions", name)
	var out strings.Builder
	c.Stdout = &limitedWriter{w: &out, n: 64 * 1024}
	c.Stderr = s.log()
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("push %s to %s: %s: %w", name, host, strings.Join(c.Args, " "), err)
	}
	revs, err := ParseRevisions(strings.NewReader(out.String()))
	if err != nil {
		return nil, fmt.Errorf("push %s to %s: revisions: %w", name, host, err)
	}
	return revs, nil
}

// remote is the ssh command running `buildd machine ARGS` on host.
func (s *Store) remote(ctx context.Context, host string, opt PushOptions, args ...string) *exec.Cmd {
	ssh := opt.SSH
	if len(ssh) == 0 {
		ssh = []string{"ssh"}
	}
	cmd := append(append(append([]string{}, ssh[1:]...), "--", host), opt.Remote...)
	cmd = append(cmd, args...)
	fmt.Fprintf(s.log(), "+ %s %s\n", ssh[0], strings.Join(cmd, " "))
	return exec.CommandContext(ctx, ssh[0], cmd...)
}

// FormatRevisions writes what `buildd machine revisions NAME` prints: a
// line "REVISION UUID current|-" for each revision of the machine,
// nothing for a machine the store does not have.
func (s *Store) FormatRevisions(name string, w io.Writer) error {
	if err := checkName(name); err != nil {
		return err
	}
	m, err := s.Machine(name)
	if err != nil {
		return nil
	}
	for _, r := range m.Revisions {
		if r.UUID == "" || !r.ReadOnly {
			continue
		}
		cur := "-"
		if r.Current {
			cur = "current"
		}
		if _, err := fmt.Fprintf(w, "%s %s %s\n", r.Name, r.UUID, cur); err != nil {
			return err
		}
	}
	return nil
}

// ParseRevisions reads FormatRevisions' lines; a line that is not one is
// an error naming it.
func ParseRevisions(r io.Reader) ([]RemoteRevision, error) {
	var revs []RemoteRevision
	sc := bufio.NewScanner(r)
	for i := 1; sc.Scan(); i++ {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || !nameRE.MatchString(f[0]) || !uuidRE.MatchString(f[1]) || f[2] != "current" && f[2] != "-" {
			return nil, fmt.Errorf("line %d: bad line %q", i, sc.Text())
		}
		if len(revs) == 1000 {
			return nil, fmt.Errorf("line %d: more than 1000 revisions", i)
		}
		revs = append(revs, RemoteRevision{Name: f[0], UUID: f[1], Current: f[2] == "current"})
	}
	return revs, sc.Err()
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

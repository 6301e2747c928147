package port

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"buildd/internal/debversion"
	"buildd/internal/queue"
)

// The wire protocol between a builder host and a queue host over ssh:
// the builder runs
//
//	wanna-build --json=1 --arch=A --dist=D --user=U [--lease=N] OPTION ARGS...
//
// with the classic option of the call (--take PKG_VERSION, --built, ...,
// --list=needs-build, --renew, --expire-leases, --info NAME, --put-log,
// --report-revisions, --end, --heartbeat, --builders), a failure text or dependency list (classic form),
// a log (gzip), the machine's revisions (queue.WriteHeld) or a build's
// end or a heartbeat (one JSON object) on stdin, and
// the queue host answers with one JSON line, an Answer, made by Serve
// from this package's local port. The classic text output stays as it
// was for people; a wanna-build that does not know --json answers with a
// usage error, which the builder reports as such.
//
// Both sides must speak the same version: a change of what a call sends
// or answers is a new one. A call added to the protocol keeps it: a
// queue host's wanna-build that is older than the call refuses its
// option with a usage error, which fails that call only, and the
// builder goes on without it (--report-revisions: buildd then knows of
// no required revision; --heartbeat: the builder is not seen when idle;
// --end: buildd tells the outcome with the classic call instead, and no
// build is kept).

// WireVersion is the protocol version of --json.
const WireVersion = 1

// Answer is the one line the queue host writes.
type Answer struct {
	V          int                   `json:"v"`
	Refused    *Refusal              `json:"refused,omitempty"`
	Error      string                `json:"error,omitempty"`
	Kind       string                `json:"kind,omitempty"` // of Error: "locked", "damaged", "refused"
	Candidates []queue.Candidate     `json:"candidates,omitempty"`
	Lost       []string              `json:"lost,omitempty"`
	Expired    []queue.Expired       `json:"expired,omitempty"`
	Info       *queue.Info           `json:"info,omitempty"`
	Required   string                `json:"required,omitempty"` // report-revisions: the UUID the queue requires
	Build      *queue.BuildRecord    `json:"build,omitempty"`    // end: the build as kept, if it was
	Builders   []queue.BuilderStatus `json:"builders,omitempty"` // builders: the queue's heartbeats
}

// Refusal is a per-package refusal (queue.Refused) on the wire.
type Refusal struct {
	Pkg string `json:"pkg"`
	Msg string `json:"msg"`
}

// Request is one call as the queue host's wanna-build reads it from its
// command line and stdin.
type Request struct {
	Op        string   // the classic option's name: take, built, ..., list, renew, expire-leases, info, put-log, report-revisions
	Args      []string // package arguments
	Message   string   // failed, dep-wait
	Log       queue.BuildLog
	LogData   io.Reader // put-log
	Revisions io.Reader // report-revisions: the held revisions (queue.ReadHeld)
	Body      io.Reader // end: a queue.BuildEnd, heartbeat: a queue.BuilderStatus, as one JSON object
}

// maxBody is the most bytes of a JSON Body read.
const maxBody = 16 << 10

// readBody decodes req.Body, at most maxBody bytes, into v.
func readBody(req Request, v any) error {
	if req.Body == nil {
		return fmt.Errorf("--json --%s: nothing on stdin", req.Op)
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("--json --%s: stdin: %w", req.Op, err)
	}
	if len(data) > maxBody {
		return fmt.Errorf("--json --%s: stdin: more than %d bytes", req.Op, maxBody)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("--json --%s: stdin: %w", req.Op, err)
	}
	return nil
}

// Serve answers req with p, writing one Answer line to w. An error is
// returned only when the line cannot be written or the request is not
// one of the protocol's.
func Serve(ctx context.Context, p queue.Port, req Request, w io.Writer) error {
	a := Answer{V: WireVersion}
	one := func() (string, error) {
		if len(req.Args) != 1 {
			return "", fmt.Errorf("--json --%s takes one package, not %d", req.Op, len(req.Args))
		}
		return req.Args[0], nil
	}
	var err error
	switch req.Op {
	case "list":
		a.Candidates, err = p.NeedsBuild(ctx)
	case "renew":
		a.Lost, err = p.Renew(ctx, req.Args...)
	case "expire-leases":
		a.Expired, err = p.ExpireLeases(ctx)
	case "report-revisions":
		if len(req.Args) > 0 {
			return fmt.Errorf("--json --report-revisions takes no package, not %d", len(req.Args))
		}
		var held []queue.HeldRevision
		if held, err = queue.ReadHeld(req.Revisions, "stdin"); err == nil {
			a.Required, err = p.Revisions(ctx, held)
		}
	case "heartbeat", "builders":
		if len(req.Args) > 0 {
			return fmt.Errorf("--json --%s takes no package, not %d", req.Op, len(req.Args))
		}
		if req.Op == "builders" {
			a.Builders, err = p.Builders(ctx)
			break
		}
		var st queue.BuilderStatus
		if err = readBody(req, &st); err != nil {
			return err
		}
		err = p.Heartbeat(ctx, st)
	case "end":
		var pkgv string
		if pkgv, err = one(); err != nil {
			return err
		}
		var e queue.BuildEnd
		if err = readBody(req, &e); err != nil {
			return err
		}
		a.Build, err = p.End(ctx, pkgv, e)
	case "take", "built", "attempted", "give-back", "uploaded", "no-build", "failed", "dep-wait", "info", "put-log":
		var pkgv string
		if pkgv, err = one(); err != nil {
			return err
		}
		switch req.Op {
		case "take":
			err = p.Take(ctx, pkgv)
		case "built":
			err = p.Built(ctx, pkgv)
		case "attempted":
			err = p.Attempted(ctx, pkgv)
		case "give-back":
			err = p.GiveBack(ctx, pkgv)
		case "uploaded":
			err = p.Uploaded(ctx, pkgv)
		case "no-build":
			err = p.NoBuild(ctx, pkgv)
		case "failed":
			err = p.Failed(ctx, pkgv, req.Message)
		case "dep-wait":
			err = p.DepWait(ctx, pkgv, req.Message)
		case "info":
			a.Info, err = p.Info(ctx, pkgv)
		case "put-log":
			l := req.Log
			pv := debversion.SplitPkgVersion(pkgv)
			l.Package, l.Version = pv.Name, pv.Version
			err = p.PutLog(ctx, l, req.LogData)
		}
	default:
		return fmt.Errorf("--json: --%s is not a call of the protocol", req.Op)
	}
	var r *queue.Refused
	switch {
	case errors.As(err, &r):
		a.Refused = &Refusal{Pkg: r.Pkg, Msg: r.Msg}
	case err != nil:
		a.Error = err.Error()
		for kind, target := range errKinds {
			if errors.Is(err, target) {
				a.Kind = kind
			}
		}
	}
	line, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = w.Write(append(line, '\n'))
	return err
}

// errKinds are the queue errors that keep their identity on the wire.
var errKinds = map[string]error{"locked": queue.ErrLocked, "damaged": queue.ErrDamaged, "refused": queue.ErrRefused}

// decode reads the Answer in out; a refusal or an error of the queue host
// is returned as the local port returns it.
func decode(out []byte) (*Answer, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var a Answer
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &a) != nil || a.V == 0 {
		return nil, errNoJSON
	}
	if a.V != WireVersion {
		return nil, fmt.Errorf("the queue host answers protocol %d, this program speaks %d: install the same version on both", a.V, WireVersion)
	}
	switch {
	case a.Refused != nil:
		return nil, &queue.Refused{Pkg: a.Refused.Pkg, Msg: a.Refused.Msg}
	case a.Error != "" && errKinds[a.Kind] != nil:
		return nil, fmt.Errorf("%w (on the queue host: %s)", errKinds[a.Kind], a.Error)
	case a.Error != "":
		return nil, fmt.Errorf("on the queue host: %s", a.Error)
	}
	return &a, nil
}

// errNoJSON is an answer that is not the protocol's.
var errNoJSON = fmt.Errorf("no --json=%d answer: the queue host's wanna-build must be this suite's, with --json (protocol %d)", WireVersion, WireVersion)

// failureText is a --failed message as the queue stores it.
func failureText(msg string) string { return strings.TrimRight(msg, "\n") }

// depList is a --dep-wait list as the queue stores it.
func depList(deps string) string { return strings.TrimSpace(deps) }

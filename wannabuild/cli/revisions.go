package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// The build machine revisions (internal/queue/revisions.go): what the
// builders report of their machines, and the revision a queue requires
// of them.

// requireArg parses --require-revision's value: a UUID (either case,
// kept in lower case), or "" to lift the requirement.
func requireArg(o *options, v string) error {
	u := strings.ToLower(v)
	if u != "" && !queue.ValidUUID(u) {
		return fmt.Errorf("not a UUID (want 8-4-4-4-12 hex digits, as btrfs subvolume show prints it; empty to require none)")
	}
	o.setMode("require-revision")
	o.requireUUID = u
	return nil
}

// pair is the run's queue.
func (r *run) pair() queue.Pair { return queue.Pair{Dist: r.s.Dist, Arch: r.s.Arch} }

// noArgs fails the run when the mode was given package arguments.
func (r *run) noArgs() (int, bool) {
	if len(r.o.args) > 0 {
		return r.fail(exitUsage, "--%s takes no arguments, not %q", r.o.mode, r.o.args[0])
	}
	return exitOK, true
}

// reportRevisions replaces the -U user's report of the queue's machine
// revisions with the one on stdin (--report-revisions): one revision a
// line, MACHINE REVISION UUID, then "current" for the current one. It is
// how buildd reports them over ssh (with --json); by hand it says what
// the queue requires.
func (r *run) reportRevisions() int {
	if status, ok := r.noArgs(); !ok {
		return status
	}
	held, err := queue.ReadHeld(r.stdin, "stdin")
	if err == nil {
		err = queue.CheckReport(r.s.User, r.pair(), held)
	}
	if err != nil {
		status, _ := r.fail(exitUsage, "--report-revisions: %v (nothing reported)", err)
		return status
	}
	db, status, ok := r.open(false)
	if !ok {
		return status
	}
	defer db.Close()
	required, err := db.ReportRevisions(r.s.User, r.pair(), held)
	if err != nil {
		status, _ := r.fail(exitDB, "%s: %v (nothing reported)", store.Name(r.dbPath), err)
		return status
	}
	fmt.Fprintf(r.s.Out, "%s/%s: %d revision(s) of %s reported; %s\n", r.s.Dist, r.s.Arch, len(held), r.s.User, requiredSentence(r.pair(), held, required))
	return exitOK
}

// requiredSentence says what the requirement means for a builder that
// holds held.
func requiredSentence(p queue.Pair, held []queue.HeldRevision, required string) string {
	cur, ok := queue.CurrentOf(held)
	switch {
	case required == "":
		return "the queue requires no revision"
	case ok && cur.UUID == required:
		return "the queue requires revision " + required + ", the current one"
	case ok:
		return fmt.Sprintf("the queue requires revision %s, not the current %s (%s): it takes nothing from %s/%s until it has it",
			required, cur.Revision, cur.UUID, p.Dist, p.Arch)
	}
	return fmt.Sprintf("the queue requires revision %s, and none is current: it takes nothing from %s/%s until it has it", required, p.Dist, p.Arch)
}

// requireRevision sets or lifts the queue's required revision
// (--require-revision=UUID, empty for none). On PostgreSQL the database
// lets only the admin.
func (r *run) requireRevision() int {
	if status, ok := r.noArgs(); !ok {
		return status
	}
	db, status, ok := r.open(false)
	if !ok {
		return status
	}
	defer db.Close()
	if err := db.RequireRevision(r.pair(), r.o.requireUUID, r.s.User); err != nil {
		status, _ := r.fail(exitDB, "%s: %v (nothing changed)", store.Name(r.dbPath), err)
		return status
	}
	if r.o.requireUUID == "" {
		fmt.Fprintf(r.s.Out, "%s/%s requires no revision\n", r.s.Dist, r.s.Arch)
		return exitOK
	}
	fmt.Fprintf(r.s.Out, "%s/%s requires revision %s: a builder whose machine is on another takes nothing from it until it has this one\n",
		r.s.Dist, r.s.Arch, r.o.requireUUID)
	return exitOK
}

// listRevisions prints the queue's required revision, what each builder
// reported of its machine (a table: builder, machine, revision, UUID,
// current, reported), and which builders are behind (--revisions).
func (r *run) listRevisions() int {
	if status, ok := r.noArgs(); !ok {
		return status
	}
	db, status, ok := r.open(true)
	if !ok {
		return status
	}
	defer db.Close()
	p := r.pair()
	reports, err := db.Revisions("", p)
	var all []queue.RequiredRevision
	if err == nil {
		all, err = db.RequiredRevisions()
	}
	if err != nil {
		status, _ := r.fail(exitDB, "%s: %v", store.Name(r.dbPath), err)
		return status
	}
	var req queue.RequiredRevision
	for _, q := range all {
		if q.Pair == p {
			req = q
		}
	}
	out := r.s.Out
	if req.UUID == "" {
		fmt.Fprintf(out, "%s/%s requires no revision.\n", p.Dist, p.Arch)
	} else {
		fmt.Fprintf(out, "%s/%s requires revision %s (set by %s at %s UTC).\n", p.Dist, p.Arch, req.UUID, req.SetBy, timeOf(req.Set))
	}
	if len(reports) == 0 {
		fmt.Fprintf(out, "No builder reported revisions of %s/%s.\n", p.Dist, p.Arch)
		return exitOK
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "builder\tmachine\trevision\tUUID\tcurrent\treported (UTC)")
	for _, rep := range reports {
		cur := ""
		if rep.Current {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rep.Builder, rep.Machine, rep.Revision, rep.UUID, cur, timeOf(rep.Reported))
	}
	tw.Flush()
	if behind := queue.Behind(reports, req.UUID); len(behind) > 0 {
		fmt.Fprintf(out, "Behind, taking nothing from %s/%s until their machine is on %s: %s\n", p.Dist, p.Arch, req.UUID, strings.Join(behind, ", "))
	}
	return exitOK
}

// timeOf is unix seconds as the listings write times (UTC).
func timeOf(t int64) string { return time.Unix(t, 0).UTC().Format(queue.TimeFormat) }

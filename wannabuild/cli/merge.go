package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	"buildd/internal/mailer"
	"buildd/internal/queue"
	"buildd/wannabuild/dose"
)

// merge is --merge-v3: read the indexes (no lock held), check
// installability when the config asks for it, apply everything in one
// transaction, then mail the builders whose package got a new version.
func (r *run) merge() int {
	// The indexes are read once and kept: trade memory for less GC work.
	debug.SetGCPercent(400)
	s := r.s
	args := make([]string, len(r.o.args))
	for i, a := range r.o.args {
		args[i] = strings.NewReplacer("%ARCH%", s.Arch, "%SUITE%", s.Dist).Replace(a)
	}
	files, err := queue.ParseMergeArgs(args)
	if err != nil {
		status, _ := r.fail(exitUsage, "%v", err)
		return status
	}
	if r.o.pas != "" {
		files.ArchSpecific = append(files.ArchSpecific, r.o.pas)
	}
	archive, err := queue.ReadArchive(s.Arch, files)
	if err != nil {
		status, _ := r.fail(exitUsage, "merge-v3: %v (nothing changed)", err)
		return status
	}
	var inst *queue.Installability
	if s.CheckInstall {
		var cands []*queue.Source
		if status := r.view(func(tx queue.Tx) error {
			var err error
			cands, err = s.InstallCandidates(tx, archive)
			return err
		}); status != exitOK {
			return status
		}
		inst = &queue.Installability{Checked: map[string]string{}}
		srcs := make([]dose.Source, len(cands))
		for i, c := range cands {
			srcs[i] = dose.Source{Name: c.Name, Version: c.Version, BuildDepends: c.BuildDepends, BuildConflicts: c.BuildConflicts}
			inst.Checked[c.Name] = c.Version
		}
		inst.Problems, err = dose.Check(context.Background(), s.Arch, archive.DepPackages, srcs)
		if err != nil {
			fmt.Fprintf(r.stderr, "ERROR: Could not run %s: %v\nI am continuing, assuming all packages have installable build-dependencies.\n", dose.Program, err)
			inst = nil
		}
	}
	var notices []queue.Notice
	var stats queue.MergeStats
	if status := r.update(func(tx queue.Tx) error {
		var err error
		notices, stats, err = s.Merge(tx, archive, inst)
		return err
	}); status != exitOK {
		return status
	}
	if s.Verbose {
		fmt.Fprintf(s.Out, "merge-v3: %d sources: %d new, %d changed, %d unchanged, %d deleted\n",
			stats.Sources, stats.New, stats.Changed, stats.Unchanged, stats.Deleted)
	}
	r.mail(notices)
	return exitOK
}

// BuilderAddress is where a builder's notices go: the builder name when it
// is a mail address, else builder@ this host.
func BuilderAddress(builder string) string {
	if strings.Contains(builder, "@") {
		return builder
	}
	return builder + "@" + mailer.Hostname()
}

func (r *run) mail(notices []queue.Notice) {
	if len(notices) == 0 {
		return
	}
	if r.cfg == nil {
		for _, n := range notices {
			fmt.Fprintf(r.stderr, "wanna-build: no config, cannot mail %s: %s\n", n.Builder, n.Subject)
		}
		return
	}
	m := mailer.New(r.cfg)
	for _, n := range notices {
		msg := &mailer.Message{
			From:    r.cfg.MailFrom,
			To:      []string{BuilderAddress(n.Builder)},
			Subject: n.Subject,
			Body:    n.Body,
			Header:  map[string]string{"Auto-Submitted": "auto-generated"},
		}
		if err := m.Send(msg); err != nil {
			fmt.Fprintf(r.stderr, "wanna-build: mail to %s (%s): %v\n", n.Builder, n.Subject, err)
		}
	}
}

package home

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"buildd/internal/queue"
)

// Finished is a build that has ended but whose end not everyone knows
// yet: buildd writes it to build/FINISHED as the build ends, before it
// tells the queue, then marks each step done (the queue told, the log
// spooled for the log store, the log mailed) and removes it, with the
// job's BUILDING line, once all are. A buildd that dies or loses its
// queue in between finds it there and goes on from the first step not
// done, instead of building the package again or losing its report.
type Finished struct {
	RedoEntry
	Status    string `json:"status"` // the build's outcome (queue.Outcome)
	FailStage string `json:"fail_stage,omitempty"`
	// Class and Resources are the build's (queue.BuildEnd), told to the
	// queue with its outcome.
	Class       queue.Class     `json:"class,omitempty"`
	Resources   queue.Resources `json:"resources,omitzero"`
	LogPath     string          `json:"log"`
	ChangesPath string          `json:"changes,omitempty"`
	Ended       time.Time       `json:"ended"`
	Reported    bool            `json:"reported,omitempty"` // the queue has the outcome
	Spooled     bool            `json:"spooled,omitempty"`  // the log is in the log spool
	Mailed      bool            `json:"mailed,omitempty"`   // the log mail is sent or in the mail spool
}

// Finished is build/FINISHED.
func (h Home) Finished() *FinishedFile { return &FinishedFile{path: h.Path("build", "FINISHED")} }

// FinishedFile is build/FINISHED: a Finished a line, as JSON.
type FinishedFile struct{ path string }

// Path is the file's path.
func (f *FinishedFile) Path() string { return f.path }

func (f *FinishedFile) parse(lines []string) ([]Finished, []error) {
	var out []Finished
	var bad []error
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var r Finished
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.PkgVersion == "" || r.Dist == "" || r.Status == "" {
			bad = append(bad, &LineError{f.path, i + 1, l, "bad line"})
			continue
		}
		out = append(out, r)
	}
	return out, bad
}

// Read returns the records; bad lines come back as *LineError and stay
// in the file for the admin.
func (f *FinishedFile) Read() ([]Finished, []error, error) {
	lines, err := lineFile{path: f.path}.read()
	if err != nil {
		return nil, nil, err
	}
	out, bad := f.parse(lines)
	return out, bad, nil
}

// Put writes r, in place of the record of the same package version,
// dist and arch if there is one.
func (f *FinishedFile) Put(r Finished) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", f.path, r.PkgVersion, err)
	}
	return f.edit(r.RedoEntry, string(b))
}

// Remove deletes the record of e's package version, dist and arch.
func (f *FinishedFile) Remove(e RedoEntry) error { return f.edit(e, "") }

// FillArch gives each record that names its dist alone (written before
// records carried the architecture) the architecture arch returns for its
// dist, rewriting the file once; a record arch gives none for ("": the
// dist is built for several, or not at all) is left as it is, as are bad
// lines.
func (f *FinishedFile) FillArch(arch func(dist string) string) error {
	return lineFile{path: f.path}.update(func(lines []string) ([]string, error) {
		out := slices.Clone(lines)
		for i, l := range lines {
			rs, bad := f.parse([]string{l})
			if len(bad) > 0 || len(rs) != 1 || rs[0].Arch != "" {
				continue
			}
			r := rs[0]
			if r.Arch = arch(r.Dist); r.Arch == "" {
				continue
			}
			b, err := json.Marshal(r)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", f.path, r.PkgVersion, err)
			}
			out[i] = string(b)
		}
		return out, nil
	})
}

// edit replaces the record of e's package version, dist and arch with
// line, or appends line when there is none; line "" removes it. Bad lines
// are kept.
func (f *FinishedFile) edit(e RedoEntry, line string) error {
	return lineFile{path: f.path}.update(func(lines []string) ([]string, error) {
		var out []string
		put := false
		for _, l := range lines {
			if rs, bad := f.parse([]string{l}); len(bad) == 0 && len(rs) == 1 && rs[0].PkgVersion == e.PkgVersion && rs[0].Dist == e.Dist && rs[0].Arch == e.Arch {
				if line != "" && !put {
					out = append(out, line)
					put = true
				}
				continue
			}
			out = append(out, l)
		}
		if line != "" && !put {
			out = append(out, line)
		}
		return out, nil
	})
}

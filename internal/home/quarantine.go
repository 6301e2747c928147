package home

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"buildd/internal/atomicfile"
)

// Quarantine is why and since when buildd takes no package: it had
// infrastructure failures in a row (its mirror, disk or machine is
// broken), and stays so until the admin ends it (buildd quarantine
// --end, or SIGUSR2) or a probe build succeeds.
type Quarantine struct {
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
}

// maxQuarantineFile bounds what is read of build/QUARANTINE and
// build/INFRA-FAILURES.
const maxQuarantineFile = 64 << 10

// Quarantine is build/QUARANTINE: one Quarantine as JSON while buildd is
// quarantined, no file otherwise.
func (h Home) Quarantine() *QuarantineFile {
	return &QuarantineFile{path: h.Path("build", "QUARANTINE")}
}

// QuarantineFile is build/QUARANTINE.
type QuarantineFile struct{ path string }

// Path is the file's path.
func (f *QuarantineFile) Path() string { return f.path }

// Read returns the quarantine, nil when there is none. A damaged file is
// an error naming it: buildd then stays quarantined, as the file says it
// is.
func (f *QuarantineFile) Read() (*Quarantine, error) {
	data, err := readState(f.path)
	if data == nil || err != nil {
		return nil, err
	}
	var q Quarantine
	if err := json.Unmarshal(data, &q); err != nil || q.Since.IsZero() || strings.TrimSpace(q.Reason) == "" {
		return nil, fmt.Errorf("%s: not a quarantine (want {\"since\": TIME, \"reason\": TEXT}): %q", f.path, clip(string(data)))
	}
	return &q, nil
}

// Put writes q, replacing any quarantine.
func (f *QuarantineFile) Put(q Quarantine) error {
	data, err := json.MarshalIndent(q, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(f.path, append(data, '\n'), 0o644)
}

// End removes the quarantine; none is no error.
func (f *QuarantineFile) End() error { return removeState(f.path) }

// readState reads the state file at path, at most maxQuarantineFile
// bytes of it (a larger file is an error naming it); nil when there is
// no file.
func readState(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxQuarantineFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxQuarantineFile {
		return nil, fmt.Errorf("%s: more than %d bytes", path, maxQuarantineFile)
	}
	return data, nil
}

// removeState removes the state file at path; none is no error.
func removeState(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// clip is s cut for an error message.
func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// InfraFailure is one of buildd's infrastructure failures in a row.
type InfraFailure struct {
	Build  string `json:"build"` // "hello_1.0 on amd64 (dist=sid)"
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Log    string `json:"log"`
}

// InfraFailures is build/INFRA-FAILURES: buildd's infrastructure
// failures in a row, kept across its restarts (a buildd killed between
// two does not start counting again); no file when there are none.
func (h Home) InfraFailures() *InfraFailuresFile {
	return &InfraFailuresFile{path: h.Path("build", "INFRA-FAILURES")}
}

// InfraFailuresFile is build/INFRA-FAILURES: a JSON array of
// InfraFailure.
type InfraFailuresFile struct{ path string }

// Path is the file's path.
func (f *InfraFailuresFile) Path() string { return f.path }

// Read returns the failures in a row, none when there is no file. A
// damaged file is an error naming it.
func (f *InfraFailuresFile) Read() ([]InfraFailure, error) {
	data, err := readState(f.path)
	if data == nil || err != nil {
		return nil, err
	}
	var fails []InfraFailure
	if err := json.Unmarshal(data, &fails); err != nil {
		return nil, fmt.Errorf("%s: not a list of failures: %q", f.path, clip(string(data)))
	}
	return fails, nil
}

// Put replaces the failures with fails (none: the file goes).
func (f *InfraFailuresFile) Put(fails []InfraFailure) error {
	if len(fails) == 0 {
		return removeState(f.path)
	}
	data, err := json.MarshalIndent(fails, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(f.path, append(data, '\n'), 0o644)
}

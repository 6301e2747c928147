package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"buildd/internal/debversion"
)

// Record is one source package of one (distribution, architecture): the
// classic wanna-build table row.
type Record struct {
	Package          string
	Version          string
	State            State
	Section          string
	Priority         string
	InstalledVersion string
	PreviousState    State
	StateChange      int64 // unix seconds
	Notes            string
	Builder          string
	Failed           string
	OldFailed        string
	BinNMU           int // binary NMU number, 0 for none
	BinNMUChangelog  string
	BuildPri         int
	PermBuildPri     int
	Depends          string // Dep-Wait dependencies
	BDProblem        string
	BuildTime        int64 // seconds of the last build, 0 if unknown
	SuccessTime      int64 // seconds of the last successful build, 0 if unknown
	ExtraDepends     string
	ExtraConflicts   string
	// LeaseUntil (unix seconds) is when a Building package's lease ends
	// unless its builder renews it; 0 is no lease (taken without one).
	LeaseUntil int64
	// LeaseRenewed (unix seconds) is when its builder last renewed the
	// lease; 0 is never. Renewals are not in the history.
	LeaseRenewed int64
}

// FullVersion is the version with the binNMU suffix (+bN) when one is
// scheduled.
func (r *Record) FullVersion() string {
	return debversion.PkgVersion{Name: r.Package, Version: r.Version}.WithBinNMU(r.BinNMU).Version
}

// StateChangeTime is StateChange as a time.
func (r *Record) StateChangeTime() time.Time { return time.Unix(r.StateChange, 0).UTC() }

// Encoding formats: 1 is the transactions' and the records' before
// LeaseUntil; 2 adds LeaseUntil at the end of a record; 3 then adds
// LeaseRenewed (a record that has none is written in format 2).
const (
	recordFormat      = 1
	leaseRecordFormat = 2
	renewRecordFormat = 3
)

// isRecordFormat reports whether f is a record's format.
func isRecordFormat(f byte) bool {
	return f == recordFormat || f == leaseRecordFormat || f == renewRecordFormat
}

// MarshalBinary encodes r compactly: a format byte, then every string as a
// uvarint length and its bytes and every number as a varint, in field order.
func (r *Record) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, 64+len(r.Package)+len(r.Failed)+len(r.OldFailed)+len(r.Depends)+len(r.BDProblem)))
}

// AppendBinary appends the encoding of r to b.
func (r *Record) AppendBinary(b []byte) ([]byte, error) {
	format := byte(leaseRecordFormat)
	if r.LeaseRenewed != 0 {
		format = renewRecordFormat
	}
	b = append(b, format)
	for _, s := range [...]string{r.Package, r.Version, string(r.State), r.Section, r.Priority,
		r.InstalledVersion, string(r.PreviousState), r.Notes, r.Builder, r.Failed, r.OldFailed,
		r.BinNMUChangelog, r.Depends, r.BDProblem, r.ExtraDepends, r.ExtraConflicts} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, n := range [...]int64{r.StateChange, int64(r.BinNMU), int64(r.BuildPri), int64(r.PermBuildPri), r.BuildTime, r.SuccessTime, r.LeaseUntil} {
		b = binary.AppendVarint(b, n)
	}
	if format == renewRecordFormat {
		b = binary.AppendVarint(b, r.LeaseRenewed)
	}
	return b, nil
}

var errShortRecord = errors.New("truncated record")

// UnmarshalBinary decodes data made by MarshalBinary. The strings share one
// copy of data, so decoding costs one allocation.
func (r *Record) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || !isRecordFormat(data[0]) {
		return fmt.Errorf("record: unknown format")
	}
	s := string(data)
	i := 1
	str := func() (string, error) {
		n, k := binary.Uvarint(data[i:])
		if k <= 0 || uint64(len(data)-i-k) < n {
			return "", errShortRecord
		}
		i += k
		v := s[i : i+int(n)]
		i += int(n)
		return v, nil
	}
	var state, prev string
	for _, p := range [...]*string{&r.Package, &r.Version, &state, &r.Section, &r.Priority,
		&r.InstalledVersion, &prev, &r.Notes, &r.Builder, &r.Failed, &r.OldFailed,
		&r.BinNMUChangelog, &r.Depends, &r.BDProblem, &r.ExtraDepends, &r.ExtraConflicts} {
		v, err := str()
		if err != nil {
			return fmt.Errorf("record: %w", err)
		}
		*p = v
	}
	r.State, r.PreviousState = State(state), State(prev)
	var nums [6]int64
	for j := range nums {
		n, k := binary.Varint(data[i:])
		if k <= 0 {
			return fmt.Errorf("record: %w", errShortRecord)
		}
		nums[j] = n
		i += k
	}
	r.StateChange, r.BinNMU, r.BuildPri, r.PermBuildPri = nums[0], int(nums[1]), int(nums[2]), int(nums[3])
	r.BuildTime, r.SuccessTime = nums[4], nums[5]
	for _, f := range []struct {
		since byte
		dst   *int64
	}{{leaseRecordFormat, &r.LeaseUntil}, {renewRecordFormat, &r.LeaseRenewed}} {
		if data[0] < f.since {
			break
		}
		n, k := binary.Varint(data[i:])
		if k <= 0 {
			return fmt.Errorf("record: %w", errShortRecord)
		}
		*f.dst = n
		i += k
	}
	return nil
}

// Transaction is one entry of the history: every change of a record.
type Transaction struct {
	Package  string
	Version  string
	Action   string // "--take", "--merge-v3: needs-build", ...
	From     State
	To       State
	RealUser string
	User     string
	Time     int64 // unix seconds
}

// Line is the classic transaction log line:
// "action(dist): pkg_ver changed from P to S by REAL as USER".
func (t *Transaction) Line(dist string) string {
	return fmt.Sprintf("%s(%s): %s_%s changed from %s to %s by %s as %s",
		t.Action, dist, t.Package, t.Version, t.From, t.To, t.RealUser, t.User)
}

// MarshalBinary encodes t like a Record.
func (t *Transaction) MarshalBinary() ([]byte, error) {
	b := []byte{recordFormat}
	for _, s := range [...]string{t.Package, t.Version, t.Action, string(t.From), string(t.To), t.RealUser, t.User} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return binary.AppendVarint(b, t.Time), nil
}

// UnmarshalBinary decodes data made by MarshalBinary.
func (t *Transaction) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] != recordFormat {
		return fmt.Errorf("transaction: unknown format")
	}
	s := string(data)
	i := 1
	var from, to string
	for _, p := range [...]*string{&t.Package, &t.Version, &t.Action, &from, &to, &t.RealUser, &t.User} {
		n, k := binary.Uvarint(data[i:])
		if k <= 0 || uint64(len(data)-i-k) < n {
			return fmt.Errorf("transaction: %w", errShortRecord)
		}
		i += k
		*p = s[i : i+int(n)]
		i += int(n)
	}
	t.From, t.To = State(from), State(to)
	n, k := binary.Varint(data[i:])
	if k <= 0 {
		return fmt.Errorf("transaction: %w", errShortRecord)
	}
	t.Time = n
	return nil
}

func timeOf(unix int64) string { return time.Unix(unix, 0).UTC().Format(TimeFormat) }

// StateOf reads only the state of an encoded record.
func StateOf(data []byte) (State, error) {
	if len(data) == 0 || !isRecordFormat(data[0]) {
		return "", fmt.Errorf("record: unknown format")
	}
	i := 1
	for f := 0; f < 3; f++ {
		n, k := binary.Uvarint(data[i:])
		if k <= 0 || uint64(len(data)-i-k) < n {
			return "", fmt.Errorf("record: %w", errShortRecord)
		}
		i += k
		if f == 2 {
			return State(data[i : i+int(n)]), nil
		}
		i += int(n)
	}
	return "", nil
}

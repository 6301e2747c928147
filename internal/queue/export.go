package queue

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The export format is the classic ASCII database: one paragraph per
// package, "key: value" lines with the classic column names, in a fixed
// order. Continuation lines start with a space; an empty line is " .", and
// a line starting with "." gets one more, so every value comes back
// exactly.

type exportField struct {
	key string
	get func(*Record) string
	set func(*Record, string) error
}

func strField(key string, p func(*Record) *string) exportField {
	return exportField{key, func(r *Record) string { return *p(r) },
		func(r *Record, v string) error { *p(r) = v; return nil }}
}

func intField(key string, p func(*Record) *int64) exportField {
	return exportField{key,
		func(r *Record) string {
			if *p(r) == 0 {
				return ""
			}
			return strconv.FormatInt(*p(r), 10)
		},
		func(r *Record, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: not a number: %q", key, v)
			}
			*p(r) = n
			return nil
		}}
}

func smallIntField(key string, p func(*Record) *int) exportField {
	return exportField{key,
		func(r *Record) string {
			if *p(r) == 0 {
				return ""
			}
			return strconv.Itoa(*p(r))
		},
		func(r *Record, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: not a number: %q", key, v)
			}
			*p(r) = n
			return nil
		}}
}

func stateField(key string, p func(*Record) *State) exportField {
	return exportField{key, func(r *Record) string { return string(*p(r)) },
		func(r *Record, v string) error {
			st, ok := ParseState(v)
			if !ok {
				return fmt.Errorf("%s: bad state %q", key, v)
			}
			*p(r) = st
			return nil
		}}
}

var exportFields = []exportField{
	strField("package", func(r *Record) *string { return &r.Package }),
	strField("version", func(r *Record) *string { return &r.Version }),
	stateField("state", func(r *Record) *State { return &r.State }),
	strField("section", func(r *Record) *string { return &r.Section }),
	strField("priority", func(r *Record) *string { return &r.Priority }),
	strField("installed_version", func(r *Record) *string { return &r.InstalledVersion }),
	stateField("previous_state", func(r *Record) *State { return &r.PreviousState }),
	intField("state_change", func(r *Record) *int64 { return &r.StateChange }),
	strField("notes", func(r *Record) *string { return &r.Notes }),
	strField("builder", func(r *Record) *string { return &r.Builder }),
	strField("failed", func(r *Record) *string { return &r.Failed }),
	strField("old_failed", func(r *Record) *string { return &r.OldFailed }),
	smallIntField("binary_nmu_version", func(r *Record) *int { return &r.BinNMU }),
	strField("binary_nmu_changelog", func(r *Record) *string { return &r.BinNMUChangelog }),
	smallIntField("buildpri", func(r *Record) *int { return &r.BuildPri }),
	smallIntField("permbuildpri", func(r *Record) *int { return &r.PermBuildPri }),
	strField("depends", func(r *Record) *string { return &r.Depends }),
	strField("bd_problem", func(r *Record) *string { return &r.BDProblem }),
	intField("anytime", func(r *Record) *int64 { return &r.BuildTime }),
	intField("successtime", func(r *Record) *int64 { return &r.SuccessTime }),
	strField("extra_depends", func(r *Record) *string { return &r.ExtraDepends }),
	strField("extra_conflicts", func(r *Record) *string { return &r.ExtraConflicts }),
	intField("lease_until", func(r *Record) *int64 { return &r.LeaseUntil }),
	intField("lease_renewed", func(r *Record) *int64 { return &r.LeaseRenewed }),
}

// Export writes every record of tx in the export format, by package name.
func Export(tx Tx, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	err := tx.ForEach(func(r *Record) error {
		for _, f := range exportFields {
			v := f.get(r)
			if v == "" {
				continue
			}
			lines := strings.Split(v, "\n")
			bw.WriteString(f.key + ": " + lines[0] + "\n")
			for _, l := range lines[1:] {
				switch {
				case l == "":
					l = "."
				case l[0] == '.':
					l = "." + l
				}
				bw.WriteString(" " + l + "\n")
			}
		}
		return bw.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// ReadExport parses an export file; errors are NAME:LINE: message. Nothing
// is stored: see Import.
func ReadExport(r io.Reader, name string) ([]*Record, error) {
	fields := map[string]exportField{}
	for _, f := range exportFields {
		fields[f.key] = f
	}
	var (
		recs    []*Record
		cur     *Record
		curLine int
		key     string
		val     strings.Builder
		has     bool
		seen    = map[string]int{}
	)
	errorf := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	flushField := func(line int) error {
		if !has {
			return nil
		}
		has = false
		if err := fields[key].set(cur, val.String()); err != nil {
			return errorf(line, "%v", err)
		}
		return nil
	}
	finish := func(line int) error {
		if err := flushField(line); err != nil {
			return err
		}
		if cur == nil {
			return nil
		}
		switch {
		case cur.Package == "":
			return errorf(curLine, "entry lacks a package field")
		case cur.State == "":
			return errorf(curLine, "%s: entry lacks a state field", cur.Package)
		case cur.Version == "" && cur.State != NotForUs:
			return errorf(curLine, "%s: entry lacks a version field", cur.Package)
		}
		if prev, dup := seen[cur.Package]; dup {
			return errorf(curLine, "%s: already defined at line %d", cur.Package, prev)
		}
		seen[cur.Package] = curLine
		recs = append(recs, cur)
		cur = nil
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	fieldLine := 0
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case l == "":
			if err := finish(fieldLine); err != nil {
				return nil, err
			}
		case l[0] == ' ':
			if !has {
				return nil, errorf(n, "continuation line outside a field")
			}
			c := l[1:]
			if c == "." {
				c = ""
			} else if strings.HasPrefix(c, ".") {
				c = c[1:]
			}
			val.WriteString("\n" + c)
		default:
			if err := flushField(fieldLine); err != nil {
				return nil, err
			}
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				return nil, errorf(n, "expected \"key: value\", got %q", l)
			}
			if _, known := fields[k]; !known {
				return nil, errorf(n, "unknown key %q", k)
			}
			if cur == nil {
				cur, curLine = &Record{}, n
			}
			key, fieldLine, has = k, n, true
			val.Reset()
			val.WriteString(strings.TrimPrefix(v, " "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := finish(fieldLine); err != nil {
		return nil, err
	}
	return recs, nil
}

// Import replaces every record of tx with recs.
func Import(tx Tx, recs []*Record) error {
	var names []string
	if err := tx.ForEach(func(r *Record) error { names = append(names, r.Package); return nil }); err != nil {
		return err
	}
	for _, n := range names {
		if err := tx.Delete(n); err != nil {
			return err
		}
	}
	for _, r := range recs {
		if err := tx.Put(r); err != nil {
			return err
		}
	}
	return nil
}

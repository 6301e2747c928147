package build

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"buildd/internal/debversion"
)

// controlFields reads the first paragraph of a control file (a .dsc or
// .changes, clearsigned or not): field name → value, continuation lines
// joined with "\n".
func controlFields(name string, data []byte) (map[string]string, error) {
	text := string(data)
	if strings.HasPrefix(text, "-----BEGIN PGP SIGNED MESSAGE-----") {
		if i := strings.Index(text, "\n\n"); i >= 0 {
			text = text[i+2:]
		}
		if i := strings.Index(text, "\n-----BEGIN PGP SIGNATURE-----"); i >= 0 {
			text = text[:i]
		}
	}
	f := map[string]string{}
	last := ""
	for i, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			if len(f) > 0 {
				break
			}
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if last == "" {
				return nil, fmt.Errorf("%s:%d: continuation line before any field", name, i+1)
			}
			f[last] += "\n" + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not a field: %q", name, i+1, l)
		}
		last = strings.ToLower(k)
		f[last] = strings.TrimSpace(v)
	}
	return f, nil
}

// fileEntry is one line of a Files: field.
type fileEntry struct {
	name string
	size int64
}

// filesField parses a Files: field; names must be plain base names.
func filesField(name, value string) ([]fileEntry, error) {
	var out []fileEntry
	for _, l := range strings.Split(value, "\n") {
		w := strings.Fields(l)
		if len(w) == 0 {
			continue
		}
		if len(w) < 3 {
			return nil, fmt.Errorf("%s: Files: bad line %q", name, l)
		}
		fn := w[len(w)-1]
		if fn != filepath.Base(fn) || fn == "." || fn == ".." || strings.HasPrefix(fn, ".") {
			return nil, fmt.Errorf("%s: Files: %q is not a plain file name", name, fn)
		}
		size, err := strconv.ParseInt(w[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: Files: bad size in %q", name, l)
		}
		out = append(out, fileEntry{fn, size})
	}
	return out, nil
}

// dscIdentity returns a .dsc's Source and Version.
func dscIdentity(path string) (debversion.PkgVersion, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return debversion.PkgVersion{}, fmt.Errorf("build: %w", err)
	}
	f, err := controlFields(path, data)
	if err != nil {
		return debversion.PkgVersion{}, err
	}
	if f["source"] == "" || f["version"] == "" {
		return debversion.PkgVersion{}, fmt.Errorf("%s: not a .dsc (no Source or Version field)", path)
	}
	return debversion.PkgVersion{Name: f["source"], Version: f["version"]}, nil
}

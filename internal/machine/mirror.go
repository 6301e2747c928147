package machine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// AptSourcesFiles are the host's apt sources, in apt's order.
func aptSourcesFiles(root string) []string {
	files := []string{filepath.Join(root, "etc/apt/sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(root, "etc/apt/sources.list.d", pat))
		files = append(files, m...)
	}
	return files
}

type aptSource struct {
	uri    string
	suites []string
}

// HostMirror returns the archive URI the host's apt sources (one-line .list
// and deb822 .sources files under root, "/" for the host) use for dist:
// the first "deb" entry naming dist as a suite, else the first "deb" entry
// with a plain suite (not -security, -updates, ...).
func HostMirror(root, dist string) (string, error) {
	var all []aptSource
	for _, f := range aptSourcesFiles(root) {
		data, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return "", fmt.Errorf("apt sources %s: %w", f, err)
		}
		if strings.HasSuffix(f, ".sources") {
			all = append(all, parseDeb822Sources(string(data))...)
		} else {
			all = append(all, parseOneLineSources(string(data))...)
		}
	}
	for _, s := range all {
		for _, su := range s.suites {
			if su == dist {
				return s.uri, nil
			}
		}
	}
	for _, s := range all {
		for _, su := range s.suites {
			if !strings.ContainsAny(su, "-/") {
				return s.uri, nil
			}
		}
	}
	return "", fmt.Errorf("no deb archive for %s in the apt sources under %s (give --mirror)", dist, filepath.Join(root, "etc/apt"))
}

func parseOneLineSources(text string) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{uri: f[0], suites: []string{f[1]}})
	}
	return out
}

func parseDeb822Sources(text string) []aptSource {
	var out []aptSource
	flush := func(p map[string]string) {
		if len(p) == 0 || strings.EqualFold(p["enabled"], "no") {
			return
		}
		deb := false
		for _, t := range strings.Fields(p["types"]) {
			deb = deb || t == "deb"
		}
		if !deb {
			return
		}
		suites := strings.Fields(p["suites"])
		for _, u := range strings.Fields(p["uris"]) {
			out = append(out, aptSource{uri: u, suites: suites})
		}
	}
	p := map[string]string{}
	last := ""
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
		case strings.TrimSpace(l) == "":
			flush(p)
			p = map[string]string{}
			last = ""
		case l[0] == ' ' || l[0] == '\t':
			if last != "" {
				p[last] += " " + strings.TrimSpace(l)
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			if ok {
				last = strings.ToLower(strings.TrimSpace(k))
				p[last] = strings.TrimSpace(v)
			}
		}
	}
	flush(p)
	return out
}

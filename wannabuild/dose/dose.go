// Package dose checks the installability of source packages' build
// dependencies with dose-builddebcheck (Debian package dose-builddebcheck),
// for the BD-Uninstallable state of the queue.
package dose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"buildd/internal/control"
)

// Program is the dose-builddebcheck executable.
var Program = "dose-builddebcheck"

// Timeout bounds one run.
var Timeout = 10 * time.Minute

// Source is a source package to check.
type Source struct {
	Name, Version                string
	BuildDepends, BuildConflicts string
}

// Check returns, for each source whose build dependencies cannot be
// installed on arch from the packages files, dose's explanation.
func Check(ctx context.Context, arch string, packages []string, sources []Source) (map[string]string, error) {
	if len(sources) == 0 {
		return map[string]string{}, nil
	}
	dir, err := os.MkdirTemp("", "wanna-build-dose-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var files []string
	for i, p := range packages {
		plain, err := plainCopy(p, filepath.Join(dir, fmt.Sprintf("Packages.%d", i)))
		if err != nil {
			return nil, err
		}
		files = append(files, plain)
	}
	var src bytes.Buffer
	for _, s := range sources {
		fmt.Fprintf(&src, "Package: %s\nVersion: %s\nArchitecture: any\n", s.Name, s.Version)
		if d := oneLine(s.BuildDepends); d != "" {
			fmt.Fprintf(&src, "Build-Depends: %s\n", d)
		}
		if c := oneLine(s.BuildConflicts); c != "" {
			fmt.Fprintf(&src, "Build-Conflicts: %s\n", c)
		}
		src.WriteString("\n")
	}
	srcFile := filepath.Join(dir, "Sources")
	if err := os.WriteFile(srcFile, src.Bytes(), 0o644); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	args := append([]string{"--deb-native-arch=" + arch, "-f", "-e", "--quiet"}, files...)
	cmd := exec.CommandContext(ctx, Program, append(args, srcFile)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return nil, fmt.Errorf("%s: %w: %s", Program, err, strings.TrimSpace(stderr.String()))
	}
	return parseReport(&out)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// plainCopy returns a path dose can read: path itself when it is plain,
// else a decompressed copy at tmp.
func plainCopy(path, tmp string) (string, error) {
	if !strings.HasSuffix(path, ".gz") && !strings.HasSuffix(path, ".xz") {
		return path, nil
	}
	rc, err := control.Open(path)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return tmp, f.Close()
}

// parseReport reads dose's YAML report: every "package:" at the top level
// of a report entry, with the unsatisfied dependencies and conflicts of its
// reasons as the explanation.
func parseReport(r io.Reader) (map[string]string, error) {
	res := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	inReport, name := false, ""
	var why []string
	flush := func() {
		if name != "" {
			if len(why) == 0 {
				why = []string{"build dependencies not installable"}
			}
			res[name] = strings.Join(why, "\n")
		}
		name, why = "", nil
	}
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "report:":
			inReport = true
		case !inReport:
		case l == " -":
			flush()
		case strings.HasPrefix(l, "  package: "):
			name = strings.TrimPrefix(l, "  package: ")
		case l != "" && l[0] != ' ':
			flush()
			inReport = false
		default:
			t := strings.TrimSpace(l)
			for _, k := range []string{"unsat-dependency: ", "unsat-conflict: "} {
				if v, ok := strings.CutPrefix(t, k); ok {
					why = append(why, strings.TrimSuffix(k, ": ")+" "+v)
				}
			}
		}
	}
	flush()
	return res, sc.Err()
}

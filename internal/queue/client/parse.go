package client

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"buildd/internal/debversion"
	"buildd/internal/queue"
)

func commandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

var tagRE = regexp.MustCompile(`^(\w+)\{(-?\d+)\}$`)

// parseList reads the classic --list output: "SECTION/PKG_VERSION[: STATE][
// by BUILDER] [PRIORITY:NOTES:...:calprio{N}:days{N}]" lines, indented
// detail lines, and "Total N package(s)".
func parseList(out string) ([]Listed, error) {
	var list []Listed
	for _, line := range strings.Split(out, "\n") {
		if line == "" || line[0] == ' ' || strings.HasPrefix(line, "Total ") {
			continue
		}
		first, rest, _ := strings.Cut(line, " ")
		slash := strings.LastIndexByte(first, '/')
		pv := debversion.SplitPkgVersion(strings.TrimSuffix(first[slash+1:], ":"))
		if slash < 0 || pv.Version == "" {
			return nil, fmt.Errorf("wanna-build --list: cannot parse %q", line)
		}
		l := Listed{Name: pv.Name, Version: pv.Version, Section: first[:slash]}
		if i, j := strings.LastIndexByte(rest, '['), strings.LastIndexByte(rest, ']'); i >= 0 && j > i {
			parts := strings.Split(rest[i+1:j], ":")
			if len(parts) >= 2 {
				l.Priority, l.Notes = parts[0], parts[1]
			}
			for _, p := range parts[min(2, len(parts)):] {
				if m := tagRE.FindStringSubmatch(p); m != nil {
					n, _ := strconv.Atoi(m[2])
					switch m[1] {
					case "binNMU":
						l.BinNMU = n
					case "calprio":
						l.CalPrio = n
					}
				}
			}
		}
		list = append(list, l)
	}
	return list, nil
}

// informational are the per-package lines that are not refusals.
var informational = []string{
	"ok", "aok", "warning:", "Warning:", "Note:", "registered as", "already registered as failed",
	"merging with previously registered", "Forcing", "given back", "now not unsuitable anymore",
	"registered for binNMU", "set to build priority", "deleted from database",
}

// parseResult finds the outcome for pkgv in the output of a state-setting
// command, as the local mode reports it.
func parseResult(cmd queue.Command, pkgv, out string) error {
	name, _, err := queue.SplitArg(pkgv)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if cmd == queue.Take {
		for i, l := range lines {
			if l == name+": NOT OK!" {
				// The reason is printed after two spaces; its own further
				// lines are indented already.
				var reason []string
				for j, r := range lines[i+1:] {
					if !strings.HasPrefix(r, "  ") {
						break
					}
					if j == 0 {
						r = r[2:]
					}
					reason = append(reason, r)
				}
				return &Refused{Pkg: name, Msg: strings.Join(reason, "\n")}
			}
		}
		return nil
	}
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, name+": ")
		if !ok {
			if r, ok2 := strings.CutPrefix(l, "add_one_depwait: "+name+": "); ok2 {
				return &Refused{Pkg: name, Msg: "add_one_depwait: " + name + ": " + r}
			}
			if r, ok2 := strings.CutPrefix(l, pkgv+": "); ok2 {
				rest, ok = r, true
				name = pkgv
			}
		}
		if !ok || isInformational(rest) {
			continue
		}
		msg := rest
		for _, more := range lines[i+1:] {
			if !strings.HasPrefix(more, "  ") {
				break
			}
			msg += "\n" + more
		}
		return &Refused{Pkg: name, Msg: msg}
	}
	return nil
}

func isInformational(rest string) bool {
	if strings.HasPrefix(rest, "not taken for building") {
		return !strings.HasSuffix(rest, "Skipping.")
	}
	for _, p := range informational {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// parseInfo reads the classic --info block.
func parseInfo(name, out string) (*Info, error) {
	if strings.HasPrefix(out, name+": not registered") {
		return nil, &Refused{Pkg: name, Msg: "not registered"}
	}
	fields := map[string]string{}
	key := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "    ") && key != "" {
			fields[key] += "\n" + l[4:]
			continue
		}
		if !strings.HasPrefix(l, "  ") {
			continue
		}
		k, v, ok := strings.Cut(l[2:], ": ")
		if !ok {
			continue
		}
		key = strings.TrimSpace(k)
		fields[key] = v
	}
	if fields["Package"] == "" {
		return nil, fmt.Errorf("wanna-build --info %s: unexpected output %q", name, out)
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(fields[k]); return n }
	return &Info{
		Name: fields["Package"], Version: fields["Version"], State: fields["State"], Builder: fields["Builder"],
		Section: fields["Section"], Priority: fields["Priority"], InstalledVersion: fields["Installed-Version"],
		PreviousState: fields["Previous-State"], StateChange: fields["State-Change"],
		FailedText: fields["Failed"], OldFailed: fields["Old-Failed"], BinNMU: atoi("Binary-NMU-Version"),
		BinNMUChangelog: fields["Binary-NMU-Changelog"], Depends: fields["Depends"], BDProblem: fields["BD-Problem"],
		Notes: fields["Notes"], BuildPri: atoi("BuildPri"), PermBuildPri: atoi("PermBuildPri"), CalPrio: atoi("CalculatedPri"),
	}, nil
}

// parseRenew reads --renew's output: nothing when every lease was renewed,
// else a "NAME: reason" line per package not renewed; it returns those of
// pkgvs.
func parseRenew(out string, pkgvs []string) []string {
	refused := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if name, _, ok := strings.Cut(l, ": "); ok {
			refused[name] = true
		}
	}
	var lost []string
	for _, p := range pkgvs {
		if refused[debversion.SplitPkgVersion(p).Name] {
			lost = append(lost, p)
		}
	}
	return lost
}

var expiredRE = regexp.MustCompile(`^(\S+)_(\S+): lease of (\S*) ended (.+), given back$`)

// parseExpired reads --expire-leases' output: one line per package given
// back.
func parseExpired(out string) ([]queue.Expired, error) {
	var list []queue.Expired
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		m := expiredRE.FindStringSubmatch(l)
		if m == nil {
			return list, fmt.Errorf("wanna-build --expire-leases: cannot parse %q", l)
		}
		t, err := time.Parse(queue.TimeFormat, m[4])
		if err != nil {
			return list, fmt.Errorf("wanna-build --expire-leases: %q: %v", l, err)
		}
		list = append(list, queue.Expired{Package: m[1], Version: m[2], Builder: m[3], LeaseUntil: t.Unix()})
	}
	return list, nil
}

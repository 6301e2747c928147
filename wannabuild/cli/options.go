package cli

import (
	"buildd/internal/queue/port"
	"fmt"
	"strconv"
	"strings"
)

// opt is one option of the classic table: its spellings, whether it takes
// a value, and what it does.
type opt struct {
	names []string // long names, then single letters
	arg   bool
	set   func(o *options, v string) error
}

// options is the parsed command line.
type options struct {
	mode         string // take, built, ..., list, info, forget, merge-v3, export, import, history, web, revisions, ...
	listState    string
	verbose      int
	override     bool
	api          int
	dist, arch   string
	user         string
	message      string
	messageSet   bool
	n            int // --binNMU / --build-priority value
	exportFile   string
	importFile   string
	db           string
	config       string
	pas          string
	minAge       int
	lease        int
	lockTimeout  string
	webAddr      string
	logTime      int64 // --put-log: the build's end, unix seconds
	logStatus    string
	logExpires   int64
	json         int    // --json=N: answer a builder in the wire protocol N (internal/queue/port)
	requireUUID  string // --require-revision: the UUID, "" for none
	args         []string
	modeSetTwice string
}

func (o *options) setMode(m string) {
	if o.mode != "" && o.mode != m {
		o.modeSetTwice = o.mode + " and " + m
	}
	o.mode = m
}

func mode(m string) func(*options, string) error {
	return func(o *options, _ string) error { o.setMode(m); return nil }
}

func intArg(dst func(*options) *int) func(*options, string) error {
	return func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("invalid number %q", v)
		}
		*dst(o) = n
		return nil
	}
}

func modeInt(m string) func(*options, string) error {
	return func(o *options, v string) error {
		o.setMode(m)
		return intArg(func(o *options) *int { return &o.n })(o, v)
	}
}

var optTable = []opt{
	{[]string{"verbose", "v"}, false, func(o *options, _ string) error { o.verbose++; return nil }},
	{[]string{"override", "o"}, false, func(o *options, _ string) error { o.override = true; return nil }},
	{[]string{"api"}, true, func(o *options, v string) error {
		if err := intArg(func(o *options) *int { return &o.api })(o, v); err != nil {
			return err
		}
		if o.api > 1 {
			return fmt.Errorf("%d too large", o.api)
		}
		return nil
	}},
	{[]string{"building", "take", "t"}, false, mode("take")},
	{[]string{"failed", "f"}, false, mode("failed")},
	{[]string{"uploaded", "u"}, false, mode("uploaded")},
	{[]string{"not-for-us", "no-build", "n"}, false, mode("no-build")},
	{[]string{"built"}, false, mode("built")},
	{[]string{"attempted"}, false, mode("attempted")},
	{[]string{"needs-build", "give-back"}, false, mode("give-back")},
	{[]string{"dep-wait"}, false, mode("dep-wait")},
	{[]string{"forget"}, false, mode("forget")},
	{[]string{"merge-v3"}, false, mode("merge-v3")},
	{[]string{"info", "i"}, false, mode("info")},
	{[]string{"history"}, false, mode("history")},
	{[]string{"renew"}, false, mode("renew")},
	{[]string{"expire-leases"}, false, mode("expire-leases")},
	{[]string{"lease"}, true, func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid number of seconds %q", v)
		}
		o.lease = n
		return nil
	}},
	{[]string{"binary-nmu", "binNMU"}, true, modeInt("binNMU")},
	{[]string{"permanent-build-priority", "perm-build-priority"}, true, modeInt("perm-build-priority")},
	{[]string{"build-priority"}, true, modeInt("build-priority")},
	{[]string{"list", "l"}, true, func(o *options, v string) error { o.setMode("list"); o.listState = v; return nil }},
	{[]string{"dist", "d"}, true, func(o *options, v string) error { o.dist = v; return nil }},
	{[]string{"message", "m"}, true, func(o *options, v string) error { o.message, o.messageSet = v, true; return nil }},
	{[]string{"database", "b"}, true, func(o *options, v string) error {
		// Deprecated classic option: "ARCH/build-db" names the architecture.
		if o.arch == "" {
			o.arch, _, _ = strings.Cut(v, "/")
		}
		return nil
	}},
	{[]string{"arch", "A"}, true, func(o *options, v string) error { o.arch = v; return nil }},
	{[]string{"user", "U"}, true, func(o *options, v string) error { o.user = v; return nil }},
	{[]string{"min-age", "a"}, true, intArg(func(o *options) *int { return &o.minAge })},
	{[]string{"max-age"}, true, func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		o.minAge = -n
		return err
	}},
	{[]string{"Pas"}, true, func(o *options, v string) error { o.pas = v; return nil }},
	{[]string{"export"}, true, func(o *options, v string) error { o.setMode("export"); o.exportFile = v; return nil }},
	{[]string{"import"}, true, func(o *options, v string) error { o.setMode("import"); o.importFile = v; return nil }},
	{[]string{"db"}, true, func(o *options, v string) error { o.db = v; return nil }},
	{[]string{"config"}, true, func(o *options, v string) error { o.config = v; return nil }},
	{[]string{"dump-config"}, false, mode("dump-config")},
	{[]string{"help", "h"}, false, mode("help")},
	{[]string{"lock-timeout"}, true, func(o *options, v string) error { o.lockTimeout = v; return nil }},
	{[]string{"web"}, true, func(o *options, v string) error { o.setMode("web"); o.webAddr = v; return nil }},
	{[]string{"put-log"}, false, mode("put-log")},
	{[]string{"log-time"}, true, unixArg(func(o *options) *int64 { return &o.logTime })},
	{[]string{"log-status"}, true, func(o *options, v string) error { o.logStatus = v; return nil }},
	{[]string{"log-expires"}, true, unixArg(func(o *options) *int64 { return &o.logExpires })},
	{[]string{"report-revisions"}, false, mode("report-revisions")},
	{[]string{"require-revision"}, true, requireArg},
	{[]string{"revisions"}, false, mode("revisions")},
	{[]string{"builders"}, false, mode("builders")},
	{[]string{"retry"}, false, mode("retry")},
	{[]string{"end"}, false, mode("end")},
	{[]string{"heartbeat"}, false, mode("heartbeat")},
	{[]string{"json"}, true, func(o *options, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n != port.WireVersion {
			return fmt.Errorf("--json=%s: this wanna-build speaks protocol %d", v, port.WireVersion)
		}
		o.json = n
		return nil
	}},
}

func lookupOpt(name string) *opt {
	for i := range optTable {
		for _, n := range optTable[i].names {
			if n == name {
				return &optTable[i]
			}
		}
	}
	return nil
}

// parseArgs parses args as Getopt::Long with gnu_getopt does: --name=value
// or --name value, bundled single letters (-vo, -lneeds-build), "--" ends
// the options, the rest are arguments.
func parseArgs(args []string) (*options, error) {
	o := &options{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.args = append(o.args, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			op := lookupOpt(name)
			if op == nil || len(name) == 1 {
				return nil, fmt.Errorf("Unknown option: %s", name)
			}
			if op.arg && !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("Option %s requires an argument", name)
				}
				i++
				val = args[i]
			} else if !op.arg && hasVal {
				return nil, fmt.Errorf("Option %s does not take an argument", name)
			}
			if err := op.set(o, val); err != nil {
				return nil, fmt.Errorf("Value \"%s\" invalid for option %s: %v", val, name, err)
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				name := a[j : j+1]
				op := lookupOpt(name)
				if op == nil || len(op.names[len(op.names)-1]) != 1 || op.names[len(op.names)-1] != name {
					return nil, fmt.Errorf("Unknown option: %s", name)
				}
				if !op.arg {
					if err := op.set(o, ""); err != nil {
						return nil, err
					}
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("Option %s requires an argument", name)
					}
					i++
					val = args[i]
				}
				if err := op.set(o, val); err != nil {
					return nil, fmt.Errorf("Value \"%s\" invalid for option %s: %v", val, name, err)
				}
				break
			}
		default:
			o.args = append(o.args, a)
		}
	}
	if o.modeSetTwice != "" {
		return nil, fmt.Errorf("conflicting operations: %s", o.modeSetTwice)
	}
	if o.mode == "" {
		o.mode = "take"
	}
	return o, nil
}

// Package cli is the wanna-build command line: the classic options, the
// database and distribution chosen from --db/$WANNA_BUILD_DB/the config,
// one transaction per run, the classic output and exit statuses (0 also
// when single packages are refused, 1 for usage errors and bad input files,
// 2 when the database cannot be opened or used).
package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"buildd/internal/atomicfile"
	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/store"
)

// EnvDB names the environment variable with the database path.
const EnvDB = "WANNA_BUILD_DB"

// EnvNow, when set to unix seconds, is used as the current time: for
// reproducible listings in tests and examples.
const EnvNow = "WANNA_BUILD_NOW"

const (
	exitOK    = 0
	exitUsage = 1
	exitDB    = 2
)

var setModes = map[string]queue.Command{
	"take": queue.Take, "built": queue.SetBuilt, "attempted": queue.SetAttempted,
	"uploaded": queue.SetUploaded, "failed": queue.SetFailed, "dep-wait": queue.SetDepWait,
	"give-back": queue.GiveBack, "no-build": queue.NoBuild, "binNMU": queue.BinNMU,
	"build-priority": queue.BuildPriority, "perm-build-priority": queue.PermBuildPriority,
}

// run is one invocation.
type run struct {
	o              *options
	stdin          io.Reader
	stdout, stderr io.Writer
	cfg            *config.Config
	dbPath         string
	timeout        time.Duration
	s              *queue.Session
}

// Main runs wanna-build with args (without the program name) and returns
// the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintln(stderr, err)
		usage(stdout)
		return exitUsage
	}
	r := &run{o: o, stdin: stdin, stdout: stdout, stderr: stderr}
	switch o.mode {
	case "help":
		usage(stdout)
		return exitOK
	case "dump-config":
		return r.dumpConfig()
	case "web":
		return r.web()
	}
	if status, ok := r.setup(); !ok {
		return status
	}
	if o.json > 0 {
		return r.serveJSON()
	}
	var out bytes.Buffer
	r.s.Out = &out
	status := r.dispatch()
	stdout.Write(out.Bytes())
	return status
}

// dumpConfig prints the effective config (--config, $BUILDD_CONF or the
// default file), as every program of the suite does.
func (r *run) dumpConfig() int {
	cfg, err := config.Load(config.Path(r.o.config))
	if err == nil {
		err = cfg.Dump(r.stdout)
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "wanna-build: %v\n", err)
		return exitUsage
	}
	return 0
}

func (r *run) fail(status int, format string, args ...any) (int, bool) {
	fmt.Fprintf(r.stderr, "wanna-build: "+format+"\n", args...)
	return status, false
}

// setup finds the config, database, distribution and architecture and
// reads the message; ok false means exit with status now.
func (r *run) setup() (status int, ok bool) {
	o := r.o
	if _, needsArgs := setModes[o.mode]; (needsArgs || o.mode == "info" || o.mode == "forget" || o.mode == "renew" || o.mode == "merge-v3") && len(o.args) == 0 {
		fmt.Fprintln(r.stderr, "No packages given.")
		usage(r.stdout)
		return exitUsage, false
	}
	if o.mode == "renew" && o.lease <= 0 {
		return r.fail(exitUsage, "--renew needs --lease=SECONDS")
	}
	if o.mode == "list" {
		if _, known := queue.ParseState(o.listState); !known && !strings.EqualFold(o.listState, "all") {
			return r.fail(exitUsage, "Unknown state to list: %s", o.listState)
		}
	}
	// The default config is needed for the database, distribution or
	// architecture not given.
	if status, ok := r.loadConfig(!(r.dbGiven() && o.dist != "" && o.arch != "")); !ok {
		return status, false
	}
	dist, arch := o.dist, o.arch
	if dist == "" && r.cfg != nil {
		dist = r.cfg.Dists[0].DistName
		if arch == "" {
			arch = r.cfg.Dists[0].BuiltArchitecture
		}
	}
	if dist == "" {
		return r.fail(exitUsage, "no distribution: give --dist (or a config with a [[dist]])")
	}
	if arch == "" && r.cfg != nil {
		switch arches := r.cfg.Arches(dist); {
		case len(arches) == 1:
			arch = arches[0]
		case len(arches) > 1:
			return r.fail(exitUsage, "%s builds %s for %s: give -A ARCH", r.cfg.File, dist, strings.Join(arches, " and "))
		}
	}
	if arch == "" {
		return r.fail(exitUsage, "no architecture for %s: give -A ARCH (or a [[dist]] %s with built_architecture)", dist, dist)
	}
	if status, ok := r.database(); !ok {
		return status, false
	}
	now, err := r.now()
	if err != nil {
		return r.fail(exitUsage, "%v", err)
	}
	realUser := "unknown"
	if u, err := user.Current(); err == nil {
		realUser = u.Username
	}
	who := o.user
	if who == "" {
		who = realUser
	}
	r.s = &queue.Session{
		Dist: dist, Arch: arch, User: who, RealUser: realUser,
		Override: o.override, Verbose: o.verbose > 0, API: o.api,
		Message: o.message, CheckInstall: r.cfg != nil && r.cfg.CheckInstall, Now: now, Lease: int64(o.lease),
	}
	if o.verbose > 0 {
		fmt.Fprintf(r.stdout, "wanna-build Revision: go for %s on %s\n", dist, arch)
	}
	if !o.messageSet {
		if status, ok := r.readMessage(); !ok {
			return status, false
		}
	}
	return exitOK, true
}

func (r *run) dbGiven() bool { return r.o.db != "" || os.Getenv(EnvDB) != "" }

// loadConfig reads the config when it is named (--config, $BUILDD_CONF)
// or needed.
func (r *run) loadConfig(needed bool) (status int, ok bool) {
	if r.o.config != "" || os.Getenv(config.EnvVar) != "" || needed {
		cfg, err := config.Load(config.Path(r.o.config))
		if err != nil {
			return r.fail(exitUsage, "%v", err)
		}
		r.cfg = cfg
	}
	return exitOK, true
}

// database sets the database (--db, $WANNA_BUILD_DB, the config's
// wanna_build_db) and how long to wait for it (--lock-timeout).
func (r *run) database() (status int, ok bool) {
	o := r.o
	r.dbPath = o.db
	if r.dbPath == "" {
		r.dbPath = os.Getenv(EnvDB)
	}
	if r.dbPath == "" && r.cfg != nil {
		r.dbPath = r.cfg.WannaBuildDB
	}
	if r.dbPath == "" {
		return r.fail(exitUsage, "no database: give --db PATH, $%s or a config with wanna_build_db", EnvDB)
	}
	r.timeout = store.DefaultTimeout
	if o.lockTimeout != "" {
		d, err := time.ParseDuration(o.lockTimeout)
		if err != nil || d <= 0 {
			return r.fail(exitUsage, "bad --lock-timeout %q", o.lockTimeout)
		}
		r.timeout = d
	}
	return exitOK, true
}

// now is the current time, or $WANNA_BUILD_NOW.
func (r *run) now() (time.Time, error) {
	v := os.Getenv(EnvNow)
	if v == "" {
		return time.Now(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad $%s %q", EnvNow, v)
	}
	return time.Unix(n, 0), nil
}

// readMessage reads the failure text, dependency list or binNMU changelog
// from stdin as the classic tool does.
func (r *run) readMessage() (int, bool) {
	in := bufio.NewReader(r.stdin)
	prompt := r.stdout
	if r.o.json > 0 {
		prompt = io.Discard // the answer is the only output
	}
	switch {
	case r.o.mode == "failed":
		fmt.Fprintln(prompt, "Enter reason for failing (end with '.' alone on its line):")
		var text strings.Builder
		for {
			line, err := in.ReadString('\n')
			if line == ".\n" || line == "." && err != nil {
				break
			}
			text.WriteString(line)
			if err != nil {
				break
			}
		}
		r.s.Message = strings.TrimSuffix(text.String(), "\n")
	case r.o.mode == "dep-wait" || r.o.mode == "binNMU" && r.o.n > 0:
		what, missing := "dependencies", "No dependencies given"
		if r.o.mode == "binNMU" {
			what, missing = "changelog entry", "No changelog entry given"
		}
		fmt.Fprintf(prompt, "Enter %s (one line):\n", what)
		line := ""
		for line == "" {
			l, err := in.ReadString('\n')
			line = strings.TrimSuffix(l, "\n")
			if err != nil {
				break
			}
		}
		if line == "" {
			return r.fail(exitUsage, "%s", missing)
		}
		r.s.Message = line
	}
	return exitOK, true
}

func (r *run) open(readOnly bool) (queue.Store, int, bool) {
	db, err := store.Open(r.dbPath, store.Options{ReadOnly: readOnly, Timeout: r.timeout})
	if err != nil {
		status, _ := r.fail(exitDB, "%v", err)
		return nil, status, false
	}
	return db, 0, true
}

// dbError reports an error from inside a transaction: nothing was
// committed.
func (r *run) dbError(err error) int {
	r.s.Out.(*bytes.Buffer).Reset()
	if errors.Is(err, queue.ErrDamaged) {
		// The error names the file already.
		status, _ := r.fail(exitDB, "%v (nothing changed)", err)
		return status
	}
	status, _ := r.fail(exitDB, "%s: %v (nothing changed)", store.Name(r.dbPath), err)
	return status
}

func (r *run) dispatch() int {
	o, s := r.o, r.s
	if cmd, ok := setModes[o.mode]; ok {
		return r.eachArg(func(tx queue.Tx, a string) error { return s.Apply(tx, cmd, a, o.n) })
	}
	switch o.mode {
	case "renew":
		return r.eachArg(s.Renew)
	case "expire-leases":
		return r.update(func(tx queue.Tx) error {
			_, err := s.ExpireLeases(tx)
			return err
		})
	case "forget":
		return r.update(func(tx queue.Tx) error {
			for _, a := range o.args {
				if err := s.Forget(tx, a); err != nil && !queue.IsPackageError(err) {
					return err
				}
			}
			return nil
		})
	case "list":
		return r.view(func(tx queue.Tx) error { return s.List(tx, o.listState, o.user, o.minAge) })
	case "info":
		return r.info()
	case "history":
		return r.view(func(tx queue.Tx) error {
			if len(o.args) == 0 {
				return s.History(tx, "")
			}
			for _, a := range o.args {
				if err := s.History(tx, a); err != nil {
					return err
				}
			}
			return nil
		})
	case "export":
		var buf bytes.Buffer
		if status := r.view(func(tx queue.Tx) error { return queue.Export(tx, &buf) }); status != exitOK {
			return status
		}
		if err := atomicfile.WriteFile(o.exportFile, buf.Bytes(), 0o644); err != nil {
			status, _ := r.fail(exitUsage, "Can't open export %v", err)
			return status
		}
		return exitOK
	case "import":
		f, err := os.Open(o.importFile)
		if err != nil {
			status, _ := r.fail(exitUsage, "Can't open database %v", err)
			return status
		}
		recs, err := queue.ReadExport(f, o.importFile)
		f.Close()
		if err != nil {
			status, _ := r.fail(exitUsage, "%v (nothing changed)", err)
			return status
		}
		return r.update(func(tx queue.Tx) error { return queue.Import(tx, recs) })
	case "merge-v3":
		return r.merge()
	case "put-log":
		return r.putLog()
	case "report-revisions":
		return r.reportRevisions()
	case "require-revision":
		return r.requireRevision()
	case "revisions":
		return r.listRevisions()
	case "builders":
		return r.listBuilders()
	case "retry":
		return r.retry()
	case "end", "heartbeat":
		status, _ := r.fail(exitUsage, "--%s is buildd's call over ssh: only with --json", o.mode)
		return status
	}
	status, _ := r.fail(exitUsage, "Unexpected operation mode %s", o.mode)
	return status
}

// eachArg runs fn on every package argument in one transaction: a
// malformed argument is reported and skipped, and a refusal of one package
// (its message already printed) does not stop the others.
func (r *run) eachArg(fn func(tx queue.Tx, arg string) error) int {
	var bads []error // reported once, after the transaction's last run
	status := r.update(func(tx queue.Tx) error {
		bads = bads[:0]
		for _, a := range r.o.args {
			err := fn(tx, a)
			var bad *queue.BadArgument
			if errors.As(err, &bad) {
				bads = append(bads, bad)
				continue
			}
			if err != nil && !queue.IsPackageError(err) {
				return err
			}
		}
		return nil
	})
	for _, bad := range bads {
		fmt.Fprintln(r.stderr, bad)
	}
	return status
}

func (r *run) view(fn func(queue.Tx) error) int {
	db, status, ok := r.open(true)
	if !ok {
		return status
	}
	defer db.Close()
	if err := db.View(r.s.Dist, r.s.Arch, fn); err != nil {
		return r.dbError(err)
	}
	return exitOK
}

func (r *run) update(fn func(queue.Tx) error) int {
	db, status, ok := r.open(false)
	if !ok {
		return status
	}
	defer db.Close()
	// A PostgreSQL transaction that lost to a concurrent one runs again:
	// only the last run's output counts.
	out := r.s.Out.(*bytes.Buffer)
	if err := db.Update(r.s.Dist, r.s.Arch, func(tx queue.Tx) error { out.Reset(); return fn(tx) }); err != nil {
		return r.dbError(err)
	}
	return exitOK
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: wanna-build <options...> <package_version...>
Options:
    -v, --verbose: Verbose execution.
    -A arch, --arch=ARCH: Architecture this operation is for.
    -d dist, --dist=DIST: Distribution this operation is for.
    -t, --take, --building: Take package for building [default operation]
    -f, --failed: Record in database that a build failed due to
        deficiencies in the package (that aren't fixable without a new
        source version).
    -u, --uploaded: Record in the database that the packages build
        correctly and were uploaded.
    --built, --attempted: Record a successful or failed build.
    -n, --no-build, --not-for-us: Record in the database that the packages aren't
        desired for this architecture and shouldn't appear in listings even
        if they're out of date.
    --dep-wait: Record in the database that the packages are waiting
        for some source dependencies to become available
    --binNMU num, --binary-nmu=num: Schedule a re-build of the package with unchanged source, but
         a new version number (source-version + "+b<num>")
    --give-back, --needs-build: Mark a package as ready to build that is in state Building,
         Built or Build-Attempted. To give back a package in state Failed, use
         --override.
    --build-priority=N, --perm-build-priority=N, --permanent-build-priority=N:
        Set the build priority.
    --forget: Delete the packages from the database.
    -i SRC_PKG, --info SRC_PKG: Show information for source package
    -l STATE, --list=STATE: List all packages in state STATE; can be
        combined with -U to restrict to a specific user; STATE can
        also be 'all'
    -m MESSAGE, --message=MESSAGE: Give reason why package failed or
        source dependency list
        (used with -f, --dep-wait, and --binNMU)
    -o, --override: Override another user's lock on a package, i.e.
        take it over
    -U USER, --user=USER: select user name for which listings should
        apply, if not given all users are listed.
        if -l is missing, set user name to be entered in db; usually
        automatically chosen
    -a DAYS, --min-age=DAYS, --max-age=DAYS: With -l: only packages in
        their state for at least (or at most) DAYS days.
    -b ARCH/build-db, --database=ARCH/build-db: Deprecated; names the
        architecture.
    --Pas FILE: Packages-arch-specific for --merge-v3.
    --api=1: YAML output of --take
    --import FILE: Import database from a ASCII file FILE
    --export FILE: Export database to a ASCII file FILE
    --merge-v3 PACKAGES... . SOURCES... [. PACKAGES-FOR-DEPS... [. PACKAGES-ARCH-SPECIFIC...]]:
        Merge the archive's indexes (plain, .gz or .xz).
    --history [SRC_PKG...]: Print the transaction history.
    --lease SECONDS: With --take or --renew: hold the package for SECONDS
        unless renewed.
    --renew PKG_VERSION...: Renew the lease of packages you are building.
    --expire-leases: Give back every Building package whose lease ended.
    --db PATH|URL: The database file, or a postgres:// or postgresql:// URL
        (else $WANNA_BUILD_DB, else the config's wanna_build_db).
    --config FILE: The buildd.conf (else $BUILDD_CONF, else /etc/buildd/buildd.conf).
    --dump-config: Print the effective config, defaults included, and exit.
    -h, --help: Print this text and exit.
    --lock-timeout DURATION: How long to wait for the database lock (30s).
    --web ADDR: Serve the read-only status web on ADDR (host:port, or a
        unix socket path) until interrupted; needs no dist or arch.
    --put-log --log-time=UNIX --log-status=STATUS [--log-expires=UNIX] PKG_VERSION:
        Store the gzip-compressed build log on stdin in the log store, as
        the build of -U USER that ended at UNIX (successful, attempted or
        given-back; kept until --log-expires, default log_keep days).
    --report-revisions: Report the revisions of -U USER's build machine for
        -d/-A read from stdin, one a line: MACHINE REVISION UUID, then
        "current" for the current one (replacing USER's last report).
    --require-revision=UUID: Require the build machine revision UUID of
        -d/-A: a builder whose machine is on another takes nothing from it
        until it has it; --require-revision= requires none.
    --revisions: List the required revision of -d/-A, the revisions each
        builder reported, and the builders behind.
    --builders: List the builders of -d/-A as they last reported in: their
        slots, each slot's memory, the builds running, when each was last
        heard, and which are silent or quarantined.
    --retry PKG...: End the backoff of packages given back, or their hold
        for the admin: they may be taken again at once.
    --end PKG_VERSION, --heartbeat: buildd's calls over ssh (--json only):
        a build's end, or a builder's heartbeat, as JSON on stdin.
    --json=1: Answer a builder in the wire protocol 1: one JSON line per
        call (buildd's calls over ssh).

The remaining arguments (depending on operation) usually start with
"name_version", the trailer is ignored. This allows one to pass the names
of .dsc files, for which file name completion can be used.
--list needs nothing more on the command line. --info takes source
package names (without version).
`)
}

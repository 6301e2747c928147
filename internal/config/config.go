// Package config owns buildd.conf: the one TOML file read by every program of
// the suite (buildd, buildd-mail, buildd-uploader, buildd-watcher and
// wanna-build).
//
// Keys are the classic buildd.conf variable names in lower case (admin_mail,
// max_build, idle_sleep_time, ...) plus our own (home, machines_dir,
// wanna_build_db, admin_keyring, smtp, sendmail, outbox, ...). Distributions
// are the table array [[dist]], one table per dist_name and
// built_architecture (a host may build one dist for several
// architectures, each with its own machine), upload queues the table
// array [[upload_queue]]. Units are the classic ones: idle_sleep_time in seconds,
// delay_after_give_back in minutes, min_free_space in KiB, the *_keep and
// *_age keys in days.
//
// Every error names the file and the line: an unknown key, a value of the
// wrong type, a missing required key, a regular expression that does not
// compile, a number out of its range (a negative time, size or count), a
// home that is not absolute or is a system directory, a dist built twice
// for one architecture.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/BurntSushi/toml"

	"buildd/internal/debversion"
)

// DefaultPath is used when neither --config nor $BUILDD_CONF is given.
const DefaultPath = "/etc/buildd/buildd.conf"

// EnvVar names the environment variable that points at the config file.
const EnvVar = "BUILDD_CONF"

// Config is the effective configuration: the file's values over the defaults.
type Config struct {
	// Ours.
	Home          string `toml:"home"`
	MachinesDir   string `toml:"machines_dir"`
	WannaBuildDB  string `toml:"wanna_build_db"`
	AdminKeyring  string `toml:"admin_keyring"`
	SMTP          string `toml:"smtp"`
	Sendmail      string `toml:"sendmail"`
	Outbox        string `toml:"outbox"`
	MailFrom      string `toml:"mail_from"`
	BuilderName   string `toml:"builder_name"`
	BuildTimeout  int    `toml:"build_timeout"`
	NoOutputTime  int    `toml:"no_output_timeout"`
	LogSizeLimit  int    `toml:"log_size_limit"`
	MailLogLimit  int    `toml:"mail_log_limit"`
	CheckInstall  bool   `toml:"check_installability"`
	UploadTool    string `toml:"upload_tool"`
	UploadTimeout int    `toml:"upload_timeout"`
	MachineFree   int    `toml:"machines_min_free_space"`
	WarnFree      int    `toml:"warn_free_space"`
	UploadSched   string `toml:"uploader_schedule"`
	WatcherSched  string `toml:"watcher_schedule"`
	UpgradeSched  string `toml:"upgrade_schedule"`

	// WannaBuildListenDB is the PostgreSQL URL of buildd's LISTEN
	// connection (it needs a session of its own) when wanna_build_db goes
	// through a transaction pooler such as pgbouncer: the same database,
	// reached directly. Default: wanna_build_db.
	WannaBuildListenDB string `toml:"wanna_build_listen_db"`

	// LayerCacheSize (MiB): the build-dependency layers a machine keeps
	// (their packages' installed size), least recently used dropped first;
	// 0: no layers, every build installs.
	LayerCacheSize int `toml:"layer_cache_size"`
	// PackageCacheSize (MiB): the downloaded .deb files a machine keeps for
	// later builds; 0: none kept.
	PackageCacheSize int `toml:"package_cache_size"`
	// ListsMaxAge (seconds): how old a machine's shared package lists may be
	// before a build refreshes them; 0: every build runs apt-get update.
	ListsMaxAge int `toml:"lists_max_age"`

	// PushHosts are the build hosts this host ships its machines to, as
	// ssh destinations ([USER@]HOST): `buildd machine push` and maint.
	PushHosts []string `toml:"push_hosts"`
	// PushSSHOptions are extra ssh options of a push (-p PORT, -i KEY, -o ...).
	PushSSHOptions []string `toml:"push_ssh_options"`
	// PushCommand is `buildd machine` on the receiving hosts, run there
	// over ssh; receive needs root (or "sudo", "buildd", "machine").
	PushCommand []string `toml:"push_command"`
	// MachinesFrom names the host this host's machines are pushed from:
	// maint here neither creates nor upgrades them.
	MachinesFrom string `toml:"machines_from"`
	// UpgradeAfter (hours): maint upgrades a machine whose current
	// revision is older.
	UpgradeAfter int `toml:"upgrade_after"`
	// MaintJobs is how many jobs the scheduled machine maintenance runs
	// at once (buildd machine maint -j).
	MaintJobs int `toml:"maint_jobs"`

	// GiveBackRetries: a package given back this many times in a row (by
	// any builder of its queue) is held for the admin (wanna-build
	// --retry) instead of waiting again; each give-back before makes it
	// wait delay_after_give_back, twice as long each time.
	GiveBackRetries int `toml:"give_back_retries"`
	// QuarantineProbe is a known-good package ("hello_2.10-3") that a
	// quarantined buildd builds every sbuild_fails_pause seconds, in its
	// first [[dist]], without taking it from the queue; the quarantine
	// ends when it builds. "": only the admin ends a quarantine.
	QuarantineProbe string `toml:"quarantine_probe"`
	// SlotMemory (MiB) is the memory limit of each build slot; 0: the
	// host's memory (less its reserve) shared among max_build slots.
	SlotMemory int `toml:"slot_memory"`

	// UploadToolConfig is the dput/dupload config file naming the upload
	// targets (dput -c FILE, dupload --configfile FILE); "" for the tool's own.
	UploadToolConfig string `toml:"upload_tool_config"`
	// BuilddCommand is how buildd-watcher restarts a dead buildd; empty:
	// the buildd program beside buildd-watcher, with --config.
	BuilddCommand []string `toml:"buildd_command"`
	// ReplyWindow (days): how long a sent log or "Should I build" mail can
	// be answered; sent-mails and mail-signatures forget older entries.
	ReplyWindow int `toml:"reply_window"`
	// MQueueMaxAge (hours): a mail still failing temporarily after this long
	// in ~/mqueue is answered with an error and dropped.
	MQueueMaxAge int `toml:"mqueue_max_age"`
	// LogKeep (days): how long a build log delivered to the queue's log
	// store is kept there for the status web.
	LogKeep int `toml:"log_keep"`
	// ErrorReplyRate (error replies an hour to one address, 0 to 100):
	// buildd-mail sends an address at most this many error replies within
	// an hour, and answers at most 1000 addresses in an hour (see
	// home.ErrorReplyFile); over either bound the reply is not sent and
	// daemon.log says so. 0: no error replies at all.
	ErrorReplyRate int `toml:"error_reply_rate"`

	// Classic.
	AdminMail          string `toml:"admin_mail"`
	AptGet             string `toml:"apt_get"`
	BuildLogKeep       int    `toml:"build_log_keep"`
	DaemonLogFile      string `toml:"daemon_log_file"`
	DaemonLogKeep      int    `toml:"daemon_log_keep"`
	DaemonLogRotate    int    `toml:"daemon_log_rotate"`
	DaemonLogSend      bool   `toml:"daemon_log_send"`
	DelayAfterGiveBack int    `toml:"delay_after_give_back"`
	ErrorMailWindow    int    `toml:"error_mail_window"`
	IdleSleepTime      int    `toml:"idle_sleep_time"`
	MaxBuild           int    `toml:"max_build"`
	MaxSbuildFails     int    `toml:"max_sbuild_fails"`
	SbuildFailsPause   int    `toml:"sbuild_fails_pause"`
	MinFreeSpace       int    `toml:"min_free_space"`
	NiceLevel          int    `toml:"nice_level"`
	NoDetach           bool   `toml:"no_detach"`
	NoWarnPattern      string `toml:"no_warn_pattern"`
	PIDFile            string `toml:"pidfile"`
	PkgLogKeep         int    `toml:"pkg_log_keep"`
	ShouldBuildMsgs    bool   `toml:"should_build_msgs"`
	StatisticsMail     string `toml:"statistics_mail"`
	StatisticsPeriod   int    `toml:"statistics_period"`
	WarningAge         int    `toml:"warning_age"`

	Dists        []Dist        `toml:"dist"`
	UploadQueues []UploadQueue `toml:"upload_queue"`

	// File is the path the config was read from ("" for defaults only).
	File string `toml:"-"`
}

// Dist is one [[dist]] table: a distribution this host builds, for one
// architecture. Where a record names only its dist, Resolve and Means
// tell which table it means.
type Dist struct {
	DistName          string `toml:"dist_name"`
	BuiltArchitecture string `toml:"built_architecture"`
	Machine           string `toml:"machine"`
	BuildArchAll      bool   `toml:"build_arch_all"`
	// BuildMode is how this host builds for built_architecture: "native"
	// (in a machine of that architecture, emulated through qemu-user when
	// the host does not run it natively) or "cross" (in a cross machine
	// of the host's architecture, `machine create --cross ARCH`).
	BuildMode string `toml:"build_mode"`
	// CrossGiveBack: a package whose build-dependencies cannot be
	// satisfied for a cross build is given back (for a native or
	// emulated builder) instead of marked attempted.
	CrossGiveBack bool `toml:"cross_give_back"`
	// AptSources are extra apt source lines for builds of this dist
	// ("deb-src [trusted=yes] file:/srv/archive bookworm main"); file: paths
	// in them are bind-mounted read-only into the working snapshot.
	AptSources           []string `toml:"apt_sources"`
	WannaBuildSSHHost    string   `toml:"wanna_build_ssh_host"`
	WannaBuildSSHUser    string   `toml:"wanna_build_ssh_user"`
	WannaBuildSSHSocket  string   `toml:"wanna_build_ssh_socket"`
	WannaBuildSSHOptions []string `toml:"wanna_build_ssh_options"`
	WannaBuildDBUser     string   `toml:"wanna_build_db_user"`
	WannaBuildMinAge     int      `toml:"wanna_build_min_age"`
	// LeaseTimeout is lease_timeout: seconds a taken package stays this
	// builder's without a renewal (nil: DefaultLeaseTimeout; 0: no leases).
	LeaseTimeout         *int     `toml:"lease_timeout"`
	DuploadLocalQueueDir string   `toml:"dupload_local_queue_dir"`
	NoAutoBuild          []string `toml:"no_auto_build"`
	WeakNoAutoBuild      []string `toml:"weak_no_auto_build"`
	NoBuildRegex         string   `toml:"no_build_regex"`
	BuildRegex           string   `toml:"build_regex"`
	LogsMailedTo         string   `toml:"logs_mailed_to"`
	LogsMailAlso         string   `toml:"logs_mail_also"`
	SignWith             string   `toml:"sign_with"`
	MaintainerName       string   `toml:"maintainer_name"`
	MailFrom             string   `toml:"mailfrom"`

	// Line is the line of this table's [[dist]] header in the file.
	Line int `toml:"-"`
}

// UploadQueue is one [[upload_queue]] table: a local queue directory under
// home and the dput/dupload target it is uploaded to.
type UploadQueue struct {
	DuploadLocalQueueDir string `toml:"dupload_local_queue_dir"`
	DuploadArchiveName   string `toml:"dupload_archive_name"`
}

// Defaults returns the configuration used for every key the file leaves out.
// Paths under home are filled in by Load once home is known.
func Defaults() Config {
	return Config{
		MachinesDir:        "/srv/buildd/machines",
		AdminKeyring:       "/etc/buildd/admins.asc",
		BuildTimeout:       4 * 60 * 60,
		NoOutputTime:       150 * 60,
		LogSizeLimit:       400 * 1024 * 1024,
		MailLogLimit:       200 * 1024,
		UploadTool:         "dput",
		UploadTimeout:      600,
		MachineFree:        1024 * 1024,
		WarnFree:           4 * 1024 * 1024,
		UploadSched:        "10,25,40,55 * * * *",
		WatcherSched:       "5,20,35,50 * * * *",
		UpgradeSched:       "30 3 * * *",
		PushCommand:        []string{"buildd", "machine"},
		UpgradeAfter:       20,
		MaintJobs:          2,
		LayerCacheSize:     8192,
		PackageCacheSize:   4096,
		ListsMaxAge:        300,
		ReplyWindow:        60,
		MQueueMaxAge:       72,
		LogKeep:            90,
		ErrorReplyRate:     5,
		AdminMail:          "root",
		AptGet:             "apt-get",
		BuildLogKeep:       2,
		DaemonLogKeep:      7,
		DaemonLogRotate:    1,
		DaemonLogSend:      true,
		DelayAfterGiveBack: 15,
		GiveBackRetries:    5,
		ErrorMailWindow:    8 * 60 * 60,
		IdleSleepTime:      5 * 60,
		MaxBuild:           runtime.NumCPU(),
		MaxSbuildFails:     2,
		SbuildFailsPause:   60 * 60,
		MinFreeSpace:       50 * 1024,
		NiceLevel:          10,
		NoWarnPattern:      `^build/(SKIP|REDO|SBUILD-GIVEN-BACK|BUILDING|[^/]*\.lock|buildd\.pid|[^/]*.ssh|chroot-[^/]*|current-[^/]*)$`,
		PkgLogKeep:         7,
		ShouldBuildMsgs:    true,
		StatisticsMail:     "root",
		StatisticsPeriod:   7,
		WarningAge:         7,
	}
}

// Error is a config error at a place in a file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Path picks the config file: the flag's value, else $BUILDD_CONF, else
// DefaultPath.
func Path(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv(EnvVar); env != "" {
		return env
	}
	return DefaultPath
}

// Load reads and checks the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse checks data as the contents of the config file named path.
func Parse(path string, data []byte) (*Config, error) {
	c := Defaults()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{path, pe.Position.Line, pe.Message}
		}
		// Type errors carry the line only in their text: "toml: line N (...): msg".
		if m := typeErrRE().FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{path, line, m[2]}
		}
		return nil, &Error{path, 0, err.Error()}
	}
	lines := newLineIndex(data)
	if undec := md.Undecoded(); len(undec) > 0 {
		k := undec[0]
		return nil, &Error{path, lines.keyLine(k), fmt.Sprintf("unknown key %q", k.String())}
	}
	headers := lines.tableHeaders("dist")
	for i := range c.Dists {
		if i < len(headers) {
			c.Dists[i].Line = headers[i]
		}
	}
	c.File = path
	if err := c.check(lines); err != nil {
		return nil, err
	}
	c.fill()
	return &c, nil
}

func (c *Config) check(lines *lineIndex) error {
	fail := func(key string, msg string, args ...any) error {
		return &Error{c.File, lines.keyLine(toml.Key{key}), fmt.Sprintf(msg, args...)}
	}
	if c.Home == "" {
		return &Error{c.File, 1, `missing required key "home"`}
	}
	if !filepath.IsAbs(c.Home) {
		return fail("home", "home %q is not an absolute path", c.Home)
	}
	if systemDirs[filepath.Clean(c.Home)] {
		return fail("home", "home %q is a system directory: give the buildd user's own directory", c.Home)
	}
	if len(c.Dists) == 0 {
		return &Error{c.File, 1, "no [[dist]] table: name at least one distribution to build for"}
	}
	for _, r := range c.ranges() {
		if *r.v < r.min || *r.v > r.max {
			return fail(r.key, "%s = %d: %s", r.key, *r.v, r.text())
		}
	}
	for _, h := range c.PushHosts {
		if !sshDestRE.MatchString(h) {
			return fail("push_hosts", "push_hosts: %q is not an ssh destination [USER@]HOST", h)
		}
	}
	if len(c.PushCommand) == 0 || c.PushCommand[0] == "" {
		return fail("push_command", "push_command is empty: give the receiving hosts' buildd machine command")
	}
	if c.MachinesFrom != "" && len(c.PushHosts) > 0 {
		return fail("machines_from", "machines_from = %q and push_hosts are both set: a host that receives its machines does not push them", c.MachinesFrom)
	}
	if c.QuarantineProbe != "" {
		pv := debversion.SplitPkgVersion(c.QuarantineProbe)
		if debversion.CheckName(pv.Name) != nil || pv.Version == "" || debversion.CheckVersion(pv.Version) != nil {
			return fail("quarantine_probe", "quarantine_probe = %q: not PACKAGE_VERSION", c.QuarantineProbe)
		}
	}
	if _, err := regexp.Compile(c.NoWarnPattern); err != nil {
		return fail("no_warn_pattern", "no_warn_pattern: %v", err)
	}
	if c.WannaBuildListenDB != "" && c.WannaBuildListenDB != c.WannaBuildDB { // the same: the default, as --dump-config writes it
		if !isPostgresURL(c.WannaBuildListenDB) {
			return fail("wanna_build_listen_db", "wanna_build_listen_db = %q: not a postgres:// or postgresql:// URL", c.WannaBuildListenDB)
		}
		if !isPostgresURL(c.WannaBuildDB) {
			db := fmt.Sprintf("%q", c.WannaBuildDB)
			if c.WannaBuildDB == "" {
				db = "unset: a bbolt file in home"
			}
			return fail("wanna_build_listen_db", "wanna_build_listen_db is set, but wanna_build_db (%s) is not a PostgreSQL URL: only a PostgreSQL queue notifies", db)
		}
	}
	seen := map[string]int{}    // DIST/ARCH -> its [[dist]] line
	archAll := map[string]int{} // dist -> the [[dist]] line that builds its Architecture: all packages
	for i := range c.Dists {
		d := &c.Dists[i]
		at := func(key string) int {
			if l := lines.keyLineAfter(key, d.Line); l > 0 {
				return l
			}
			return d.Line
		}
		if d.DistName == "" {
			return &Error{c.File, d.Line, `[[dist]]: missing required key "dist_name"`}
		}
		if d.BuiltArchitecture == "" {
			return &Error{c.File, d.Line, fmt.Sprintf(`[[dist]] %s: missing required key "built_architecture"`, d.DistName)}
		}
		for _, k := range []struct{ key, v string }{{"dist_name", d.DistName}, {"built_architecture", d.BuiltArchitecture}} {
			if strings.ContainsFunc(k.v, func(r rune) bool { return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
				return &Error{c.File, at(k.key), fmt.Sprintf("[[dist]] %s = %q: a name without \"/\", blanks or control characters (the home's files write DIST/ARCH)", k.key, k.v)}
			}
		}
		if prev, dup := seen[d.Where()]; dup {
			return &Error{c.File, d.Line, fmt.Sprintf("[[dist]] %s: dist_name %q with built_architecture %q is already defined at line %d: a dist is built once per architecture",
				d.Where(), d.DistName, d.BuiltArchitecture, prev)}
		}
		seen[d.Where()] = d.Line
		if d.BuildArchAll {
			if prev, dup := archAll[d.DistName]; dup {
				return &Error{c.File, at("build_arch_all"), fmt.Sprintf("[[dist]] %s: build_arch_all is already set for %s at line %d: the Architecture: all packages of a dist are built on one architecture (both builds would make the same files)",
					d.Where(), d.DistName, prev)}
			}
			archAll[d.DistName] = d.Line
		}
		if d.BuildMode != "" && d.BuildMode != "native" && d.BuildMode != "cross" {
			return &Error{c.File, at("build_mode"), fmt.Sprintf(`[[dist]] %s: build_mode = %q: "native" or "cross"`, d.DistName, d.BuildMode)}
		}
		if d.LeaseTimeout != nil && *d.LeaseTimeout < 0 {
			return &Error{c.File, at("lease_timeout"), fmt.Sprintf("[[dist]] %s: lease_timeout = %d: must be at least 0 (seconds; 0: no leases)", d.DistName, *d.LeaseTimeout)}
		}
		if d.WannaBuildMinAge < 0 {
			return &Error{c.File, at("wanna_build_min_age"), fmt.Sprintf("[[dist]] %s: wanna_build_min_age = %d: must be at least 0 (days)", d.DistName, d.WannaBuildMinAge)}
		}
		for _, r := range []struct{ key, re string }{{"no_build_regex", d.NoBuildRegex}, {"build_regex", d.BuildRegex}} {
			if _, err := regexp.Compile(r.re); err != nil {
				return &Error{c.File, at(r.key), fmt.Sprintf("%s: %v", r.key, err)}
			}
		}
	}
	return nil
}

// isPostgresURL reports whether a wanna_build_db value names a PostgreSQL
// database (as the queue's store decides).
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// systemDirs are refused as home: the suite creates, rewrites and deletes
// files under home (build/, upload/, logs/, daemon.log, ...).
var systemDirs = func() map[string]bool {
	m := map[string]bool{}
	for _, d := range strings.Fields(`/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt
		/proc /root /run /sbin /srv /sys /tmp /usr /usr/bin /usr/include /usr/lib /usr/lib64
		/usr/libexec /usr/local /usr/sbin /usr/share /usr/src /var /var/backups /var/cache
		/var/lib /var/local /var/lock /var/log /var/mail /var/opt /var/run /var/spool /var/tmp`) {
		m[d] = true
	}
	return m
}()

// sshDestRE is an ssh destination: [USER@]HOST, never an option.
var sshDestRE = regexp.MustCompile(`^([a-z_][a-z0-9_.-]*@)?[A-Za-z0-9][A-Za-z0-9.:-]*$`)

// intRange is the allowed range of a numeric top-level key.
type intRange struct {
	key      string
	v        *int
	min, max int
	unit     string
}

func (r intRange) text() string {
	if r.max == math.MaxInt {
		return fmt.Sprintf("must be at least %d (%s)", r.min, r.unit)
	}
	return fmt.Sprintf("must be from %d to %d (%s)", r.min, r.max, r.unit)
}

// ranges lists every numeric top-level key with its range: no time, size
// or count is negative; a time that is a period or a timeout is at least 1
// (0 would kill at once, or repeat at every run); 0 turns a limit or a
// threshold off where the key says so.
func (c *Config) ranges() []intRange {
	const inf = math.MaxInt
	return []intRange{
		{"build_timeout", &c.BuildTimeout, 1, inf, "seconds"},
		{"no_output_timeout", &c.NoOutputTime, 0, inf, "seconds; 0: no limit"},
		{"log_size_limit", &c.LogSizeLimit, 0, inf, "bytes; 0: no limit"},
		{"layer_cache_size", &c.LayerCacheSize, 0, inf, "MiB; 0: no layers"},
		{"package_cache_size", &c.PackageCacheSize, 0, inf, "MiB; 0: none kept"},
		{"lists_max_age", &c.ListsMaxAge, 0, inf, "seconds; 0: update for every build"},
		{"mail_log_limit", &c.MailLogLimit, 0, inf, "bytes; 0: the whole log"},
		{"upload_timeout", &c.UploadTimeout, 1, inf, "seconds"},
		{"machines_min_free_space", &c.MachineFree, 0, inf, "KiB"},
		{"warn_free_space", &c.WarnFree, 0, inf, "KiB"},
		{"reply_window", &c.ReplyWindow, 1, inf, "days"},
		{"mqueue_max_age", &c.MQueueMaxAge, 1, inf, "hours"},
		{"log_keep", &c.LogKeep, 1, inf, "days"},
		{"error_reply_rate", &c.ErrorReplyRate, 0, 100, "error replies an hour to one address; 0: none"},
		{"build_log_keep", &c.BuildLogKeep, 0, inf, "days"},
		{"daemon_log_keep", &c.DaemonLogKeep, 0, inf, "days"},
		{"daemon_log_rotate", &c.DaemonLogRotate, 1, inf, "days"},
		{"delay_after_give_back", &c.DelayAfterGiveBack, 0, inf, "minutes"},
		{"error_mail_window", &c.ErrorMailWindow, 1, inf, "seconds"},
		{"idle_sleep_time", &c.IdleSleepTime, 1, inf, "seconds"},
		{"max_build", &c.MaxBuild, 1, inf, "builds"},
		{"max_sbuild_fails", &c.MaxSbuildFails, 0, inf, "infrastructure failures in a row"},
		{"sbuild_fails_pause", &c.SbuildFailsPause, 0, inf, "seconds"},
		{"give_back_retries", &c.GiveBackRetries, 1, 1000, "give-backs in a row"},
		{"slot_memory", &c.SlotMemory, 0, inf, "MiB; 0: the host's share"},
		{"min_free_space", &c.MinFreeSpace, 0, inf, "KiB"},
		{"nice_level", &c.NiceLevel, -20, 19, "a nice value"},
		{"pkg_log_keep", &c.PkgLogKeep, 0, inf, "days"},
		{"statistics_period", &c.StatisticsPeriod, 1, inf, "days"},
		{"warning_age", &c.WarningAge, 1, inf, "days"},
		{"upgrade_after", &c.UpgradeAfter, 1, inf, "hours"},
		{"maint_jobs", &c.MaintJobs, 1, 64, "jobs at once"},
	}
}

// DefaultLeaseTimeout is lease_timeout's default: an hour.
const DefaultLeaseTimeout = 3600

// Lease is the dist's lease_timeout in seconds; 0 is no leases.
func (d *Dist) Lease() int {
	if d.LeaseTimeout == nil {
		return DefaultLeaseTimeout
	}
	return *d.LeaseTimeout
}

// fill derives the defaults that depend on other keys.
func (c *Config) fill() {
	if c.WannaBuildDB == "" {
		c.WannaBuildDB = filepath.Join(c.Home, "wanna-build.db")
	}
	if c.WannaBuildListenDB == "" {
		c.WannaBuildListenDB = c.WannaBuildDB
	}
	if c.Outbox == "" && c.SMTP == "" && c.Sendmail == "" {
		c.Outbox = filepath.Join(c.Home, "outbox")
	}
	if c.DaemonLogFile == "" {
		c.DaemonLogFile = filepath.Join(c.Home, "daemon.log")
	}
	if c.PIDFile == "" {
		c.PIDFile = filepath.Join(c.Home, "build", "buildd.pid")
	}
	if c.BuilderName == "" {
		c.BuilderName = currentUser()
	}
	if c.MailFrom == "" {
		c.MailFrom = c.BuilderName
	}
	for i := range c.Dists {
		d := &c.Dists[i]
		if d.BuildMode == "" {
			d.BuildMode = "native"
		}
		if d.Machine == "" {
			d.Machine = d.DistName + "-" + d.BuiltArchitecture
			if d.BuildMode == "cross" {
				d.Machine = d.DistName + "-cross-" + d.BuiltArchitecture
			}
		}
		if d.DuploadLocalQueueDir == "" {
			d.DuploadLocalQueueDir = "upload"
		}
		if d.WannaBuildSSHUser == "" && d.WannaBuildSSHHost != "" {
			d.WannaBuildSSHUser = "buildd_" + d.BuiltArchitecture
		}
		if d.WannaBuildDBUser == "" {
			d.WannaBuildDBUser = c.BuilderName
		}
		if d.LeaseTimeout == nil {
			n := DefaultLeaseTimeout
			d.LeaseTimeout = &n
		}
	}
	if len(c.UploadQueues) == 0 {
		c.UploadQueues = []UploadQueue{{DuploadLocalQueueDir: "upload", DuploadArchiveName: "anonymous-ftp-master"}}
	}
	for i := range c.UploadQueues {
		if c.UploadQueues[i].DuploadArchiveName == "" {
			c.UploadQueues[i].DuploadArchiveName = "anonymous-ftp-master"
		}
	}
}

// KeyLine returns the line of the file where the top-level key is set, 0
// when it is not in the file; for messages about values that only a later
// check finds wrong ("FILE:LINE: uploader_schedule: ...").
func (c *Config) KeyLine(key string) int {
	data, err := os.ReadFile(c.File)
	if err != nil {
		return 0
	}
	return newLineIndex(data).keyLine(toml.Key{key})
}

// Where names the dist's queue, DIST/ARCH ("bookworm/arm64"): a host
// builds a dist once per architecture, and the home's files name a
// build's dist this way.
func (d *Dist) Where() string { return d.DistName + "/" + d.BuiltArchitecture }

// DistArch returns the [[dist]] table of dist built for arch.
func (c *Config) DistArch(dist, arch string) (*Dist, bool) {
	for i := range c.Dists {
		if c.Dists[i].DistName == dist && c.Dists[i].BuiltArchitecture == arch {
			return &c.Dists[i], true
		}
	}
	return nil, false
}

// Arches are the architectures this host builds dist for, in the
// config's order.
func (c *Config) Arches(dist string) []string {
	var out []string
	for i := range c.Dists {
		if c.Dists[i].DistName == dist {
			out = append(out, c.Dists[i].BuiltArchitecture)
		}
	}
	return out
}

// Resolve returns the [[dist]] table of dist built for arch. Where only
// the dist is known (arch "": a line of a classic format, a record written
// before this host built several architectures of one dist), it is the
// dist's only architecture here; when the host builds the dist for
// several, the error says that the architecture is missing and which it
// may be. The error names what is not configured.
func (c *Config) Resolve(dist, arch string) (*Dist, error) {
	arches := c.Arches(dist)
	switch {
	case len(arches) == 0:
		return nil, fmt.Errorf("no [[dist]] %s in %s", dist, c.File)
	case arch == "" && len(arches) > 1:
		return nil, fmt.Errorf("dist %s without an architecture: this host builds it for %s (%s), name one", dist, strings.Join(arches, " and "), c.File)
	case arch == "":
		arch = arches[0]
	}
	d, ok := c.DistArch(dist, arch)
	if !ok {
		return nil, fmt.Errorf("no [[dist]] %s for architecture %s in %s (it is built for %s)", dist, arch, c.File, strings.Join(arches, ", "))
	}
	return d, nil
}

// Means reports whether a record that names dist and arch is about d:
// both are d's, or arch is "" (a line of a classic format, or written
// before this host built several architectures of one dist) and d is the
// only architecture this host builds dist for. A record without arch of a
// dist built here for several is about none of them: false, and the
// error says that its architecture is missing.
func (c *Config) Means(d *Dist, dist, arch string) (bool, error) {
	if dist != d.DistName || arch != "" {
		return dist == d.DistName && arch == d.BuiltArchitecture, nil
	}
	r, err := c.Resolve(dist, "")
	if err != nil {
		return false, err
	}
	return r.Where() == d.Where(), nil
}

// TableKeys are the keys of a config table (Config{}, Dist{} or
// UploadQueue{}) but its tables within: what its documentation names.
func TableKeys(table any) []string {
	var keys []string
	rt := reflect.TypeOf(table)
	for i := range rt.NumField() {
		if k := rt.Field(i).Tag.Get("toml"); k != "" && k != "-" && k != "dist" && k != "upload_queue" {
			keys = append(keys, k)
		}
	}
	return keys
}

// Dump writes the effective configuration, defaults included, as TOML.
func (c *Config) Dump(w io.Writer) error {
	return toml.NewEncoder(w).Encode(c)
}

func currentUser() string {
	for _, v := range []string{"USER", "LOGNAME"} {
		if u := os.Getenv(v); u != "" {
			return u
		}
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	return fmt.Sprintf("uid%d", os.Geteuid())
}

// lineIndex finds where keys and table headers are in the raw file, for
// error messages; the TOML decoder does not report positions of keys it
// did not decode.
type lineIndex struct{ lines []string }

func newLineIndex(data []byte) *lineIndex {
	return &lineIndex{strings.Split(string(data), "\n")}
}

// typeErrRE and headerRE are compiled on first use, not in every
// process's start-up.
var typeErrRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^toml: line (\d+) (.*)$`) })

var headerRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\s*\[\[?\s*([A-Za-z0-9_.\-"]+)\s*\]\]?`)
})

func (li *lineIndex) tableHeaders(name string) []int {
	var out []int
	for i, l := range li.lines {
		if m := headerRE().FindStringSubmatch(l); m != nil && strings.HasPrefix(strings.TrimSpace(l), "[[") && m[1] == name {
			out = append(out, i+1)
		}
	}
	return out
}

// keyLine returns the line where key k is set: inside its table when it has
// one, else anywhere in the file; 0 when it cannot be found.
func (li *lineIndex) keyLine(k toml.Key) int {
	if len(k) > 1 {
		for _, h := range li.tableHeaders(k[0]) {
			if l := li.keyLineAfter(k[len(k)-1], h); l > 0 {
				return l
			}
		}
	} else if l := li.keyLineAfter(k[0], 0); l > 0 {
		return l
	}
	re := keyRE(k[len(k)-1])
	for i, l := range li.lines {
		if re.MatchString(l) {
			return i + 1
		}
	}
	return 0
}

// keyLineAfter looks for "name =" in the table whose header is on line
// header (0: the top level, before any header).
func (li *lineIndex) keyLineAfter(name string, header int) int {
	re := keyRE(name)
	for i := header; i < len(li.lines); i++ {
		if headerRE().MatchString(li.lines[i]) {
			return 0
		}
		if re.MatchString(li.lines[i]) {
			return i + 1
		}
	}
	return 0
}

func keyRE(name string) *regexp.Regexp {
	return regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(name) + `"?\s*=`)
}

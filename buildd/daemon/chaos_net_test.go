package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"buildd/buildd-mail/replytest"
	"buildd/internal/home"
	"buildd/internal/mailer/smtptest"
	"buildd/internal/queue"
	"buildd/internal/queue/pg"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/sshtest"
)

// chaos is one chaos run: its network, its schedule and what it saw.
type chaos struct {
	t         *testing.T
	seed      uint64
	plan      chaosPlan
	buildd    string // the buildd binary under test
	mailBin   string
	uploadBin string
	wbBin     string
	cluster   *pgtest.Cluster
	db        *pgtest.DB
	view      *pg.DB // the admin's read-only connection
	archive   *archive
	machines  string
	pkgs      []chaosPkg
	nodes     []*chaosNode
	gpg       *replytest.GPG
	keyring   string
	target    string // the upload target: one incoming directory per builder
	sshd      *chaosSSHD
	proxy     *chaosProxy
	skew      int // seconds the skewed builder's queue host is off
	schedule  []chaosEvent
	admin     *chaosAdmin
	began     time.Time // the merge
	stopping  chan struct{}
	helpers   sync.WaitGroup

	mu         sync.Mutex
	faults     []*chaosFault
	figures    []string
	violations []string
	times      struct{ setup, schedule, settle, checks time.Duration }
	queueDown  bool        // PostgreSQL is stopped
	cutsArmed  []time.Time // cuts armed and not yet made
	mailKills  killer      // of buildd-mail runs
	upKills    killer      // of buildd-uploader runs
	fulls      []fullness  // when a home volume was full
}

// fullness is a time a builder's home volume was full.
type fullness struct {
	node       string
	start, end time.Time
}

// chaosPkg is a test package and what the admin's answer makes of it.
type chaosPkg struct {
	srcPkg
	kind string // "quick", "slow", "failing"
}

// end is the state the package must end in.
func (p chaosPkg) end() queue.State {
	if p.kind == "failing" {
		return queue.Failed
	}
	return queue.Uploaded
}

// chaosVias are how the builders reach the queue: "pg" (PostgreSQL as
// their own role), "ssh" (through the queue host's sshd, with the queue
// host's clock for them off by chaos.skew), "ssh-cut" (through the proxy
// that cuts connections mid-call).
var chaosVias = []string{"pg", "pg", "pg", "pg", "pg", "pg", "ssh", "ssh-cut"}

// smallHomeNode is the builder whose home is a small volume, filled by the
// home-full faults.
const smallHomeNode = 5

// sickNode is the sick builder: its mirror (the dist's apt_sources)
// refuses every connection, so every build it takes fails at fetch-src,
// the infrastructure's fault, never the package's. It must put itself in
// quarantine and build nothing; the healthy ones build everything.
const sickNode = 4

// sickMirror is the sick builder's mirror: nothing listens there.
const sickMirror = "http://127.0.0.1:9/"

// chaosNode is one builder: its home, its buildd process and what was
// done to it.
type chaosNode struct {
	c        *chaos
	name     string // builder_name and PostgreSQL role
	via      string // how it reaches the queue: "pg", "ssh" (clock off), "ssh-cut" (through the cutting proxy)
	env      *env
	incoming string // its directory of the upload target
	dputCf   string

	mu         sync.Mutex
	proc       *proc
	frozen     bool
	restarting bool // killed by the schedule, to be started again by it
	restarts   int
	kills      []time.Time // kill -9 of a process writing in its home
}

// killer kills the runs of one program (buildd-mail, buildd-uploader) as
// scheduled: the next run on any builder after a kill is armed, at a
// fraction of the last run's time; a run that ends first leaves the kill
// armed for the next one.
type killer struct {
	mu    sync.Mutex
	armed []float64
	last  time.Duration // the last run's time; at first, a guess
}

func (k *killer) arm(frac float64) {
	k.mu.Lock()
	k.armed = append(k.armed, frac)
	k.mu.Unlock()
}

// run runs cmd, killed with SIGKILL when a kill is armed (the kill is
// taken for this run, and armed again if the run ends first); it returns
// cmd's error and, when killed before it exited, after how long.
func (k *killer) run(cmd *exec.Cmd) (error, time.Duration) {
	k.mu.Lock()
	var kill *time.Duration
	var frac float64
	if len(k.armed) > 0 {
		frac, k.armed = k.armed[0], k.armed[1:]
		d := time.Duration(frac * float64(k.last))
		kill = &d
	}
	k.mu.Unlock()
	start := time.Now()
	err, killed := runKilled(cmd, kill)
	if killed {
		return err, *kill
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.last = time.Since(start)
	if kill != nil {
		k.armed = append([]float64{frac}, k.armed...)
	}
	return err, 0
}

// left is how many armed kills found no run to kill; they are dropped.
func (k *killer) left() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := len(k.armed)
	k.armed = nil
	return n
}

// chaosSkew draws the skewed builder's clock: ahead by up to 15 minutes,
// or behind by up to 8 seconds. The database refuses stamps more than an
// hour off its clock (the documented tolerance), and a builder stamps its
// own leases: behind by more than lease_timeout less a renewal period, its
// leases would end as it writes them.
func chaosSkew(rng *rand.Rand) int {
	if rng.IntN(2) == 0 {
		return 30 + rng.IntN(870)
	}
	return -(3 + rng.IntN(6))
}

// runChaos sets up the network, runs the schedule drawn from seed with
// the buildd binary under test, lets it settle, stops it and checks the
// invariants.
func runChaos(t *testing.T, seed uint64, plan chaosPlan, buildd string) *chaos {
	t.Helper()
	chaosRequire(t)
	setup := time.Now()
	c := &chaos{t: t, seed: seed, plan: plan, buildd: buildd, stopping: make(chan struct{}),
		mailKills: killer{last: 50 * time.Millisecond}, upKills: killer{last: time.Second}}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c.pkgs = chaosPackages(rng, plan)
	c.skew = chaosSkew(rng)
	c.setUp()
	c.schedule = drawSchedule(rng, c)
	c.mu.Lock()
	c.times.setup = time.Since(setup)
	c.mu.Unlock()
	c.logSchedule()

	c.startHelpers()
	c.began = time.Now()
	c.archive.merge(t, c.db.URL(pgtest.Admin))
	c.runSchedule()
	c.mu.Lock()
	c.times.schedule = time.Since(c.began)
	c.mu.Unlock()

	settle := time.Now()
	c.settle()
	c.mu.Lock()
	c.times.settle = time.Since(settle)
	c.mu.Unlock()

	checks := time.Now()
	c.stop()
	c.check()
	c.mu.Lock()
	c.times.checks = time.Since(checks)
	c.mu.Unlock()
	return c
}

// chaosRequire skips loudly without the programs the run drives besides
// PostgreSQL and the build machines'.
func chaosRequire(t *testing.T) {
	t.Helper()
	for _, p := range []string{"dput", "gpg", "mkfs.ext4", "fallocate", "/usr/sbin/sshd", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("!!!!! SKIPPED %s: the chaos run needs %s (make deps): %v !!!!!", t.Name(), p, err)
		}
	}
}

// chaosPackages draws the packages: quick ones, slow ones (a build that
// outlasts a freeze's start and a PostgreSQL stop) and failing ones.
func chaosPackages(rng *rand.Rand, plan chaosPlan) []chaosPkg {
	var out []chaosPkg
	for i := 0; i < plan.quick; i++ {
		out = append(out, chaosPkg{srcPkg{fmt.Sprintf("chaosq%02d", i), "1.0", "misc", fmt.Sprintf("sleep %d", 1+rng.IntN(3))}, "quick"})
	}
	for i := 0; i < plan.slow; i++ {
		out = append(out, chaosPkg{srcPkg{fmt.Sprintf("chaoss%02d", i), "1.0", "misc", fmt.Sprintf("sleep %d", 20+rng.IntN(plan.slowest-19))}, "slow"})
	}
	for i := 0; i < plan.failing; i++ {
		out = append(out, chaosPkg{srcPkg{fmt.Sprintf("chaosf%02d", i), "1.0", "misc", fmt.Sprintf("sleep %d; exit 1", 1+rng.IntN(15))}, "failing"})
	}
	return out
}

// setUp makes the network: the cluster and queue, the archive and the
// machines volume, the admin's key, the queue host's sshd, the builders'
// homes and configs; then starts the builders.
func (c *chaos) setUp() {
	t := c.t
	c.cluster = pgtest.Own(t)
	c.db = c.cluster.NewDB(t)
	var srcs []srcPkg
	for _, p := range c.pkgs {
		srcs = append(srcs, p.srcPkg)
	}
	c.archive = newArchive(t, srcs...)
	machines, dist := buildMachine(t, c.archive)
	c.machines = machines
	dist += fmt.Sprintf("lease_timeout = %d\n", int(chaosLease/time.Second))

	dir := t.TempDir()
	c.gpg = replytest.NewGPG(t, filepath.Join(dir, "gnupg"))
	c.keyring = filepath.Join(dir, "admins.asc")
	c.gpg.WriteKeyring(c.keyring, true, replytest.Admin)
	c.target = filepath.Join(dir, "target")
	c.wbBin = wannaBuild(t)
	c.mailBin = goBuild(t, "buildd/buildd-mail")
	c.uploadBin = goBuild(t, "buildd/buildd-uploader")
	c.sshd = startChaosSSHD(t, c.wbBin)
	c.proxy = startChaosProxy(t, c, "127.0.0.1:"+c.sshd.Port)

	for i, via := range chaosVias {
		n := &chaosNode{c: c, name: fmt.Sprintf("buildd_%d", i+1), via: via}
		c.cluster.Role(t, n.name)
		n.incoming = filepath.Join(c.target, n.name)
		if err := os.MkdirAll(n.incoming, 0o755); err != nil {
			t.Fatal(err)
		}
		home := t.TempDir()
		if i == smallHomeNode {
			smallVolume(t, home)
		}
		n.dputCf = filepath.Join(dir, n.name+".dput.cf")
		cf := fmt.Sprintf("[chaos]\nmethod = local\nincoming = %s\nallow_unsigned_uploads = 1\nrun_lintian = 0\n", n.incoming)
		if err := os.WriteFile(n.dputCf, []byte(cf), 0o644); err != nil {
			t.Fatal(err)
		}
		nodeDist := dist
		if i == sickNode {
			nodeDist = strings.ReplaceAll(dist, c.archive.url, sickMirror)
		}
		n.env = c.nodeEnv(n, home, nodeDist)
		c.nodes = append(c.nodes, n)
	}
	view, err := pg.Open(context.Background(), c.db.URL(pgtest.Admin), pg.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the queue as its admin: %v", err)
	}
	c.view = view
	t.Cleanup(func() { view.Close() })
	for _, n := range c.nodes {
		c.db.Grant(t, n.name, queue.Pair{Dist: "bookworm", Arch: "amd64"})
	}
	for _, n := range c.nodes {
		n.start()
	}
	for _, n := range c.nodes {
		n.waitUp(2 * time.Minute)
	}
}

// nodeEnv writes n's config: its queue (PostgreSQL as its own role, or
// ssh to the queue host), the admin's keyring, the upload target, and
// the settings that keep a run short (no delay after a give-back, a
// quarantine probed every ten seconds with a quick package, error replies
// unthrottled).
func (c *chaos) nodeEnv(n *chaosNode, home, dist string) *env {
	t := c.t
	srv, err := smtptest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := &env{t: t, home: home, machines: c.machines, smtp: srv}
	e.conf = filepath.Join(home, "buildd.conf")
	idle := 10
	switch n.via {
	case "ssh":
		dist += c.sshd.distKeys(c.sshd.Port, fmt.Sprintf("CHAOS_DB=%s CHAOS_SKEW=%d", c.db.URL(n.name), c.skew))
		idle = 5
	case "ssh-cut":
		dist += c.sshd.distKeys(c.proxy.port, fmt.Sprintf("CHAOS_DB=%s CHAOS_DROP=%s", c.db.URL(n.name), c.proxy.dropDir))
		idle = 5
	}
	extra := fmt.Sprintf(`builder_name = %q
wanna_build_db = %q
max_build = 1
idle_sleep_time = %d
delay_after_give_back = 0
sbuild_fails_pause = 10
quarantine_probe = "chaosq00_1.0"
error_reply_rate = 100
admin_keyring = %q
upload_tool = "dput"
upload_tool_config = %q

[[upload_queue]]
dupload_local_queue_dir = "upload"
dupload_archive_name = "chaos"
`, n.name, c.db.URL(n.name), idle, c.keyring, n.dputCf)
	e.writeConf(extra, dist)
	return e
}

// goBuild builds the program pkg (an import path) into a temporary
// directory of the test.
func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// smallHome is the size of the small home volume (builder smallHomeNode).
const smallHome = "96M"

// smallVolume mounts a fresh ext4 loop volume of smallHome (no blocks
// reserved for root, who runs everything) on dir.
func smallVolume(t *testing.T, dir string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "home.img")
	for _, args := range [][]string{{"truncate", "-s", smallHome, img}, {"mkfs.ext4", "-q", "-F", "-m", "0", img}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v\n%s", img, err, out)
	}
	dev := strings.TrimSpace(string(out))
	if out, err := exec.Command("mount", "-o", "noatime", dev, dir).CombinedOutput(); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		t.Fatalf("mount %s on %s: %v\n%s", dev, dir, err, out)
	}
	t.Cleanup(func() {
		var out []byte
		var err error
		for i := 0; i < 50; i++ {
			if out, err = exec.Command("umount", dir).CombinedOutput(); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
		exec.Command("losetup", "-d", dev).Run()
	})
}

// start starts n's buildd in the foreground.
func (n *chaosNode) start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := &proc{stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(n.c.buildd, "--config", n.env.conf, "--no-detach")
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "BUILDD_CONF=")
	if err := p.cmd.Start(); err != nil {
		n.c.t.Fatalf("start %s: %v", n.name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	n.c.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	n.proc = p
}

// up reports whether n's buildd runs: on PostgreSQL, it listens to the
// queue; over ssh, it is alive and its pid file names it (whether it got
// through its start-up stages shows when it stops: exit 0 on SIGTERM).
func (n *chaosNode) up() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p.exited() {
		return false
	}
	if n.via == "pg" {
		l, err := n.c.listeners()
		return err == nil && l[n.name]
	}
	pid, err := home.ReadPID(filepath.Join(n.env.home, "build", "buildd.pid"))
	return err == nil && pid == p.cmd.Process.Pid
}

// watch starts again a buildd that exited on its own, as buildd-watcher
// does from cron: buildd cannot start while no queue answers (exit 1);
// any other exit is a broken invariant.
func (c *chaos) watch() {
	for c.pause(2 * time.Second) {
		for _, n := range c.nodes {
			n.mu.Lock()
			p, busy := n.proc, n.restarting || n.frozen
			n.mu.Unlock()
			if busy || !p.exited() {
				continue
			}
			code := p.cmd.ProcessState.ExitCode()
			if code != 1 {
				c.violation("%s: buildd exited %d on its own: %s", n.name, code, lastLines(p.stderr.String(), 5))
			}
			c.figure("%6.1fs %s: buildd exited %d (%s); started again by the watcher", time.Since(c.began).Seconds(), n.name, code, lastLines(p.stderr.String(), 1))
			n.start()
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// waitUp waits until n's buildd has started its loop (and, on a
// PostgreSQL queue, listens to it).
func (n *chaosNode) waitUp(timeout time.Duration) {
	t := n.c.t
	want := "bookworm/amd64: waiting for the queue's notifications"
	if n.via != "pg" {
		want = "Stage 5: loop"
	}
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	waitFor(t, timeout, n.name+" to start", func() bool {
		if p.exited() {
			t.Fatalf("%s exited: %s\n%s", n.name, p.stderr, n.env.daemonLog())
		}
		return strings.Contains(n.env.daemonLog(), want)
	})
}

// chaosSSHD is the queue host's sshd on 127.0.0.1: root logs in with key,
// and wanna-build is the chaos wrapper (wanna-build.sh) of the test's
// wanna-build, which takes the builder's database, clock skew and cut
// from CHAOS_* variables the client sends (SetEnv).
type chaosSSHD struct{ *sshtest.Server }

// wrapper is the queue host's wanna-build: the builder's database
// (CHAOS_DB); its clock CHAOS_SKEW seconds off ($WANNA_BUILD_NOW, the
// clock of every stamp the call writes); and, when the test armed a cut
// in CHAOS_DROP, the call that claims it asks the test's proxy to cut its
// connection, before running wanna-build or after (its change committed,
// its answer not sent), and waits to be cut.
const wrapper = `#!/bin/sh
WANNA_BUILD_DB=$CHAOS_DB
export WANNA_BUILD_DB
if [ -n "$CHAOS_SKEW" ]; then
	WANNA_BUILD_NOW=$(( $(date +%%s) + CHAOS_SKEW ))
	export WANNA_BUILD_NOW
fi
if [ -n "$CHAOS_DROP" ] && mv "$CHAOS_DROP/armed" "$CHAOS_DROP/claimed.$$" 2>/dev/null; then
	phase=$(cat "$CHAOS_DROP/claimed.$$")
	port=${SSH_CLIENT#* }
	port=${port%%%% *}
	out=
	if [ "$phase" = after ]; then
		out=$(%[1]s "$@")
	fi
	printf '%%s %%s %%s\n' "$port" "$phase" "$*" > "$CHAOS_DROP/.cut.$$"
	mv "$CHAOS_DROP/.cut.$$" "$CHAOS_DROP/cut.$$"
	sleep 20
	printf '%%s\n' "$out"
	exit 1
fi
exec %[1]s "$@"
`

func startChaosSSHD(t *testing.T, wb string) *chaosSSHD {
	t.Helper()
	bindir := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bindir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bindir, "wanna-build"), []byte(fmt.Sprintf(wrapper, wb)), 0o755); err != nil {
		t.Fatal(err)
	}
	return &chaosSSHD{sshtest.Start(t, "MaxStartups 100\nAcceptEnv CHAOS_*\nSetEnv PATH="+bindir+":/usr/bin:/bin")}
}

// distKeys are the [[dist]] keys of a builder reaching the queue host on
// port, sending env (SetEnv: "NAME=VALUE ...").
func (s *chaosSSHD) distKeys(port, env string) string {
	opts := append([]string{"-i", s.Key}, s.Options()...)
	opts[slices.Index(opts, "-p")+1] = port
	opts = append(opts, "-o", "SetEnv="+env)
	var q []string
	for _, o := range opts {
		q = append(q, strconv.Quote(o))
	}
	return fmt.Sprintf("wanna_build_ssh_host = \"127.0.0.1\"\nwanna_build_ssh_user = \"root\"\nwanna_build_ssh_options = [%s]\n", strings.Join(q, ", "))
}

// chaosProxy relays TCP connections to the queue host's sshd and cuts the
// connection a wrapped call names (see wrapper): the call's ssh sees its
// connection drop in the middle of the call.
type chaosProxy struct {
	c        *chaos
	port     string
	upstream string
	dropDir  string
	mu       sync.Mutex
	conns    map[int][2]net.Conn // by the upstream connection's local port (sshd's $SSH_CLIENT)
}

func startChaosProxy(t *testing.T, c *chaos, upstream string) *chaosProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProxy{c: c, upstream: upstream, dropDir: t.TempDir(), conns: map[int][2]net.Conn{}}
	_, p.port, _ = net.SplitHostPort(l.Addr().String())
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			go p.relay(down)
		}
	}()
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.cut()
			}
		}
	}()
	return p
}

func (p *chaosProxy) relay(down net.Conn) {
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		down.Close()
		return
	}
	port := up.LocalAddr().(*net.TCPAddr).Port
	p.mu.Lock()
	p.conns[port] = [2]net.Conn{down, up}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go pipe(up, down)
	go pipe(down, up)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, port)
	p.mu.Unlock()
}

// arm makes the next call of the cut builder claim a cut in phase
// ("before" or "after" its change).
func (p *chaosProxy) arm(phase string) error {
	tmp := filepath.Join(p.dropDir, ".armed")
	if err := os.WriteFile(tmp, []byte(phase), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(p.dropDir, "armed"))
}

// cut cuts the connections the wrapped calls asked for.
func (p *chaosProxy) cut() {
	reqs, _ := filepath.Glob(filepath.Join(p.dropDir, "cut.*"))
	for _, r := range reqs {
		b, err := os.ReadFile(r)
		os.Remove(r)
		if err != nil {
			continue
		}
		f := strings.SplitN(strings.TrimSpace(string(b)), " ", 3)
		port, _ := strconv.Atoi(f[0])
		p.mu.Lock()
		pair, ok := p.conns[port]
		p.mu.Unlock()
		what := "no connection from port " + f[0]
		if ok {
			pair[0].Close()
			pair[1].Close()
			what = "connection cut"
		}
		call := ""
		if len(f) == 3 {
			call = f[2]
		}
		p.c.cutDone(f[1], call, what)
	}
}

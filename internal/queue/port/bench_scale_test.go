package port_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"buildd/internal/config"
	"buildd/internal/queue"
	"buildd/internal/queue/pg/pgtest"
	"buildd/internal/queue/port"
)

// The build network at scale (BenchmarkScale).
const (
	// scalePackages are registered in Needs-Build in each of scaleQueues.
	scalePackages = 5000
	// scaleSlots is a host's max_build at most: the builders of a host
	// share its port (one pool, one role) and its listener.
	scaleSlots = 10
	// scaleRate is the takes a second every run's builders ask for: a
	// build sleeps 0.5 to 1.5 times builders/scaleRate seconds, so each
	// run builds the 20,000 packages in about the same time, and what
	// differs is the number of builders, hosts and connections. It is
	// about half of what a 2-core VM gave at most while the lists were
	// long (each round reads its queue's whole Needs-Build list).
	scaleRate = 50
	// scaleLease is lease_timeout (seconds): at 500 builders most builds
	// outlive it, and the hosts' renewals keep them.
	scaleLease = 8
	// scaleGiveBack and scaleAttempted are the shares of builds given
	// back (the package is built again later) and set Build-Attempted.
	scaleGiveBack, scaleAttempted = 0.01, 0.01
	// scaleGiveBackDelay is delay_after_give_back and scaleIdleSleep
	// idle_sleep_time, shortened as the builds are: a host takes a
	// package it gave back only after the delay, and looks at the queue
	// after the idle sleep even when nothing woke it.
	scaleGiveBackDelay, scaleIdleSleep = 10 * time.Second, 5 * time.Second
	// scalePoolSize is pgbouncer's default_pool_size, as the README
	// recommends: one server connection per host role.
	scalePoolSize = 1
)

var (
	scaleQueues   = []queue.Pair{{Dist: "bookworm", Arch: "amd64"}, {Dist: "bookworm", Arch: "arm64"}, {Dist: "trixie", Arch: "amd64"}, {Dist: "trixie", Arch: "arm64"}}
	scaleBuilders = []int{8, 64, 500}
)

// BenchmarkScale: builders on one PostgreSQL queue of 20,000 Needs-Build
// packages in four dist/arch queues, with the connections the README
// documents: each host's commands through a pgbouncer of the test's own
// (transaction pooling), its LISTEN connection straight to the server.
// Run with 8, 64 and 500 builders, side by side, each on a fresh queue
// (about half an hour; -bench 'Scale/builders=500$' runs one size):
//
//	go test -run '^$' -bench Scale -benchtime 1x -timeout 90m ./internal/queue/port/
//
// A builder is a build slot of a simulated host (up to scaleSlots a
// host; hosts = 4 × ceil(builders / 40), each with a role of its own
// given one queue): the host is the real port (port.Open, as buildd
// opens it, from a config with wanna_build_db and wanna_build_listen_db)
// and a loop like the daemon's (a round for the free slots: NeedsBuild,
// then Take and Info down the list; leases renewed and ended ones given
// back every quarter of lease_timeout; woken by the queue's
// notifications, by a finished build and after idle_sleep_time), with
// the build replaced by a random sleep, then Built (or Attempted, or
// GiveBack). The hosts connect and listen on empty queues; then the
// admin merges the packages, one queue after the other.
//
// Reported per run: packages built (Built or Build-Attempted in the
// queue at the end), double builds (a take of a package being built, or
// a second result), packages lost (not built at the end) and leases lost
// (renewals refused, leases ended); the dispatch latency, from a slot
// becoming free, or if later from the package becoming Needs-Build (its
// merge's return, its give-back; for the host that gave it back, the end
// of delay_after_give_back), to its take, p50/p99/max; takes a second;
// the server's client backends at
// most (sampled every 100 ms from pg_stat_activity; of them listening)
// and the backends started (pg_stat_database.sessions); the CPU seconds
// of the PostgreSQL processes, of pgbouncer and of this process (the
// simulated hosts) from /proc and getrusage. The figures are the
// README's; only correctness fails the benchmark.
func BenchmarkScale(b *testing.B) {
	var runs []scaleFigures
	for _, n := range scaleBuilders {
		b.Run(fmt.Sprintf("builders=%d", n), func(b *testing.B) {
			for range b.N {
				f := runScale(b, n)
				runs = append(runs, f)
				b.ReportMetric(float64(f.p50.Microseconds())/1000, "ms-p50")
				b.ReportMetric(float64(f.p99.Microseconds())/1000, "ms-p99")
				b.ReportMetric(float64(f.fillMax.Microseconds())/1000, "ms-first-fill-max")
				b.ReportMetric(float64(f.later99.Microseconds())/1000, "ms-p99-after-fill")
				b.ReportMetric(f.takesPerSec(), "takes/s")
				b.ReportMetric(float64(f.maxConns), "server-conns-max")
				b.ReportMetric(f.serverCPU.Seconds(), "server-cpu-s")
				b.ReportMetric(float64(f.doubles), "double-builds")
				b.ReportMetric(float64(f.lost), "lost")
			}
		})
	}
	if len(runs) > 0 {
		fmt.Printf("\n%s\n", scaleTable(runs))
	}
}

// scaleFigures are one run's results.
type scaleFigures struct {
	builders, hosts                    int
	built, attempted, givenBack        int
	doubles, lost, lostLeases, expired int
	takes, refused                     int
	p50, p99, max                      time.Duration // every take
	fill50, fillMax                    time.Duration // each slot's first take, after the merge
	later50, later99, laterMax         time.Duration // the takes after
	wall                               time.Duration
	maxConns, maxListeners, sessions   int
	serverCPU, bouncerCPU, clientCPU   time.Duration
}

func (f scaleFigures) takesPerSec() float64 { return float64(f.takes) / f.wall.Seconds() }

func scaleTable(runs []scaleFigures) string {
	var sb strings.Builder
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, cell func(f scaleFigures) string) {
		fmt.Fprintf(w, "%s\t", name)
		for _, f := range runs {
			fmt.Fprintf(w, "%s\t", cell(f))
		}
		fmt.Fprintln(w)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	row("builders (hosts)", func(f scaleFigures) string { return fmt.Sprintf("%d (%d)", f.builders, f.hosts) })
	row("built + attempted", func(f scaleFigures) string { return fmt.Sprintf("%d + %d", f.built, f.attempted) })
	row("given back, built again", func(f scaleFigures) string { return strconv.Itoa(f.givenBack) })
	row("double builds", func(f scaleFigures) string { return strconv.Itoa(f.doubles) })
	row("lost packages", func(f scaleFigures) string { return strconv.Itoa(f.lost) })
	row("lost leases (refused renewals + ended)", func(f scaleFigures) string { return fmt.Sprintf("%d + %d", f.lostLeases, f.expired) })
	row("dispatch p50 / p99 / max (ms)", func(f scaleFigures) string { return ms(f.p50) + " / " + ms(f.p99) + " / " + ms(f.max) })
	row("  first take of each slot: p50 / max", func(f scaleFigures) string { return ms(f.fill50) + " / " + ms(f.fillMax) })
	row("  the takes after: p50 / p99 / max", func(f scaleFigures) string { return ms(f.later50) + " / " + ms(f.later99) + " / " + ms(f.laterMax) })
	row("takes/s (refused takes)", func(f scaleFigures) string { return fmt.Sprintf("%.0f (%d)", f.takesPerSec(), f.refused) })
	row("wall (s)", func(f scaleFigures) string { return fmt.Sprintf("%.0f", f.wall.Seconds()) })
	row("server backends max (listening)", func(f scaleFigures) string { return fmt.Sprintf("%d (%d)", f.maxConns, f.maxListeners) })
	row("backends started", func(f scaleFigures) string { return strconv.Itoa(f.sessions) })
	row("CPU s: postgres / pgbouncer / hosts", func(f scaleFigures) string {
		return fmt.Sprintf("%.0f / %.1f / %.0f", f.serverCPU.Seconds(), f.bouncerCPU.Seconds(), f.clientCPU.Seconds())
	})
	w.Flush()
	return sb.String()
}

// scaleRun is what a run's hosts share: the packages' fate as the hosts
// see it.
type scaleRun struct {
	cancel context.CancelFunc
	total  int

	mu         sync.Mutex
	ready      map[string]time.Time // when each package became Needs-Build
	givenBack  map[string]string    // the host that gave each package back
	building   map[string]string    // the host building each package
	results    map[string]int       // results (Built, Attempted) reported of each package
	warm       time.Time            // when every slot was free, before the merge
	fills      []time.Duration      // dispatch times of each slot's first take
	laters     []time.Duration      // dispatch times of the takes after
	figures    scaleFigures
	errs       []error
	finished   int
	hostsAlive sync.WaitGroup
}

// fail records an error of the queue (not a refusal) and ends the run.
func (r *scaleRun) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.cancel()
}

// took records host's take of pkgv at when, by a slot free since free.
func (r *scaleRun) took(host, pkgv string, when, free time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if other := r.building[pkgv]; other != "" {
		r.figures.doubles++
		r.errs = append(r.errs, fmt.Errorf("%s took %s, which %s is building", host, pkgv, other))
	}
	r.building[pkgv] = host
	r.figures.takes++
	ready := r.ready[pkgv]
	if r.givenBack[pkgv] == host {
		ready = ready.Add(scaleGiveBackDelay) // not its to take before
	}
	d := max(0, when.Sub(later(free, ready)))
	if free.Equal(r.warm) {
		r.fills = append(r.fills, d)
	} else {
		r.laters = append(r.laters, d)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// givingBack records that host is about to give pkgv back, making it
// Needs-Build again (before the give-back: another host may take it as
// soon as it commits).
func (r *scaleRun) givingBack(host, pkgv string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.building, pkgv)
	r.ready[pkgv] = time.Now()
	r.givenBack[pkgv] = host
	r.figures.givenBack++
}

// stopped records that host's build of pkgv stopped without a result
// (its lease was lost).
func (r *scaleRun) stopped(host, pkgv string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.building[pkgv] == host {
		delete(r.building, pkgv)
	}
}

// done records a result of pkgv; the run ends with the last package.
func (r *scaleRun) done(pkgv string, state queue.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.building, pkgv)
	r.results[pkgv]++
	if r.results[pkgv] > 1 {
		r.figures.doubles++
		r.errs = append(r.errs, fmt.Errorf("%s: result %d (%s)", pkgv, r.results[pkgv], state))
		return
	}
	if state == queue.Built {
		r.figures.built++
	} else {
		r.figures.attempted++
	}
	if r.finished++; r.finished == r.total {
		r.cancel()
	}
}

func (r *scaleRun) count(field *int, n int) {
	r.mu.Lock()
	*field += n
	r.mu.Unlock()
}

// scaleHost is a simulated build host: one port, one role, up to
// scaleSlots builds at once.
type scaleHost struct {
	run   *scaleRun
	name  string
	port  queue.Port
	mean  time.Duration // a build's mean time
	lease time.Duration

	wake      chan struct{}
	listening chan struct{} // closed once the host listens
	once      sync.Once

	mu        sync.Mutex
	free      []time.Time          // when each free slot became free, oldest first
	running   map[string]buildStep // the builds, by pkgv
	givenBack map[string]time.Time // when this host gave a package back
	renewed   time.Time
}

// buildStep is where a running build is.
type buildStep int

const (
	building  buildStep = iota + 1 // its lease renewed
	reporting                      // its result on the way to the queue: no longer renewed
	leaseLost                      // a renewal was refused: stopped, no result
)

func (h *scaleHost) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// loop is the daemon's loop: a round when a slot frees, when the queue
// notifies, and after idle_sleep_time.
func (h *scaleHost) loop(ctx context.Context) {
	idle := time.NewTimer(scaleIdleSleep)
	defer idle.Stop()
	for ctx.Err() == nil {
		h.round(ctx)
		idle.Reset(scaleIdleSleep)
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-idle.C:
		}
	}
}

// round is the daemon's fromQueue for the free slots: the Needs-Build
// list, best first, taken down until the slots are full; each take is
// followed by an Info, as buildd does with should_build_msgs (its
// default).
func (h *scaleHost) round(ctx context.Context) {
	h.mu.Lock()
	free := len(h.free)
	h.mu.Unlock()
	if free == 0 {
		return
	}
	list, err := h.port.NeedsBuild(ctx)
	if err != nil {
		h.failed(ctx, "list needs-build", err)
		return
	}
	for _, c := range list {
		if free == 0 || ctx.Err() != nil {
			return
		}
		pkgv := c.PkgVersion()
		h.mu.Lock()
		_, busy := h.running[pkgv]
		skip := busy || time.Since(h.givenBack[pkgv]) < scaleGiveBackDelay
		h.mu.Unlock()
		if skip {
			continue
		}
		err := h.port.Take(ctx, pkgv)
		if queue.IsRefused(err) {
			h.run.count(&h.run.figures.refused, 1)
			continue
		}
		if err != nil {
			h.failed(ctx, "take "+pkgv, err)
			return
		}
		when := time.Now()
		h.mu.Lock()
		since := h.free[0]
		h.free = h.free[1:]
		h.running[pkgv] = building
		h.mu.Unlock()
		h.run.took(h.name, pkgv, when, since)
		free--
		if _, err := h.port.Info(ctx, c.Name); err != nil {
			h.failed(ctx, "info "+c.Name, err)
			return
		}
		h.run.hostsAlive.Add(1)
		go h.build(ctx, pkgv)
	}
}

func (h *scaleHost) failed(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		h.run.fail(fmt.Errorf("host %s: %s: %w", h.name, what, err))
	}
}

// build sleeps for the build's time, then reports its result, unless
// the lease was lost meanwhile (as buildd stops such a build); the slot
// is free again once the queue has the result.
func (h *scaleHost) build(ctx context.Context, pkgv string) {
	defer h.run.hostsAlive.Done()
	select {
	case <-time.After(time.Duration((0.5 + rand.Float64()) * float64(h.mean))):
	case <-ctx.Done():
		return
	}
	h.mu.Lock()
	mine := h.running[pkgv] == building
	if mine {
		h.running[pkgv] = reporting
	}
	h.mu.Unlock()
	if mine {
		var err error
		state := queue.Built
		switch x := rand.Float64(); {
		case x < scaleGiveBack:
			h.run.givingBack(h.name, pkgv)
			h.mu.Lock()
			h.givenBack[pkgv] = time.Now()
			h.mu.Unlock()
			err = h.port.GiveBack(ctx, pkgv)
			state = queue.NeedsBuild
		case x < scaleGiveBack+scaleAttempted:
			state = queue.BuildAttempted
			err = h.port.Attempted(ctx, pkgv)
		default:
			err = h.port.Built(ctx, pkgv)
		}
		switch {
		case queue.IsRefused(err):
			h.run.count(&h.run.figures.lostLeases, 1)
			h.run.stopped(h.name, pkgv)
		case err != nil:
			h.failed(ctx, fmt.Sprintf("set %s %s", pkgv, state), err)
			return
		case state != queue.NeedsBuild:
			h.run.done(pkgv, state)
		}
	} else {
		h.run.stopped(h.name, pkgv)
	}
	h.mu.Lock()
	delete(h.running, pkgv)
	h.free = append(h.free, time.Now())
	h.mu.Unlock()
	h.poke()
}

// leases is the daemon's Leases: every quarter of lease_timeout (and at
// most every eighth), renew this host's leases and give back the ended
// ones.
func (h *scaleHost) leases(ctx context.Context) {
	tick := time.NewTicker(h.lease / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.mu.Lock()
		due := time.Since(h.renewed) >= h.lease/8
		if due {
			h.renewed = time.Now()
		}
		h.mu.Unlock()
		if !due {
			continue
		}
		h.renew(ctx)
		expired, err := h.port.ExpireLeases(ctx)
		if err != nil {
			h.failed(ctx, "expire leases", err)
			return
		}
		h.run.count(&h.run.figures.expired, len(expired))
	}
}

// renew renews the leases of the running builds; a lost one stops its
// build.
func (h *scaleHost) renew(ctx context.Context) {
	h.mu.Lock()
	var pkgvs []string
	for pkgv, step := range h.running {
		if step == building {
			pkgvs = append(pkgvs, pkgv)
		}
	}
	h.mu.Unlock()
	lost, err := h.port.Renew(ctx, pkgvs...)
	if err != nil {
		h.failed(ctx, "renew", err)
		return
	}
	n := 0
	h.mu.Lock()
	for _, pkgv := range lost {
		// A build whose result went to the queue meanwhile is no longer
		// Building: not a lost lease.
		if h.running[pkgv] == building {
			h.running[pkgv] = leaseLost
			n++
		}
	}
	h.mu.Unlock()
	h.run.count(&h.run.figures.lostLeases, n)
}

// listen is the daemon's ListenQueues for the host's one queue: a round
// and a renewal once listening, a round for each notification, a
// renewal at once when the queue tells that a package of this host was
// taken from it.
func (h *scaleHost) listen(ctx context.Context) {
	defer h.run.hostsAlive.Done()
	for ctx.Err() == nil {
		ready := func() {
			h.once.Do(func() { close(h.listening) })
			h.poke()
			h.renew(ctx)
		}
		err := h.port.(queue.Notifier).Listen(ctx, ready, h.poke, func() { h.renew(ctx) })
		if ctx.Err() != nil {
			return
		}
		h.failed(ctx, "listen", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// runScale runs n builders on a fresh queue: the hosts connect, listen
// and find nothing to do; then the admin merges the 20,000 packages, and
// the run ends when the last is built.
func runScale(b *testing.B, n int) scaleFigures {
	b.StopTimer()
	defer b.StartTimer()
	db := pgtest.New(b)
	c := db.Cluster
	run := &scaleRun{ready: map[string]time.Time{}, givenBack: map[string]string{}, building: map[string]string{}, results: map[string]int{}}
	perQueue := (n + len(scaleQueues)*scaleSlots - 1) / (len(scaleQueues) * scaleSlots)
	hosts := make([]*scaleHost, len(scaleQueues)*perQueue)
	mean := time.Duration(float64(n) / scaleRate * float64(time.Second))
	var roles []string
	for i := range hosts {
		hosts[i] = &scaleHost{run: run, name: fmt.Sprintf("scale_h%02d", i), mean: mean, lease: scaleLease * time.Second,
			wake: make(chan struct{}, 1), listening: make(chan struct{}), running: map[string]buildStep{}, givenBack: map[string]time.Time{}}
		roles = append(roles, hosts[i].name)
		c.Role(b, hosts[i].name)
		db.Grant(b, hosts[i].name, scaleQueues[i%len(scaleQueues)])
	}
	run.total = len(scaleQueues) * scalePackages
	bouncer := c.StartBouncer(b, pgtest.BouncerConfig{Roles: roles, PoolSize: scalePoolSize})
	for i, h := range hosts {
		lease := scaleLease
		cfg := &config.Config{Home: b.TempDir(), WannaBuildDB: bouncer.URL(db.Name, h.name), WannaBuildListenDB: db.URL(h.name)}
		q := scaleQueues[i%len(scaleQueues)]
		cfg.Dists = []config.Dist{{DistName: q.Dist, BuiltArchitecture: q.Arch, WannaBuildDBUser: h.name, LeaseTimeout: &lease}}
		h.port = port.Open(cfg, &cfg.Dists[0])
		defer h.port.Close()
	}
	warm := time.Now()
	run.warm = warm
	for i := range n {
		h := hosts[i%len(hosts)]
		h.free = append(h.free, warm)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Duration(run.total/scaleRate)*time.Second+2*time.Minute)
	defer cancel()
	run.cancel = cancel
	for _, h := range hosts {
		run.hostsAlive.Add(3)
		go func() { defer run.hostsAlive.Done(); h.loop(ctx) }()
		go func() { defer run.hostsAlive.Done(); h.leases(ctx) }()
		go h.listen(ctx)
	}
	for _, h := range hosts {
		select {
		case <-h.listening:
		case <-ctx.Done():
			b.Fatalf("host %s not listening: %v", h.name, errors.Join(run.errs...))
		}
	}

	watch, err := pgx.Connect(context.Background(), db.URL("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer watch.Close(context.Background())
	sessions := func() int {
		var s int
		if err := watch.QueryRow(context.Background(), "SELECT sessions FROM pg_stat_database WHERE datname = $1", db.Name).Scan(&s); err != nil {
			b.Fatal(err)
		}
		return s
	}
	postmaster := postmasterPid(b, c)
	sessions0 := sessions()
	server0, bouncer0, client0 := serverCPU(b, postmaster), procCPU(b, bouncer.Pid()), selfCPU(b)
	f := &run.figures
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			var all, listening int
			err := watch.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE query LIKE 'LISTEN %')
				FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&all, &listening)
			if err == nil {
				f.maxConns, f.maxListeners = max(f.maxConns, all), max(f.maxListeners, listening)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// The merges, one queue after the other: a package's dispatch time
	// counts from its merge's return (a take before it, after the
	// commit's notification, counts 0).
	b.StartTimer()
	start := time.Now()
	never := start.Add(time.Hour)
	for _, q := range scaleQueues {
		pkgvs := make([]string, scalePackages)
		for i := range pkgvs {
			pkgvs[i] = seedName(q, i)
		}
		run.mu.Lock()
		for _, pkgv := range pkgvs {
			run.ready[pkgv] = never
		}
		run.mu.Unlock()
		seedQueue(b, db, q, scalePackages)
		merged := time.Now()
		run.mu.Lock()
		for _, pkgv := range pkgvs {
			run.ready[pkgv] = merged
		}
		run.mu.Unlock()
	}
	<-ctx.Done()
	f.wall = time.Since(start)
	b.StopTimer()
	server1, bouncer1, client1 := serverCPU(b, postmaster), procCPU(b, bouncer.Pid()), selfCPU(b)
	run.hostsAlive.Wait()
	<-sampled
	for _, h := range hosts {
		h.port.Close()
	}
	f.builders, f.hosts = n, len(hosts)
	f.serverCPU, f.bouncerCPU, f.clientCPU = server1-server0, bouncer1-bouncer0, client1-client0
	time.Sleep(time.Second) // the ended backends' statistics reach pg_stat_database
	f.sessions = sessions() - sessions0
	f.p50, f.p99, f.max = percentiles(slices.Concat(run.fills, run.laters))
	f.fill50, _, f.fillMax = percentiles(run.fills)
	f.later50, f.later99, f.laterMax = percentiles(run.laters)

	// The queue's own account: every package Built or Build-Attempted.
	rows, err := watch.Query(context.Background(), "SELECT state, count(*) FROM wb_records GROUP BY state")
	if err != nil {
		b.Fatal(err)
	}
	var state string
	var count int
	inQueue := map[string]int{}
	if _, err := pgx.ForEachRow(rows, []any{&state, &count}, func() error { inQueue[state] = count; return nil }); err != nil {
		b.Fatal(err)
	}
	f.lost = run.total - inQueue[string(queue.Built)] - inQueue[string(queue.BuildAttempted)]
	if inQueue[string(queue.Built)] != f.built || inQueue[string(queue.BuildAttempted)] != f.attempted {
		b.Errorf("%d builders: the queue has %v; the hosts reported %d built, %d attempted", n, inQueue, f.built, f.attempted)
	}
	if err := errors.Join(run.errs...); err != nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		b.Errorf("%d builders: %v (run: %v)\n%s", n, err, ctx.Err(), scaleTable([]scaleFigures{*f}))
	}
	if f.doubles != 0 || f.lost != 0 || f.lostLeases != 0 || f.expired != 0 {
		b.Errorf("%d builders: %d double builds, %d packages lost, %d+%d leases lost", n, f.doubles, f.lost, f.lostLeases, f.expired)
	}
	return *f
}

// percentiles are the p50, p99 and max of ds (sorted in place).
func percentiles(ds []time.Duration) (p50, p99, most time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }
	return at(0.50), at(0.99), ds[len(ds)-1]
}

// postmasterPid is the cluster's server process, from its postmaster.pid.
func postmasterPid(b *testing.B, c *pgtest.Cluster) int {
	data, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
	if err != nil {
		b.Fatalf("postmaster.pid: %v", err)
	}
	return pid
}

// procStat is a process's parent and CPU times, from /proc/PID/stat.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime time.Duration
}

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's times.
const clockTick = time.Second / 100

func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// After "pid (comm) ": state ppid ... utime stime cutime cstime are
	// fields 3 to 4 and 14 to 17 of stat(5).
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(fields[k-3], 10, 64); return v }
	return procStat{ppid: int(n(4)), utime: time.Duration(n(14)) * clockTick, stime: time.Duration(n(15)) * clockTick,
		cutime: time.Duration(n(16)) * clockTick, cstime: time.Duration(n(17)) * clockTick}, nil
}

func procCPU(b *testing.B, pid int) time.Duration {
	s, err := readProcStat(pid)
	if err != nil {
		b.Fatal(err)
	}
	return s.utime + s.stime
}

// serverCPU is the CPU time of the PostgreSQL server: the postmaster's,
// its ended children's (which it waited for) and its live children's.
func serverCPU(b *testing.B, postmaster int) time.Duration {
	s, err := readProcStat(postmaster)
	if err != nil {
		b.Fatal(err)
	}
	total := s.utime + s.stime + s.cutime + s.cstime
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if c, err := readProcStat(pid); err == nil && c.ppid == postmaster {
			total += c.utime + c.stime
		}
	}
	return total
}

// selfCPU is this process's CPU time: the simulated hosts'.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

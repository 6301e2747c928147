package maint_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"buildd/internal/config"
	"buildd/internal/jobgraph"
	"buildd/internal/machine/machinetest"
	"buildd/internal/maint"
)

// TestGraph: the jobs due for a real machines_dir holding one machine
// made now, seen at different times and with different configs.
func TestGraph(t *testing.T) {
	e := machinetest.New(t)
	cur, err := e.Store.Current(e.Machine)
	if err != nil {
		t.Fatal(err)
	}
	m := e.Machine
	dists := func(machines ...string) []config.Dist {
		var ds []config.Dist
		for _, n := range machines {
			ds = append(ds, config.Dist{DistName: e.Dist, BuiltArchitecture: e.Arch, Machine: n})
		}
		return ds
	}
	tests := []struct {
		name    string
		dists   []config.Dist
		after   time.Duration // since the revision was made
		hosts   []string
		from    string
		targets []string
		want    string // "JOB<DEPS;..."
		wantErr string
	}{
		{name: "fresh", dists: dists(m, m), after: time.Hour,
			want: "prune:M<"},
		{name: "old", dists: dists(m), after: 21 * time.Hour,
			want: "upgrade:M<;prune:M<upgrade:M"},
		{name: "old-pushed", dists: dists(m), after: 21 * time.Hour, hosts: []string{"h1", "root@h2"},
			want: "upgrade:M<;prune:M<upgrade:M;push:M:h1<upgrade:M;push:M:root@h2<upgrade:M"},
		{name: "missing", dists: dists("trixie-x", m), after: time.Hour, hosts: []string{"h1"},
			want: "create:trixie-x<;prune:trixie-x<create:trixie-x;push:trixie-x:h1<create:trixie-x;prune:M<;push:M:h1<"},
		{name: "received", dists: dists("trixie-x", m), after: 100 * time.Hour, from: "master",
			want: "prune:trixie-x<;prune:M<"},
		{name: "target-machine", dists: dists("trixie-x", m), after: 21 * time.Hour, targets: []string{m},
			want: "upgrade:M<;prune:M<upgrade:M"},
		{name: "target-job", dists: dists(m), after: 21 * time.Hour, hosts: []string{"h1", "h2"}, targets: []string{"push:" + m + ":h2"},
			want: "upgrade:M<;push:M:h2<upgrade:M"},
		{name: "target-unknown", dists: dists(m), after: time.Hour, targets: []string{"upgrade:" + m},
			wantErr: `no job is due for "upgrade:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Home = t.TempDir()
			cfg.Dists, cfg.PushHosts, cfg.MachinesFrom = tt.dists, tt.hosts, tt.from
			jobs, err := maint.Graph(&cfg, e.Store, cur.Made.Add(tt.after))
			if err == nil {
				jobs, err = maint.Select(jobs, tt.targets)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.ReplaceAll(describe(jobs), m, "M"); got != tt.want {
				t.Errorf("jobs\n %s\nwant\n %s", got, tt.want)
			}
			if _, err := jobgraph.Plan(jobs); err != nil {
				t.Error(err)
			}
		})
	}
}

func describe(jobs []jobgraph.Job) string {
	var out []string
	for _, j := range jobs {
		out = append(out, fmt.Sprintf("%s<%s", j.Name, strings.Join(j.Deps, ",")))
	}
	return strings.Join(out, ";")
}

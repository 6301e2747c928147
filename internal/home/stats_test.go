package home

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStatsAdd(t *testing.T) {
	tests := []struct {
		counter string
		adds    []int64
		want    string
		bad     bool
	}{
		{counter: "taken", adds: []int64{1, 1}, want: "1\n1\n"},
		{counter: "build-time", adds: []int64{3600}, want: "3600\n"},
		{counter: "Stamp", adds: []int64{1}, bad: true},
		{counter: "../taken", adds: []int64{1}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.counter, func(t *testing.T) {
			h := New(t.TempDir())
			for _, n := range tt.adds {
				err := h.Stats().Add(tt.counter, n)
				if (err != nil) != tt.bad {
					t.Fatalf("Add(%q, %d): %v", tt.counter, n, err)
				}
			}
			if tt.bad {
				return
			}
			if b, err := os.ReadFile(h.Path("stats", tt.counter)); string(b) != tt.want {
				t.Errorf("stats/%s = %q, %v; want %q", tt.counter, b, err, tt.want)
			}
		})
	}
}

func TestStatsSummarize(t *testing.T) {
	noStamp := time.Unix(1000, 0)
	now := time.Unix(5000, 0)
	tests := []struct {
		name      string
		files     map[string]string
		wantSums  map[string]float64
		wantStart time.Time
		wantBad   []string
		wantErr   bool
	}{
		{name: "no stamp", files: map[string]string{"taken": "1\n1\n", "build-time": "3600\n1800\n"},
			wantSums: map[string]float64{"taken": 2, "build-time": 5400}, wantStart: noStamp},
		{name: "stamp", files: map[string]string{"Stamp": "2000\n", "uploads": "2\n"},
			wantSums: map[string]float64{"uploads": 2}, wantStart: time.Unix(2000, 0)},
		{name: "bad line", files: map[string]string{"idle-time": "60\nbogus\n"},
			wantSums: map[string]float64{"idle-time": 60}, wantStart: noStamp, wantBad: []string{`stats/idle-time:2: not a number "bogus"`}},
		{name: "not a counter", files: map[string]string{"other": "5\n"}, wantSums: map[string]float64{}, wantStart: noStamp},
		{name: "bad stamp", files: map[string]string{"Stamp": "yesterday\n", "taken": "1\n"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(t.TempDir())
			os.MkdirAll(h.StatsDir(), 0o755)
			for f, text := range tt.files {
				os.WriteFile(h.Path("stats", f), []byte(text), 0o644)
			}
			var sums map[string]float64
			var start time.Time
			summary, bad, err := h.Stats().Summarize(now, noStamp, func(s map[string]float64, st time.Time) string {
				sums, start = s, st
				return "summary\n"
			})
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				if _, err := os.Stat(h.Path("stats", "taken")); err != nil {
					t.Error("counters removed after an error")
				}
				return
			}
			if err != nil || summary != "summary\n" {
				t.Fatalf("Summarize: %q, %v", summary, err)
			}
			if fmt.Sprint(sums) != fmt.Sprint(tt.wantSums) || !start.Equal(tt.wantStart) {
				t.Errorf("render got %v from %v; want %v from %v", sums, start, tt.wantSums, tt.wantStart)
			}
			if len(bad) != len(tt.wantBad) || len(bad) > 0 && !strings.Contains(errors.Join(bad...).Error(), tt.wantBad[0]) {
				t.Errorf("bad lines %v, want %q", bad, tt.wantBad)
			}
			if b, _ := os.ReadFile(h.Path("stats", "Summary")); string(b) != "summary\n" {
				t.Errorf("Summary %q", b)
			}
			if b, _ := os.ReadFile(h.Path("stats", "Stamp")); string(b) != "5000\n" {
				t.Errorf("Stamp %q", b)
			}
			if last, ok := h.Stats().Stamped(); !ok || time.Since(last) > time.Minute {
				t.Errorf("Stamped %v %v", last, ok)
			}
			for c := range tt.wantSums {
				if _, err := os.Stat(h.Path("stats", c)); err == nil {
					t.Errorf("stats/%s not reset", c)
				}
			}
			if _, err := os.Stat(h.Path("stats", "other")); tt.files["other"] != "" && err != nil {
				t.Error("a file that is no counter was removed")
			}
		})
	}
}

func TestStatsGraph(t *testing.T) {
	tests := []struct {
		val, max float64
		want     string
	}{
		{0, 100, "250101 \n"},
		{50, 100, "250101 " + strings.Repeat("*", 36) + "\n"},
		{100, 100, "250101 " + strings.Repeat("*", 72) + "\n"},
		{200, 100, "250101 " + strings.Repeat("*", 71) + "+\n"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.val), func(t *testing.T) {
			s := New(t.TempDir()).Stats()
			if _, err := s.Graph("builds-per-day"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Graph before any bar: %v", err)
			}
			for range 2 {
				if err := s.AppendGraph("builds-per-day", "250101", tt.val, tt.max); err != nil {
					t.Fatal(err)
				}
			}
			if b, err := s.Graph("builds-per-day"); err != nil || string(b) != tt.want+tt.want {
				t.Errorf("graph %q, %v; want two of %q", b, err, tt.want)
			}
		})
	}
}

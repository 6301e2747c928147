package queue

import (
	"strings"
	"testing"
	"time"
)

// TestNextBuild: a give-back waits the policy's delay, twice as long for
// each give-back before it in a row (a build that was not given back, or
// the admin's retry, starts the row again), at most MaxRetryDelay; the
// Max-th in a row is held for the admin, and so is an infrastructure
// failure after one of another builder; a build that was not given back
// never waits.
func TestNextBuild(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	gb := func(builder string, class Class) *BuildRecord {
		return &BuildRecord{Builder: builder, Outcome: GivenBack, Class: class}
	}
	ok := &BuildRecord{Builder: "a", Outcome: Successful, Class: ClassOK}
	retry := &BuildRecord{Builder: "admin", Class: ClassRetry}
	policy := RetryPolicy{Delay: 600, Max: 4}
	for _, tc := range []struct {
		name    string
		before  []*BuildRecord
		end     BuildEnd
		builder string
		wait    time.Duration
		held    string
	}{
		{"built", nil, BuildEnd{Outcome: Successful, Class: ClassOK, Retry: policy}, "a", 0, ""},
		{"failed", []*BuildRecord{gb("a", ClassInfra)}, BuildEnd{Outcome: Attempted, Class: ClassPackage, Retry: policy}, "a", 0, ""},
		{"first give-back", nil, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 10 * time.Minute, ""},
		{"second in a row", []*BuildRecord{gb("a", ClassTimeout)}, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 20 * time.Minute, ""},
		{"third, after a success", []*BuildRecord{gb("a", ClassInfra), gb("a", ClassInfra), ok, gb("a", ClassInfra)}, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 20 * time.Minute, ""},
		{"after the admin's retry", []*BuildRecord{gb("a", ClassInfra), gb("a", ClassInfra), retry}, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 10 * time.Minute, ""},
		{"retries used up", []*BuildRecord{gb("a", ClassInfra), gb("a", ClassInfra), gb("a", ClassInfra)}, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 80 * time.Minute, "given back 4 times in a row"},
		{"two builders", []*BuildRecord{gb("b", ClassInfra)}, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 20 * time.Minute, "infrastructure failures on two builders (b, then a)"},
		{"two builders, one a timeout", []*BuildRecord{gb("b", ClassTimeout)}, BuildEnd{Outcome: GivenBack, Class: ClassInfra, Retry: policy}, "a", 20 * time.Minute, ""},
		{"capped", nil, BuildEnd{Outcome: GivenBack, Class: ClassOOM, Retry: RetryPolicy{Delay: int64(MaxRetryDelay / time.Second)}}, "a", MaxRetryDelay, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NextBuild("p", "1", tc.builder, now, &tc.end, tc.before)
			var wait time.Duration
			if b.RetryAfter != 0 {
				wait = time.Unix(b.RetryAfter, 0).Sub(now)
			}
			if wait != tc.wait || !strings.HasPrefix(b.Held, tc.held) || (tc.held == "") != (b.Held == "") {
				t.Errorf("waits %v, held %q; want %v, %q", wait, b.Held, tc.wait, tc.held)
			}
			after := append(append([]*BuildRecord(nil), tc.before...), b)
			switch why := Waiting(after, now); {
			case tc.held != "" && !strings.HasPrefix(why, "held for the admin"):
				t.Errorf("Waiting = %q, want held", why)
			case tc.held == "" && tc.wait > 0 && !strings.HasPrefix(why, "in backoff until"):
				t.Errorf("Waiting = %q, want in backoff", why)
			case tc.wait == 0 && why != "":
				t.Errorf("Waiting = %q, want none", why)
			}
			if tc.held == "" && Waiting(after, now.Add(tc.wait)) != "" {
				t.Errorf("still waiting once the delay ended")
			}
		})
	}
}

// TestNeedsMemory: the last measured peak with a quarter more; more than
// the slot a build ran out of memory in; an infrastructure failure's
// peak (a build cut short) does not count.
func TestNeedsMemory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		builds []*BuildRecord
		want   int64
		fits   int64 // a slot it fits
		not    int64 // a slot it does not
	}{
		{"never built", nil, 0, 1, 0},
		{"measured", []*BuildRecord{{Class: ClassOK, Resources: Resources{PeakMemory: 800}}}, 1000, 1000, 999},
		{"out of memory", []*BuildRecord{{Class: ClassOK, Resources: Resources{PeakMemory: 800}}, {Class: ClassOOM, Resources: Resources{PeakMemory: 1000, SlotMemory: 1000}}}, 1251, 1251, 1250},
		{"cut short", []*BuildRecord{{Class: ClassOK, Resources: Resources{PeakMemory: 800}}, {Class: ClassInfra, Resources: Resources{PeakMemory: 10}}}, 1000, 1000, 999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsMemory(tc.builds); got != tc.want {
				t.Errorf("NeedsMemory = %d, want %d", got, tc.want)
			}
			if !Fits(tc.builds, tc.fits) || tc.not > 0 && Fits(tc.builds, tc.not) {
				t.Errorf("Fits %d and not %d: wrong", tc.fits, tc.not)
			}
		})
	}
}

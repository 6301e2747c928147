package slicing

import (
	"testing"
)

func TestDivide(t *testing.T) {
	for _, c := range []struct {
		cpus  int
		ram   int64
		slots int
		want  Slice
	}{
		{2, 20 << 20, 2, Slice{1, 10 << 20}},
		{8, 12 << 20, 3, Slice{2, 4 << 20}},
		{2, 8 << 20, 4, Slice{1, 2 << 20}},
		{4, 1 << 20, 0, Slice{4, 1 << 20}},
	} {
		if got := Divide(c.cpus, c.ram, c.slots); got != c.want {
			t.Errorf("Divide(%d, %d, %d) = %+v, want %+v", c.cpus, c.ram, c.slots, got, c.want)
		}
	}
	if r := ReserveKiB(24683520); r != 4<<20 {
		t.Errorf("reserve on 24 GiB: %d", r)
	}
	if r := ReserveKiB(2 << 20); r != 512<<10 {
		t.Errorf("reserve on 2 GiB: %d", r)
	}
}

func TestMemTotal(t *testing.T) {
	for _, c := range []struct {
		file string
		want int64
		err  string
	}{
		{"testdata/meminfo", 24683520, ""},
		{"testdata/meminfo-nototal", 0, "testdata/meminfo-nototal: no MemTotal line"},
		{"testdata/meminfo-bad", 0, `testdata/meminfo-bad:1: bad MemTotal "MemTotal: lots kB"`},
	} {
		got, err := MemTotalKiB(c.file)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %q", c.file, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v", c.file, got, err)
		}
	}
	if s, err := HostSlice(2); err != nil || s.CPUs < 1 || s.RAMKiB <= 0 {
		t.Errorf("HostSlice(2) = %+v, %v", s, err)
	}
}

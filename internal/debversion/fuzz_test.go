package debversion_test

import (
	"testing"

	. "buildd/internal/debversion"
)

// FuzzCompare checks that Compare is a consistent order on any input and
// that Parse and String agree with it.
func FuzzCompare(f *testing.F) {
	for _, c := range [][2]string{{"1.0", "1.0-0"}, {"1:1.0~rc1-1", "1.0"}, {"1.0~~", "1.0~"}, {"a", "1"}, {"", "-"}, {"1:", ":1"}, {"\xff", "~"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Errorf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if Compare(a, a) != 0 {
			t.Errorf("Compare(%q, %q) != 0", a, a)
		}
		if v, err := Parse(a); err == nil {
			if Compare(v.String(), a) != 0 {
				t.Errorf("Parse(%q).String() = %q orders differently", a, v.String())
			}
			if w, err := Parse(v.String()); err != nil || w != v {
				t.Errorf("Parse(%q) = %+v, reparsed %+v, %v", a, v, w, err)
			}
		}
	})
}

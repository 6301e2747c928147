package debversion

import "testing"

func TestParsePkgVersion(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"hello_1.0-1", true},
		{"libc++_1:2.0~rc1-1+b2", true},
		{"g++-12_12.2.0-14", true},
		{"hello", false},
		{"hello_", false},
		{"_1.0", false},
		{"../upload/hello_1.0-1", false},
		{"..", false},
		{"hello_1.0/../../x", false},
		{"Hello_1.0-1", false},
		{"-hello_1.0-1", false},
		{"h_1.0", false},
		{"hello_1.0-1 ", false},
		{"hello_a1.0", false},
		{"hello_1.0-1_amd64", false},
		{"hello_1.0\n-1", false},
	} {
		_, err := ParsePkgVersion(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParsePkgVersion(%q): %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

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
		p, err := ParsePkgVersion(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParsePkgVersion(%q): %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err == nil && p.String() != tc.in {
			t.Errorf("ParsePkgVersion(%q) = %q", tc.in, p)
		}
	}
}

func TestPkgVersionForms(t *testing.T) {
	for _, tc := range []struct {
		in       string
		binNMU   int
		name     string
		version  string // SplitPkgVersion's
		bin      string // WithBinNMU(binNMU).String()
		noEpoch  string // WithBinNMU(binNMU).NoEpoch().String()
		upstream string
	}{
		{"hello_1.0-1", 0, "hello", "1.0-1", "hello_1.0-1", "hello_1.0-1", "1.0"},
		{"hello_1.0-1", 2, "hello", "1.0-1", "hello_1.0-1+b2", "hello_1.0-1+b2", "1.0"},
		{"hello_1:2.0-1", 0, "hello", "1:2.0-1", "hello_1:2.0-1", "hello_2.0-1", "2.0"},
		{"hello_1:2.0-1", 12, "hello", "1:2.0-1", "hello_1:2.0-1+b12", "hello_2.0-1+b12", "2.0"},
		{"hello_1:2.0-1+b1", 0, "hello", "1:2.0-1+b1", "hello_1:2.0-1+b1", "hello_2.0-1+b1", "2.0"},
		{"hello_1.0", -1, "hello", "1.0", "hello_1.0", "hello_1.0", "1.0"},
		{"xz-utils_5.4.1-0.2", 1, "xz-utils", "5.4.1-0.2", "xz-utils_5.4.1-0.2+b1", "xz-utils_5.4.1-0.2+b1", "5.4.1"},
		{"libc++_2:1.0-rc1-3~bpo12+1", 0, "libc++", "2:1.0-rc1-3~bpo12+1", "libc++_2:1.0-rc1-3~bpo12+1", "libc++_1.0-rc1-3~bpo12+1", "1.0-rc1"},
		{"g++-12_12.2.0-14", 0, "g++-12", "12.2.0-14", "g++-12_12.2.0-14", "g++-12_12.2.0-14", "12.2.0"},
		{"python3.11_3.11.2-6+deb12u1", 0, "python3.11", "3.11.2-6+deb12u1", "python3.11_3.11.2-6+deb12u1", "python3.11_3.11.2-6+deb12u1", "3.11.2"},
		{"tzdata_2024a", 0, "tzdata", "2024a", "tzdata_2024a", "tzdata_2024a", "2024a"},
		{"hello", 0, "hello", "", "hello_", "hello_", ""},
		{"hello_", 0, "hello", "", "hello_", "hello_", ""},
	} {
		p := SplitPkgVersion(tc.in)
		if p.Name != tc.name || p.Version != tc.version {
			t.Errorf("SplitPkgVersion(%q) = %q %q, want %q %q", tc.in, p.Name, p.Version, tc.name, tc.version)
		}
		if got := p.WithBinNMU(tc.binNMU).String(); got != tc.bin {
			t.Errorf("%q WithBinNMU(%d) = %q, want %q", tc.in, tc.binNMU, got, tc.bin)
		}
		if got := p.WithBinNMU(tc.binNMU).NoEpoch().String(); got != tc.noEpoch {
			t.Errorf("%q WithBinNMU(%d).NoEpoch() = %q, want %q", tc.in, tc.binNMU, got, tc.noEpoch)
		}
		if got := p.Upstream(); got != tc.upstream {
			t.Errorf("%q Upstream() = %q, want %q", tc.in, got, tc.upstream)
		}
		if got := p.WithBinNMU(tc.binNMU).Upstream(); got != tc.upstream {
			t.Errorf("%q WithBinNMU(%d).Upstream() = %q, want %q", tc.in, tc.binNMU, got, tc.upstream)
		}
	}
}

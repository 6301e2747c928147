package daemon

import (
	"strings"
	"testing"

	"buildd/internal/config"
	"buildd/internal/home"
	"buildd/internal/queue"
)

func pkgvs(ls []queue.Candidate) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.PkgVersion())
	}
	return strings.Join(s, " ")
}

func TestSelectQueue(t *testing.T) {
	listed := []queue.Candidate{
		{Name: "gcc", Version: "14-1", Section: "devel"},
		{Name: "hello", Version: "1.0-1", Section: "misc"},
		{Name: "openoffice", Version: "7-1", Section: "editors"},
		{Name: "firefox", Version: "120-1", Section: "web", Memory: 6 << 20},
		{Name: "nonfree-tool", Version: "2-1", Section: "non-free/utils"},
		{Name: "zlib", Version: "1.3-1", Section: "libs"},
	}
	for _, c := range []struct {
		name    string
		dist    config.Dist
		slotKiB int64
		busy    string
		want    string
		skipped string
	}{
		{"everything in queue order", config.Dist{}, 0, "", "gcc_14-1 hello_1.0-1 openoffice_7-1 firefox_120-1 nonfree-tool_2-1 zlib_1.3-1", ""},
		{"no_auto_build", config.Dist{NoAutoBuild: []string{"gcc", "firefox"}}, 0, "",
			"hello_1.0-1 openoffice_7-1 nonfree-tool_2-1 zlib_1.3-1", "gcc_14-1:no_auto_build firefox_120-1:no_auto_build"},
		{"weak_no_auto_build last", config.Dist{WeakNoAutoBuild: []string{"openoffice", "gcc"}}, 0, "",
			"hello_1.0-1 firefox_120-1 nonfree-tool_2-1 zlib_1.3-1 gcc_14-1 openoffice_7-1", ""},
		{"no_build_regex on SECTION/PKG_VERSION", config.Dist{NoBuildRegex: "^non-free/"}, 0, "",
			"gcc_14-1 hello_1.0-1 openoffice_7-1 firefox_120-1 zlib_1.3-1", "nonfree-tool_2-1:no_build_regex"},
		{"build_regex", config.Dist{BuildRegex: `^(libs|misc)/`}, 0, "",
			"hello_1.0-1 zlib_1.3-1", "gcc_14-1:build_regex openoffice_7-1:build_regex firefox_120-1:build_regex nonfree-tool_2-1:build_regex"},
		{"too big for the slots", config.Dist{}, 4 << 20, "",
			"gcc_14-1 hello_1.0-1 openoffice_7-1 nonfree-tool_2-1 zlib_1.3-1", "firefox_120-1:too big"},
		{"fits a big slot", config.Dist{}, 6 << 20, "",
			"gcc_14-1 hello_1.0-1 openoffice_7-1 firefox_120-1 nonfree-tool_2-1 zlib_1.3-1", ""},
		{"building here already", config.Dist{}, 0, "zlib_1.3-1",
			"gcc_14-1 hello_1.0-1 openoffice_7-1 firefox_120-1 nonfree-tool_2-1", "zlib_1.3-1:building already"},
		{"only weak ones left", config.Dist{NoAutoBuild: []string{"gcc", "hello", "firefox", "nonfree-tool", "zlib"}, WeakNoAutoBuild: []string{"openoffice"}}, 0, "",
			"openoffice_7-1", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.dist.DistName = "bookworm"
			got, skipped, err := SelectQueue(&c.dist, listed, c.slotKiB, func(p string) bool { return p == c.busy })
			if err != nil {
				t.Fatal(err)
			}
			if pkgvs(got) != c.want {
				t.Errorf("take %q\nwant %q", pkgvs(got), c.want)
			}
			var sk []string
			for _, s := range skipped {
				why := s.Why
				if strings.HasPrefix(why, "too big") {
					why = "too big"
				}
				sk = append(sk, s.PkgVersion+":"+why)
			}
			if strings.Join(sk, " ") != c.skipped && c.skipped != "" {
				t.Errorf("skipped %q\nwant    %q", strings.Join(sk, " "), c.skipped)
			}
		})
	}
	if _, _, err := SelectQueue(&config.Dist{DistName: "x", BuildRegex: "("}, listed, 0, nil); err == nil || !strings.Contains(err.Error(), "dist x: build_regex") {
		t.Fatalf("bad regex: %v", err)
	}
}

// TestSelectREDO: the config's order of dists and arches decides, then
// the file's; a line naming its dist alone is of the dist's only arch
// (sid), and stays, reported, when the dist is built for two (bookworm);
// the same version for two arches is two jobs.
func TestSelectREDO(t *testing.T) {
	c, err := config.Parse("buildd.conf", []byte("home = \"/var/lib/buildd\"\n"+
		"[[dist]]\ndist_name = \"bookworm-security\"\nbuilt_architecture = \"amd64\"\n"+
		"[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"amd64\"\n"+
		"[[dist]]\ndist_name = \"bookworm\"\nbuilt_architecture = \"arm64\"\n"+
		"[[dist]]\ndist_name = \"sid\"\nbuilt_architecture = \"amd64\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := func(pv, d, a string) home.RedoEntry { return home.RedoEntry{PkgVersion: pv, Dist: d, Arch: a} }
	entries := []home.RedoEntry{
		e("a_1", "sid", ""),
		e("b_1", "bookworm", "amd64"),
		e("c_1", "bookworm-security", "amd64"),
		e("d_1", "experimental", ""),
		e("b_1", "bookworm", "amd64"),
		e("b_1", "bookworm", "arm64"),
		e("f_1", "bookworm", ""),
		{PkgVersion: "g_1", Dist: "sid", BinNMU: 2, Changelog: "Rebuild against libfoo2"},
		e("h_1", "sid", "arm64"),
	}
	str := func(es []home.RedoEntry) string {
		var s []string
		for _, x := range es {
			s = append(s, x.String())
		}
		return strings.Join(s, ", ")
	}
	for _, tc := range []struct {
		name       string
		n          int
		busy       string
		take, keep string
	}{
		{"one: the first dist's line wins", 1, "",
			"c_1 bookworm-security/amd64",
			"a_1 sid, b_1 bookworm/amd64, d_1 experimental, b_1 bookworm/amd64, b_1 bookworm/arm64, f_1 bookworm, g_1 sid 2 Rebuild against libfoo2, h_1 sid/arm64"},
		{"three: dist and arch order, then file order; duplicate dropped", 3, "",
			"c_1 bookworm-security/amd64, b_1 bookworm/amd64, b_1 bookworm/arm64",
			"a_1 sid, d_1 experimental, f_1 bookworm, g_1 sid 2 Rebuild against libfoo2, h_1 sid/arm64"},
		{"all: unknown dist or arch, and the ambiguous line, stay", 10, "",
			"c_1 bookworm-security/amd64, b_1 bookworm/amd64, b_1 bookworm/arm64, a_1 sid/amd64, g_1 sid/amd64 2 Rebuild against libfoo2",
			"d_1 experimental, f_1 bookworm, h_1 sid/arm64"},
		{"busy stays, the other arch's job does not", 2, "bookworm/amd64 b_1",
			"c_1 bookworm-security/amd64, b_1 bookworm/arm64",
			"a_1 sid, b_1 bookworm/amd64, d_1 experimental, b_1 bookworm/amd64, f_1 bookworm, g_1 sid 2 Rebuild against libfoo2, h_1 sid/arm64"},
		{"none", 0, "", "", str(entries)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			take, keep, bad := SelectREDO(c, entries, c.Dists, tc.n, func(e home.RedoEntry) bool { return e.Where()+" "+e.PkgVersion == tc.busy })
			if str(take) != tc.take {
				t.Errorf("take %q\nwant %q", str(take), tc.take)
			}
			if str(keep) != tc.keep {
				t.Errorf("keep %q\nwant %q", str(keep), tc.keep)
			}
			want := `REDO: "f_1 bookworm": dist bookworm without an architecture: this host builds it for amd64 and arm64 (buildd.conf), name one`
			if len(bad) != 1 || bad[0].Error() != want {
				t.Errorf("bad %q\nwant %q", bad, want)
			}
		})
	}
}

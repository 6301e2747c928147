package reply

import (
	"strings"
	"testing"
)

func TestClassifySubject(t *testing.T) {
	for _, c := range []struct {
		s    string
		want Subject
	}{
		{"Re: Log for successful build of hello_1.0-1 (dist=bookworm)", Subject{Kind: LogReply, PkgVersion: "hello_1.0-1", Dist: "bookworm"}},
		{"RE: log for failed build of hello_1:2.0-1+b1 on arm64 (dist=sid)", Subject{Kind: LogReply, PkgVersion: "hello_1:2.0-1+b1", Arch: "arm64", Dist: "sid"}},
		{"Re: Log for successful build of hello_1.0-1 on kfreebsd-amd64 (dist=bookworm)", Subject{Kind: LogReply, PkgVersion: "hello_1.0-1", Arch: "kfreebsd-amd64", Dist: "bookworm"}},
		{"Re: Should I build hello_1.0-1 (dist=bookworm)?", Subject{Kind: ShouldBuild, PkgVersion: "hello_1.0-1", Dist: "bookworm"}},
		{"Re: Should I build hello_1.0-1 on arm64 (dist=bookworm)?", Subject{Kind: ShouldBuild, PkgVersion: "hello_1.0-1", Arch: "arm64", Dist: "bookworm"}},
		{"Processing of hello_1.0-1_amd64.changes", Subject{Kind: Processing, Job: "hello_1.0-1_amd64.changes"}},
		{"hello_1.0-1_amd64.changes INSTALLED into bookworm", Subject{Kind: Installed, Changes: "hello_1.0-1_amd64.changes"}},
		{"hello_1.0-1_amd64.changes ACCEPTED", Subject{Kind: Installed, Changes: "hello_1.0-1_amd64.changes"}},
		{"hello_1.0-1_amd64.changes is NEW", Subject{Kind: IsNew, Changes: "hello_1.0-1_amd64.changes"}},
		{"new version of hello (dist=bookworm)", Subject{Kind: NewVersion, Package: "hello", Dist: "bookworm"}},
		{"new version of hello_1.0-1 (dist=bookworm)", Subject{Kind: NewVersion, Package: "hello", PkgVersion: "hello_1.0-1", Dist: "bookworm"}},
		{"Log for successful build of hello_1.0-1 (dist=bookworm)", Subject{}},
		{"hello", Subject{}},
	} {
		if got := ClassifySubject(c.s); got != c.want {
			t.Errorf("%q: %+v, want %+v", c.s, got, c.want)
		}
	}
}

func TestParseKeywordReply(t *testing.T) {
	const p = "hello_1.0-1"
	for _, c := range []struct {
		name, text string
		kind       Kind
		want       Reply
		err        string
	}{
		{"retry", "retry\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: Retry, Word: "retry"}, ""},
		{"retry on its arch", "retry\nhello_1.0-1 on amd64 (dist=bookworm)\n", LogReply, Reply{Keyword: Retry, Word: "retry"}, ""},
		{"another arch", "retry\nhello_1.0-1 on arm64 (dist=bookworm)\n", LogReply, Reply{}, "names the build on arm64, but this reply answers the build on amd64"},
		{"retry CRLF", "retry\r\nhello_1.0-1 (dist=bookworm)\r\n", LogReply, Reply{Keyword: Retry, Word: "retry"}, ""},
		{"no dist", "retry\nhello_1.0-1\n", LogReply, Reply{}, "not its distribution"},
		{"dist mismatch", "retry\nhello_1.0-1 (dist=sid)\n", LogReply, Reply{}, "names dist=sid"},
		{"fail", "fail\n\nno compiler\nat all\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: Fail, Word: "fail", Reason: "no compiler\nat all\n"}, ""},
		{"fail no reason", "fail\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{}, "no reason"},
		{"failed word", "failed\nbad\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: Fail, Word: "failed", Reason: "bad\n"}, ""},
		{"dep-wait", "dep-wait libfoo (>= 1:2), libbar\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: DepWait, Word: "dep-wait", Args: "libfoo (>= 1:2), libbar"}, ""},
		{"dependency-retry", "dependency-retry libfoo\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: DepWait, Word: "dependency-retry", Args: "libfoo"}, ""},
		{"dep-wait empty", "dep-wait\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{}, "no dependencies"},
		{"give-back", "give-back\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: GiveBack, Word: "give-back"}, ""},
		{"back", "back\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: GiveBack, Word: "back"}, ""},
		{"manual", "manual\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: Manual, Word: "manual"}, ""},
		{"newvers", "newvers hello_1.1-1\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: NewVers, Word: "newvers", Args: "1.1-1"}, ""},
		{"not-for-us", "not-for-us\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: NotForUs, Word: "not-for-us"}, ""},
		{"upl-rem", "upl-rem\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: UploadRem, Word: "upl-rem"}, ""},
		{"upload-rem", "upload-rem\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: UploadRem, Word: "upload-rem"}, ""},
		{"purge", "purge\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{Keyword: Purge, Word: "purge"}, ""},
		{"quoted lines ignored", "retry\nhello_1.0-1 (dist=bookworm)\n\nBuildd wrote:\n> fail\n> x\n", LogReply, Reply{Keyword: Retry, Word: "retry"}, ""},
		{"no package line", "retry\n", LogReply, Reply{}, "does not name the package"},
		{"other package", "retry\nother_1.0 (dist=bookworm)\n", LogReply, Reply{}, "does not name the package"},
		{"bad keyword", "frob\nhello_1.0-1 (dist=bookworm)\n", LogReply, Reply{}, "Bad keyword"},
		{"should ok", "ok\nhello_1.0-1 (dist=bookworm)\n", ShouldBuild, Reply{Keyword: Build, Word: "ok"}, ""},
		{"should no-build", "no-build\nhello_1.0-1 (dist=bookworm)\n", ShouldBuild, Reply{Keyword: NotForUs, Word: "no-build"}, ""},
		{"should fail with a reason is a log answer", "fail\nno compiler\nhello_1.0-1 (dist=bookworm)\n", ShouldBuild, Reply{}, "keyword alone"},
		{"should retry is bad", "retry\nhello_1.0-1 (dist=bookworm)\n", ShouldBuild, Reply{}, "expected build, ok"},
		{"empty", "\n\n", LogReply, Reply{}, "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseKeywordReply(c.kind, c.text, p, "amd64", "bookworm", true)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r.Text = ""
			if *r != c.want {
				t.Errorf("%+v, want %+v", *r, c.want)
			}
		})
	}
}

// The fixtures are mails as mailers write them; see testdata/mail/.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"retry\nhello_1.0-1 (dist=bookworm)\n", "fail\n\nx\ny\nhello_1.0-1 (dist=bookworm)\n", "dep-wait a (>= 1)\nhello_1.0-1 (dist=bookworm)\n", "newvers 2\nhello_1.0-1 (dist=bookworm)\n", "> q\nok\nhello_1.0-1 (dist=bookworm)\n", "Format: 1.8\nSource: hello\n"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, text string, log bool) {
		k := LogReply
		if !log {
			k = ShouldBuild
		}
		r, err := ParseKeywordReply(k, text, "hello_1.0-1", "amd64", "bookworm", log)
		if err == nil && r.Keyword == "" {
			t.Fatalf("accepted %q without a keyword", text)
		}
		LooksLikeChanges(text)
	})
}

// TestKeywordReplyArch: where the buildd builds the dist for several
// architectures, the signed line must name the architecture of the build
// the reply answers; the line without one is refused, saying what to
// write, and so is the line of another architecture.
func TestKeywordReplyArch(t *testing.T) {
	for _, c := range []struct {
		name, text, arch string
		err              string
	}{
		{"named", "giveback\nhello_1.0-1 on arm64 (dist=bookworm)\n", "arm64", ""},
		{"the other arch", "giveback\nhello_1.0-1 on amd64 (dist=bookworm)\n", "arm64",
			"The signed text names the build on amd64, but this reply answers the build on arm64."},
		{"no arch", "giveback\nhello_1.0-1 (dist=bookworm)\n", "arm64",
			"The signed text names hello_1.0-1 (dist=bookworm) but not its architecture, and this buildd\nbuilds dist=bookworm for several. Put \"hello_1.0-1 on arm64 (dist=bookworm)\" alone"},
		{"other dist", "giveback\nhello_1.0-1 on arm64 (dist=sid)\n", "arm64", "names dist=sid"},
		{"bare", "giveback\nhello_1.0-1\n", "arm64", "Put \"hello_1.0-1 on arm64 (dist=bookworm)\" alone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseKeywordReply(LogReply, c.text, "hello_1.0-1", c.arch, "bookworm", false)
			switch {
			case c.err == "" && err != nil:
				t.Fatal(err)
			case c.err == "" && r.Keyword != GiveBack:
				t.Fatalf("%+v", r)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("err %v, want %q", err, c.err)
			}
		})
	}
	if got := NamesLine("hello_1.0-1+b1", "arm64", "bookworm"); got != "hello_1.0-1+b1 on arm64 (dist=bookworm)" {
		t.Errorf("NamesLine = %q", got)
	}
}

package man

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"buildd/internal/config"
)

func readme(t *testing.T) []byte {
	t.Helper()
	text, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestPagesRender: every page is made from the README, go-md2man turns it
// into a manual page with its NAME, SYNOPSIS and DESCRIPTION, and man
// shows it without a warning.
func TestPagesRender(t *testing.T) {
	md2man, err := exec.LookPath("go-md2man")
	if err != nil {
		t.Fatal("go-md2man is not installed (make deps installs it)")
	}
	text := readme(t)
	dir := t.TempDir()
	for _, p := range Pages {
		md, err := Markdown(text, p, "0.test")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(md), "](#") {
			t.Errorf("%s: a link to a README anchor is left", p.File())
		}
		in := filepath.Join(dir, p.File()+".md")
		if err := os.WriteFile(in, md, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, p.File())
		if b, err := exec.Command(md2man, "-in", in, "-out", out).CombinedOutput(); err != nil {
			t.Fatalf("go-md2man %s: %v\n%s", p.File(), err, b)
		}
		roff, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// As man shows it on a terminal of 80 columns: troff has nothing
		// to warn of (an unbreakable span wider than a line, say).
		show := exec.Command("man", "-l", "-P", "cat", out)
		show.Env = append(os.Environ(), "MANWIDTH=80")
		var warn strings.Builder
		show.Stderr = &warn
		if text, err := show.Output(); err != nil || warn.Len() > 0 || !strings.Contains(string(text), "DESCRIPTION") {
			t.Errorf("man -l %s: %v\n%s", p.File(), err, warn.String())
		}
		for _, want := range []string{".TH " + strings.ToUpper(p.Name) + " " + p.Section + " ", ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH SEE ALSO"} {
			if !strings.Contains(string(roff), want) {
				t.Errorf("%s: no %q in the page", p.File(), want)
			}
		}
	}
}

// The options a --help names: the lines of Go's flag package ("  -name")
// and every --name.
var (
	flagLineRE = regexp.MustCompile(`(?m)^ +-([A-Za-z][\w-]+)`)
	longOptRE  = regexp.MustCompile("(?:^|[\\s\\[(,|`])--([A-Za-z][\\w-]*)")
)

func optionsIn(text string, res ...*regexp.Regexp) map[string]bool {
	opts := map[string]bool{}
	for _, re := range res {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			opts[m[1]] = true
		}
	}
	return opts
}

// TestOptionsMatchCode: every option a program's --help names is in its
// page, and every option the page gives the program (its synopsis, the
// command lines of its code blocks, the first column of its tables) is one
// the program takes.
func TestOptionsMatchCode(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "../buildd", "../buildd-mail", "../buildd-uploader", "../buildd-watcher", "../wannabuild/wanna-build")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	text := readme(t)
	for _, p := range Pages {
		if len(p.Commands) == 0 {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			code := map[string]bool{}
			programs := map[string]bool{}
			for _, argv := range p.Commands {
				programs[argv[0]] = true
				cmd := exec.Command(filepath.Join(bin, argv[0]), append(argv[1:], "--help")...)
				out, err := cmd.CombinedOutput()
				if err != nil && !strings.Contains(string(out), "usage") {
					t.Fatalf("%s --help: %v\n%s", strings.Join(argv, " "), err, out)
				}
				for o := range optionsIn(string(out), flagLineRE, longOptRE) {
					code[o] = true
				}
			}
			if len(code) < 2 {
				t.Fatalf("%s: %d options from --help: the help is not understood", p.Name, len(code))
			}
			md, err := Markdown(text, p, "0.test")
			if err != nil {
				t.Fatal(err)
			}
			page := string(md)
			for o := range code {
				if o != "help" && !strings.Contains(page, "--"+o) {
					t.Errorf("README.md (%s): the option --%s of %s is not documented", p.File(), o, p.Name)
				}
			}
			for o := range pageOptions(page, programs) {
				if !code[o] {
					t.Errorf("README.md (%s): documents the option --%s, which %s does not take", p.File(), o, p.Name)
				}
			}
		})
	}
}

// pageOptions are the options a page gives its programs: those on the
// command lines of its code blocks that start with one of programs, and
// those in the first column of its option lists (a table's first column
// in the README).
func pageOptions(page string, programs map[string]bool) map[string]bool {
	opts := map[string]bool{}
	fence := false
	lines := strings.Split(page, "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		cmdLine, _, _ := strings.Cut(line, "#")
		switch {
		case fence && programs[first]:
			for o := range optionsIn(cmdLine, longOptRE) {
				opts[o] = true
			}
		case !fence && i+1 < len(lines) && strings.HasPrefix(lines[i+1], ": ") && strings.HasPrefix(line, "`-"):
			for o := range optionsIn(line, longOptRE) {
				opts[o] = true
			}
		}
	}
	return opts
}

// TestConfigPage: buildd.conf(5) names every key the config takes (the
// README's reference, which internal/config holds to the code both ways).
func TestConfigPage(t *testing.T) {
	i := slices.IndexFunc(Pages, func(p Page) bool { return p.Name == "buildd.conf" })
	md, err := Markdown(readme(t), Pages[i], "0.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{config.Config{}, config.Dist{}, config.UploadQueue{}} {
		for _, k := range config.TableKeys(v) {
			if !regexp.MustCompile("(?m)^`" + k + "`( .*)?\n: ").Match(md) {
				t.Errorf("buildd.conf.5: no entry for the key %q of %T", k, v)
			}
		}
	}
}

// TestExampleConfig: the example buildd.conf sets only home, so a program
// says a [[dist]] is missing; with every commented key line taken in, it
// is a config the programs take.
func TestExampleConfig(t *testing.T) {
	conf, err := ExampleConfig(readme(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("buildd.conf", conf); err == nil || !strings.Contains(err.Error(), "dist") {
		t.Errorf("the example as shipped: %v, want an error asking for a [[dist]]", err)
	}
	keyLine := regexp.MustCompile(`(?m)^#(\[\[[a-z_]+\]\]|[a-z_]+ = .*)$`)
	all := keyLine.ReplaceAll(conf, []byte("$1"))
	cfg, err := config.Parse("buildd.conf", all)
	if err != nil {
		t.Fatalf("the example with every key taken in: %v", err)
	}
	if len(cfg.Dists) != 1 || cfg.Home != ExampleHome {
		t.Errorf("the example with every key: %d dists, home %q", len(cfg.Dists), cfg.Home)
	}
	if n := len(keyLine.FindAll(conf, -1)); n < 80 {
		t.Errorf("the example has %d key lines; the scan is broken", n)
	}
}

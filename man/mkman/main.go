// Command mkman writes the suite's manual pages as Markdown for go-md2man
// (package man), one NAME.SECTION.md per page, and the commented example
// buildd.conf, from README.md:
//
//	mkman [-readme README.md] [-version V] -out DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"buildd/internal/atomicfile"
	"buildd/man"
)

func main() {
	readme := flag.String("readme", "README.md", "the README the pages are made from")
	version := flag.String("version", "", "the version in the pages' title lines")
	out := flag.String("out", "", "the directory the pages are written to")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: mkman [-readme README.md] [-version V] -out DIR")
		os.Exit(2)
	}
	if err := run(*readme, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkman:", err)
		os.Exit(1)
	}
}

func run(readme, version, out string) error {
	text, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	conf, err := man.ExampleConfig(text)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(out, "buildd.conf"), conf, 0o644); err != nil {
		return err
	}
	for _, p := range man.Pages {
		md, err := man.Markdown(text, p, version)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(out, p.File()+".md"), md, 0o644); err != nil {
			return err
		}
	}
	return nil
}

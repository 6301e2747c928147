// Command wanna-build is the build queue's command line, with the options
// and output of the classic wanna-build; see wannabuild/cli.
package main

import (
	"os"

	"buildd/wannabuild/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

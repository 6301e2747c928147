// Command buildd is part of buildd in Go; see the README.
package main

import (
	"fmt"
	"os"

	"buildd/buildd/build"
	"buildd/buildd/machine"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "machine":
			os.Exit(machine.CLI(os.Args[2:], os.Stdout, os.Stderr))
		case "build":
			os.Exit(build.CLI(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	fmt.Fprintln(os.Stderr, "buildd: not yet implemented")
	os.Exit(1)
}

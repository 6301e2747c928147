// Command buildd is the build daemon (package buildd/daemon). Its first
// argument may name a subcommand instead: `buildd machine ...` manages the
// build machines (machine.go, over package internal/machine), `buildd
// build ...` runs one build (buildd/build), `buildd quarantine [--end]`
// shows or ends the daemon's quarantine (buildd/daemon).
package main

import (
	"os"

	"buildd/buildd/build"
	"buildd/buildd/daemon"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "machine":
			os.Exit(machineCLI(os.Args[2:], os.Stdout, os.Stderr))
		case "build":
			os.Exit(build.CLI(os.Args[2:], os.Stdout, os.Stderr))
		case "quarantine":
			os.Exit(daemon.QuarantineCLI(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(daemon.Main(os.Args[1:], daemon.RealParts()))
}

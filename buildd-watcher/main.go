// Command buildd-watcher is part of buildd in Go; see the README.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "buildd-watcher: not yet implemented")
	os.Exit(1)
}

// Command wanna-build is part of buildd in Go; see the README.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wanna-build: not yet implemented")
	os.Exit(1)
}

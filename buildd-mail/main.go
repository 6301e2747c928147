// Command buildd-mail is part of buildd in Go; see the README.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "buildd-mail: not yet implemented")
	os.Exit(1)
}

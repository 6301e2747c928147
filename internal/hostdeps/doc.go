// Package hostdeps owns the fresh-host guarantee: its test finds every
// external program the suite's code, tests and scripts run and checks that
// a fresh host of the project's kind has it, from the base machine image
// (testdata/base-image-packages.txt) or from `make deps` (the Makefile's
// DEB_DEPS and their dependencies). A shell script that installs packages
// itself (a benchmark against another tool) names them in a
// `# hostdeps: installs PKG...` line; their programs are excused in it.
package hostdeps

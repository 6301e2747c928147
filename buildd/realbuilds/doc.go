// Package realbuilds owns `make test-real`: the whole build path run on real
// Debian sources, outside `make test` and CI (it needs the bookworm indexes
// in ../shared/data and a Debian mirror, and takes minutes).
//
// Its one test, behind the build tag realbuilds, merges the real bookworm
// main indexes with the real bin/wanna-build --merge-v3 into a fresh queue,
// runs the real bin/buildd daemon (--no-detach, max_build = 2) in a fresh
// btrfs machines_dir from internal/machine/machinetest until a handful of
// small arch:any sources have been taken from that queue and built from the
// mirror in the host's apt sources, and checks each result against what
// Debian itself built for the architecture:
//
//   - The merge's archive binaries are the real Packages-ARCH without the
//     arch:any binaries of the chosen sources (the archive as it stood
//     before Debian's buildd built them), so exactly those are Needs-Build
//     for them; build dependencies come from the real Packages-ARCH
//     unchanged. build_regex lets the daemon take only the chosen sources.
//   - A source the mirror serves must end Built, and the .deb files of its
//     .changes must be, by package name and version, the binaries of
//     Packages-ARCH that are not Architecture: all and whose source (the
//     Source field's name and "(version)", else the package's own name and
//     version) is that source at its Sources version. Debian's version of a
//     binNMU'd binary ("+bN") is matched without the suffix: the queue
//     schedules no binNMU, so ours is the plain rebuild. -dbgsym packages are
//     left out of the comparison (Debian ships them in the separate
//     debian-debug archive, not in Packages), but each must be the debug
//     package of a binary that is compared. .udeb files are not compared
//     either (they live in the debian-installer Packages).
//   - A source whose files the mirror does not serve (probed with HTTP
//     before the run) must be given back at Fail-Stage fetch-src: back to
//     Needs-Build, listed in build/SBUILD-GIVEN-BACK, never Build-Attempted
//     or Failed. Any build that failed at fetch-src is held to the same.
//
// The builds take /var/lock/buildd-realbuilds.lock for their whole run (the
// Makefile holds it with flock(1) around go test; run directly, the test
// takes it itself), so they do not share the machine with other heavy runs.
// BUILDD_REAL_DATA names the index directory (default
// ../shared/data/debian-bookworm-main beside the module).
package realbuilds

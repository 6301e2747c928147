#!/bin/bash
# make deb: the Debian packages of this checkout (debian/), built by
# dpkg-buildpackage from a copy of the checkout's files with its Go
# modules vendored. The modules come from the module proxy here, before
# the build; the build runs with GOPROXY=off and, as root, in a network
# namespace of its own (unshare --net), so it cannot reach the network.
# Go is the host's (GO, else go from PATH; bookworm's golang-go is too
# old for go.mod). The packages, .buildinfo and .changes land in
# DEB_OUT (bin/deb).
#
# hostdeps: installs debhelper dh-elpa go-md2man
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${DEB_OUT:-$repo/bin/deb}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
say() { printf '==> [%s] %s\n' "$(date +%T)" "$*"; }
die() { printf 'make deb: %s\n' "$*" >&2; exit 1; }

[ -x "$GO" ] || die "no Go toolchain (GO=$GO)"
cd "$repo"
missing=$(dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' | sed 's/([^)]*)//g') || true
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || die "not root, cannot install the build-dependencies: $missing"
	say "installing the build-dependencies: $missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

version=$(dpkg-parsechangelog -SVersion)
work=$out/src
src=$work/buildd-go-$version
rm -rf "$work"
mkdir -p "$src"
say "copying the checkout's files into $src"
# The files git knows or would add, but for tracked files deleted here.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$src"

say "vendoring the Go modules from the module proxy"
(cd "$src" && GOFLAGS=-mod=mod "$GO" mod vendor)

say "dpkg-buildpackage -b (offline: GOPROXY=off, and a network namespace of its own when root)"
offline=()
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
	offline=(unshare --net)
fi
(cd "$src" && "${offline[@]}" env GO="$GO" GOCACHE="$("$GO" env GOCACHE)" \
	PATH="$(dirname "$GO"):$PATH" dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 ||
	die "dpkg-buildpackage failed: $(tail -30 "$work/build.log")"
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
rm -rf "$src"
say "built (log: $work/build.log):"
ls -l "$out"/*.deb

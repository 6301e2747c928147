#!/bin/bash
# make test-fresh: the README's test command on a fresh host. A new bookworm
# is debootstrapped with only what the project's base machine image brings
# for it (make, gcc, git, dpkg-dev, gnupg, xz-utils, postgresql; Go is bound
# in from the host's /usr/local/go, as the image has it there), a fresh
# clone of this checkout (and ../shared beside it) is put in it, and
# `make test` runs inside as root: everything else it needs, `make deps`
# must install. Not part of CI: it takes about 17 minutes.
#
# Run as root, one at a time (a lock). The tree is FRESH_DIR
# (/var/tmp/buildd-test-fresh); it is removed at the end, every mount below
# it first, deepest first. KEEP=1 keeps it for a look.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${FRESH_DIR:-/var/tmp/buildd-test-fresh}
root=$work/root
# shellcheck source=freshroot.sh
. "$here/freshroot.sh"
[ -x /usr/local/go/bin/go ] || die "no Go in /usr/local/go (the base image's)"
freshroot_lock
freshroot_make minbase make,gcc,git,dpkg-dev,gnupg,xz-utils,postgresql,ca-certificates

say "a fresh clone of $(git -C "$repo" rev-parse --short HEAD) and ../shared"
mkdir -p "$root/work" "$root/usr/local/go"
git clone -q --no-local "$repo" "$root/work/main"
[ -d "$repo/../shared" ] && cp -a "$repo/../shared" "$root/work/shared"

freshroot_mount
mount --bind -o ro /usr/local/go "$root/usr/local/go"
mount -o remount,bind,ro "$root/usr/local/go"

say "make test inside, as root (log: $work/test.log)"
proxy=$(/usr/local/go/bin/go env GOPROXY)
status=0
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	GOPROXY="$proxy" GOFLAGS=-buildvcs=false \
	/bin/bash -c 'cd /work/main && make test' >"$work/test.log" 2>&1 || status=$?
tail -40 "$work/test.log"
if [ "$status" = 0 ]; then
	say "make test passed on a fresh bookworm"
else
	say "make test FAILED on a fresh bookworm (exit $status); whole log: $work/test.log"
fi
exit "$status"

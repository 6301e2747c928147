#!/bin/bash
# make test-fresh: the README's test command on a fresh host. A new bookworm
# is debootstrapped with only what the project's base machine image brings
# for it (make, gcc, git, dpkg-dev, gnupg, xz-utils, postgresql; Go is bound
# in from the host's /usr/local/go, as the image has it there), a fresh
# clone of this checkout (and ../shared beside it) is put in it, and
# `make test` runs inside as root: everything else it needs, `make deps`
# must install. Not part of CI: it takes about 10 minutes.
#
# Run as root, one at a time (a lock). The tree is FRESH_DIR
# (/var/tmp/buildd-test-fresh); it is removed at the end, every mount below
# it first, deepest first. KEEP=1 keeps it for a look.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${FRESH_DIR:-/var/tmp/buildd-test-fresh}
root=$work/root
dist=bookworm
base_pkgs=make,gcc,git,dpkg-dev,gnupg,xz-utils,postgresql,ca-certificates

say() { printf '==> [%s] %s\n' "$(date +%T)" "$*"; }
die() { printf 'test-fresh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it debootstraps and mounts)"
[ -x /usr/local/go/bin/go ] || die "no Go in /usr/local/go (the base image's)"
mkdir -p "$work"
exec 9>"$work.lock"
flock -n 9 || die "another test-fresh holds $work.lock"

# unmount_below unmounts every mount at or below $1, deepest first.
unmount_below() {
	local m
	findmnt -rn -o TARGET | awk -v r="$1" '$0 == r || index($0, r "/") == 1' | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

cleanup() {
	unmount_below "$root"
	if findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r) == 1' | grep . >/dev/null; then
		echo "test-fresh: mounts remain below $root; not removing it" >&2
		return
	fi
	if [ "${KEEP:-}" != 1 ]; then
		rm -rf --one-file-system "$root"
	fi
}
cleanup
trap cleanup EXIT

# The host's mirror, from its apt sources (deb822 or one-line form).
mirror=$(
	{ cat /etc/apt/sources.list.d/*.sources 2>/dev/null; } |
		awk -v d="$dist" '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i==d) {print u; exit}}'
)
[ -n "$mirror" ] || mirror=$(awk -v d="$dist" '$1=="deb" && $3==d {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || die "no $dist mirror in the host's apt sources"

say "debootstrap $dist (minbase + $base_pkgs) into $root"
debootstrap --variant=minbase --include="$base_pkgs" "$dist" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	die "debootstrap failed: $(tail -5 "$work/debootstrap.log")"
if cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null; then
	rm -f "$root/etc/apt/sources.list"
fi
# The host's name resolution, as the image has it (dupload asks
# hostname -f who it is).
cp /etc/resolv.conf /etc/hosts /etc/hostname "$root/etc/"
# The image's own certificate authorities (its network goes through them).
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
	chroot "$root" update-ca-certificates >/dev/null
fi

say "a fresh clone of $(git -C "$repo" rev-parse --short HEAD) and ../shared"
mkdir -p "$root/work" "$root/usr/local/go"
git clone -q --no-local "$repo" "$root/work/main"
[ -d "$repo/../shared" ] && cp -a "$repo/../shared" "$root/work/shared"

# The fresh root is a mount point, as a host's / is (the build sandbox
# remounts / private).
mount --bind "$root" "$root"
mount --make-private "$root"
for m in dev proc sys; do
	mount --rbind "/$m" "$root/$m"
	mount --make-rslave "$root/$m"
done
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
	say "make test passed on a fresh $dist"
else
	say "make test FAILED on a fresh $dist (exit $status); whole log: $work/test.log"
fi
exit "$status"

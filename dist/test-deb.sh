#!/bin/bash
# make test-deb: the Debian packages, installed, used and purged in a fresh
# bookworm. As root, one run at a time; part of make test (about two
# minutes).
#
#  1. make deb (dist/make-deb.sh), then lintian on the packages here: no
#     error, and every warning one the README's list explains.
#  2. A fresh debootstrapped bookworm (minbase, with man-db and systemd to
#     read pages and check units, and what the demo runs: reprepro,
#     dpkg-dev, gnupg, emacs-nox), and a listing of its tree.
#  3. apt-get install ./*.deb, which must resolve from the mirror.
#  4. Every program's --help, every manual page through man, the units
#     through systemd-analyze verify and not enabled, the conffiles, the
#     home's directories and modes, the example config refused for want of
#     a [[dist]], buildd-reply loaded by Emacs from the elpa package.
#  5. The demo's loop (buildd/demo/demo.sh) with the installed programs:
#     every package ends in its state; then demo.sh clean.
#  6. Purge: a home holding a log is kept and said so; a purge told
#     BUILDD_PURGE_HOME=yes removes it; once the packages the install
#     brought in are purged too, the tree's listing must be the one before
#     the install (as piuparts checks): no file the packages made is left,
#     none of the system's is gone.
#
# DEB_TEST_DIR (/var/tmp/buildd-test-deb) holds the tree, removed at the
# end (every mount below it first); KEEP=1 keeps it for a look.
#
# hostdeps: installs lintian
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${DEB_TEST_DIR:-/var/tmp/buildd-test-deb}
root=$work/root
out=$repo/bin/deb
# shellcheck source=../internal/hostdeps/freshroot.sh
. "$repo/internal/hostdeps/freshroot.sh"
freshroot_lock

fail() { say "FAILED: $*"; exit 1; }

"$repo/dist/make-deb.sh"
debs=("$out"/*.deb)

say "lintian"
if ! command -v lintian >/dev/null; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
fi
lintian --fail-on error --display-level '>=warning' "${debs[@]}" | tee "$work/lintian.txt" ||
	fail "lintian found errors"
# Every warning left is explained in the README (its lintian list).
explained=$(sed -n '/^#### lintian/,/^#/p' "$repo/README.md")
while read -r level pkg tag _; do
	[ "$level" = W: ] || continue
	grep -q -- "\`$tag\`" <<<"$explained" || fail "lintian warning $tag ($pkg) is not explained in the README"
done <"$work/lintian.txt"

freshroot_make minbase systemd,man-db,reprepro,dpkg-dev,gnupg,emacs-nox,xz-utils,ca-certificates
freshroot_mount
# The demo's machine, when this host has it cached, spares a debootstrap.
cache=/var/cache/buildd-demo
if [ -d "$cache" ]; then
	mkdir -p "$root$cache"
	cp -a "$cache"/*.tar "$root$cache/" 2>/dev/null || true
fi

# listing prints the tree as piuparts compares it: every path with its
# type, mode and owner, but for the kernel's, the logs', apt's and dpkg's
# own bookkeeping and the demo's machine cache; and /etc/aliases and
# /etc/mailname, which the MTA that cron recommends (exim4) makes and
# leaves on purpose when purged, as every MTA shares them.
listing() {
	(cd "$root" && find . -xdev \
		\( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp -o -path ./var/tmp \
		-o -path ./var/log -o -path ./var/cache/apt -o -path ./var/lib/apt -o -path ./var/lib/dpkg \
		-o -path ./var/cache/man -o -path ./var/cache/debconf -o -path ./var/cache/ldconfig \
		-o -path ./var/cache/buildd-demo -o -path ./var/lib/systemd/catalog -o -path ./etc/ld.so.cache \
		-o -path ./root/.emacs.d -o -path ./root/demo -o -path ./etc/aliases -o -path ./etc/mailname \) -prune -o -printf '%y %m %u %p\n' | sort)
}
listing >"$work/before.txt"
packages() { freshroot_run dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 != "un" {print $2}' | sort; }
packages >"$work/packages-before.txt"

say "apt-get install ./*.deb"
mkdir -p "$root/tmp/debs"
cp "${debs[@]}" "$root/tmp/debs/"
freshroot_run sh -c 'cd /tmp/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./*.deb' \
	>"$work/install.log" 2>&1 || fail "apt-get install: $(tail -20 "$work/install.log")"

say "--help, man, units, conffiles, home"
for cmd in buildd "buildd machine" "buildd build" "buildd quarantine" buildd-mail buildd-uploader buildd-watcher wanna-build; do
	# shellcheck disable=SC2086
	freshroot_run $cmd --help >"$work/help.txt" 2>&1 || fail "$cmd --help: exit $?: $(cat "$work/help.txt")"
	grep -qi 'usage' "$work/help.txt" || fail "$cmd --help says no usage: $(head -3 "$work/help.txt")"
done
for page in buildd wanna-build buildd-mail buildd-uploader buildd-watcher "5 buildd.conf"; do
	# shellcheck disable=SC2086
	freshroot_run env MANWIDTH=80 man -P cat $page >"$work/man.txt" 2>"$work/man.err" || fail "man $page: $(cat "$work/man.err")"
	grep -q '^NAME' "$work/man.txt" && grep -q '^DESCRIPTION' "$work/man.txt" || fail "man $page: no NAME or DESCRIPTION"
	[ ! -s "$work/man.err" ] || fail "man $page: $(cat "$work/man.err")"
done
units=(/lib/systemd/system/buildd.service /lib/systemd/system/buildd-mail.service /lib/systemd/system/buildd-watcher.service)
freshroot_run systemd-analyze verify "${units[@]}" >"$work/verify.txt" 2>&1 || fail "systemd-analyze verify: $(cat "$work/verify.txt")"
[ ! -s "$work/verify.txt" ] || fail "systemd-analyze verify: $(cat "$work/verify.txt")"
for u in "${units[@]}"; do
	state=$(freshroot_run systemctl is-enabled "${u##*/}" 2>&1 || true)
	[ "$state" = disabled ] || fail "${u##*/} is $state, want disabled"
done
conffiles=$(freshroot_run dpkg-query -W -f='${Conffiles}' buildd-go | awk '{print $1}' | sort | xargs)
[ "$conffiles" = "/etc/buildd/buildd.conf /etc/cron.d/buildd" ] || fail "conffiles: $conffiles"
freshroot_run grep -q '^#[0-9]' /etc/cron.d/buildd || fail "/etc/cron.d/buildd: its jobs are not commented out"
modes=$(freshroot_run stat -c '%n %a %U' /var/lib/buildd /var/lib/buildd/build /var/lib/buildd/logs \
	/var/lib/buildd/old-logs /var/lib/buildd/stats /var/lib/buildd/mqueue /var/lib/buildd/upload | xargs)
want="/var/lib/buildd 750 root /var/lib/buildd/build 755 root /var/lib/buildd/logs 755 root /var/lib/buildd/old-logs 755 root /var/lib/buildd/stats 755 root /var/lib/buildd/mqueue 700 root /var/lib/buildd/upload 750 root"
[ "$modes" = "$want" ] || fail "the home: $modes, want $want"
if freshroot_run buildd --dump-config >"$work/conf.txt" 2>&1; then
	fail "the shipped buildd.conf is taken as complete: $(head -3 "$work/conf.txt")"
fi
grep -q 'dist' "$work/conf.txt" || fail "the shipped buildd.conf: $(cat "$work/conf.txt"), want a [[dist]] asked for"
freshroot_run emacs --batch -q -f package-activate-all --eval "(progn (require 'buildd-reply) (princ (if (fboundp 'buildd-reply-ok) \"loaded\" \"no buildd-reply-ok\")))" \
	>"$work/emacs.txt" 2>&1 || fail "emacs: $(tail -5 "$work/emacs.txt")"
grep -q '^loaded' "$work/emacs.txt" || fail "emacs: $(tail -5 "$work/emacs.txt")"

say "the demo's loop with the installed programs (log: $work/demo.log)"
mkdir -p "$root/root/demo/buildd"
cp -a "$repo/buildd/demo" "$root/root/demo/buildd/"
freshroot_run env BIN=/usr/bin /root/demo/buildd/demo/demo.sh run >"$work/demo.log" 2>&1 ||
	fail "demo: $(tail -20 "$work/demo.log")"
for want in "buildd-demo-broken *Failed" "buildd-demo-depwait *Dep-Wait" "buildd-demo-dh *Installed" "buildd-demo-hello *Installed"; do
	grep -q "^    $want " "$work/demo.log" || fail "demo: no \"$want\" in its result: $(tail -12 "$work/demo.log")"
done
freshroot_run /root/demo/buildd/demo/demo.sh clean >>"$work/demo.log" 2>&1 || fail "demo clean: $(tail -5 "$work/demo.log")"
rm -rf "$root/root/demo"

say "purge"
purge() {
	freshroot_run env DEBIAN_FRONTEND=noninteractive "$@" apt-get purge -y -q buildd-go elpa-buildd-reply buildd-go-dbgsym \
		>"$work/purge.log" 2>&1 || fail "apt-get purge: $(tail -20 "$work/purge.log")"
}
echo "a build log" >"$root/var/lib/buildd/logs/kept.build"
purge
[ -f "$root/var/lib/buildd/logs/kept.build" ] || fail "purge removed the admin's log"
grep -q 'kept /var/lib/buildd' "$work/purge.log" || fail "purge kept /var/lib/buildd without saying so: $(tail -5 "$work/purge.log")"
rm -r "$root/var/lib/buildd"
freshroot_run sh -c 'cd /tmp/debs && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./*.deb' \
	>"$work/install.log" 2>&1 || fail "apt-get install again: $(tail -20 "$work/install.log")"
echo "a build log" >"$root/var/lib/buildd/logs/gone.build"
purge BUILDD_PURGE_HOME=yes
[ ! -e "$root/var/lib/buildd" ] || fail "a purge with BUILDD_PURGE_HOME=yes left /var/lib/buildd"
# The packages the install brought in go too, as piuparts purges them.
packages >"$work/packages-after.txt"
mapfile -t brought < <(comm -13 "$work/packages-before.txt" "$work/packages-after.txt")
if [ "${#brought[@]}" -gt 0 ]; then
	freshroot_run env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${brought[@]}" >>"$work/purge.log" 2>&1 ||
		fail "apt-get purge of what the install brought in: $(tail -20 "$work/purge.log")"
fi
rm -rf "$root/tmp/debs"
listing >"$work/after.txt"
if ! diff -u "$work/before.txt" "$work/after.txt" >"$work/left.diff"; then
	fail "the tree after the purge is not the one before the install (+ left, - gone):
$(grep '^[-+][^-+]' "$work/left.diff")"
fi
say "test-deb passed: installed, used and purged without a trace"

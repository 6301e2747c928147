#!/usr/bin/env bash
# sbuild side by side: builds the same real packages from the archive with
# Debian's sbuild (a schroot chroot of type btrfs-snapshot) and with our
# `buildd build`, both over the SAME read-only machine revision, alternating
# (sbuild, ours, sbuild, ours, ...), and prints each run's Job-Time (sbuild:
# its summary's Package-Time; ours: Job-Time) and wall time, our
# Install-Time, layer and bytes downloaded, the medians and the ratio
# ours / sbuild. Ours keeps its layers, package cache and package lists
# from one round to the next, as on a real host: its first round is cold,
# its median is over the later (warm) rounds; sbuild has nothing to keep.
#
#   make bench-sbuild                                  (as root)
#   buildd/build/sbuild-bench.sh [-n ROUNDS] [PKG...]  (default: 3 rounds, tiny-dh hello bc)
#
# A PKG that is a directory of buildd/build/testdata (tiny-dh: a small
# debhelper package) is built from its .dsc by both; any other from the
# archive.
#
# PARALLEL=N (default: the number of CPUs) is both builds' parallel setting;
# KEEP_LOGS=DIR keeps every build log there.
#
# It needs root, installs sbuild and schroot when they are missing, and makes
# everything in a temporary directory under ${TMPDIR:-/var/tmp}: a loop-mounted
# btrfs volume holding the machine (imported from a cached tarball of the
# tests or the demo, or made with `buildd machine create`) and the schroot
# snapshots; a schroot config in /etc/schroot/chroot.d. All of it is removed
# at exit. The runs hold /var/lock/buildd-realbuilds.lock, as the real-build
# tests do, so neither they nor a second copy of this script run beside them
# (other loads still skew both: the table ends with the load average).
#
# Both do the same work: fresh package lists (sbuild: apt-get update every
# build; ours: once per lists_max_age), the source from the mirror of the
# machine's own deb-src lines (or the .dsc), arch-only build-deps and build
# (-B) at parallel=N, no lintian, piuparts or autopkgtest, no upgrade of the
# machine.
#
# hostdeps: installs sbuild schroot
set -euo pipefail

ROUNDS=3
while getopts n: opt; do
	case $opt in
	n) ROUNDS=$OPTARG ;;
	*) echo "usage: $0 [-n ROUNDS] [PKG...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
PKGS=("$@")
[ ${#PKGS[@]} -gt 0 ] || PKGS=(tiny-dh hello bc)
case $ROUNDS in '' | *[!0-9]* | 0) echo "sbuild-bench: -n wants a positive number" >&2; exit 2 ;; esac

DIST=bookworm
ARCH=$(dpkg --print-architecture)
MACHINE=$DIST-$ARCH
PARALLEL=${PARALLEL:-$(nproc)}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/bin
LOCK=/var/lock/buildd-realbuilds.lock

say() { printf '==> [%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'sbuild-bench: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run it as root: it mounts a btrfs volume, and both builders need root"
[ -x "$BIN/buildd" ] || die "no $BIN/buildd: run make first (make bench-sbuild does)"

# Hold the real-build lock for the whole run (on fd 9, so one flock covers
# every step below and a second copy of this script waits).
exec 9>>"$LOCK"
if ! flock -n 9; then
	say "waiting for $LOCK (another real-build run holds it)"
	flock 9
fi

if ! command -v sbuild >/dev/null || ! command -v schroot >/dev/null; then
	say "installing sbuild and schroot"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends sbuild schroot >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/sbuild-bench.XXXXXX")
VOL=$WORK/vol
MACHINES=$VOL/machines
CHROOT=buildd-sbuild-bench-$$
SCHROOT_CONF=/etc/schroot/chroot.d/$CHROOT

clean() {
	local rc=$? s m dev
	set +e
	# sbuild ends its sessions itself; one an interruption left behind
	# would keep mounts and a snapshot on the volume.
	for s in $(schroot --list --all-sessions 2>/dev/null | sed -n "s/^session:\\($CHROOT-.*\\)/\\1/p"); do
		schroot --end-session -c "session:$s" >/dev/null 2>&1
	done
	rm -f "$SCHROOT_CONF"
	# Deepest mounts first.
	for m in $(findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r); do
		umount "$m" || umount -l "$m"
	done
	for dev in $(losetup -j "$WORK/vol.img" -O NAME -n 2>/dev/null); do
		losetup -d "$dev"
	done
	rm -rf --one-file-system "$WORK"
	exit "$rc"
}
trap clean EXIT
trap 'exit 130' INT TERM HUP

say "btrfs volume and machine $MACHINE in $WORK"
truncate -s 8G "$WORK/vol.img"
mkfs.btrfs -q "$WORK/vol.img"
mkdir -p "$VOL"
mount -o loop "$WORK/vol.img" "$VOL"
mkdir -p "$MACHINES" "$VOL/schroot" "$WORK/home"
tarball=/var/cache/buildd-demo/$MACHINE.tar # or the tests' cache when newer
for f in /var/cache/buildd-test/machine-"$MACHINE"-*.tar; do
	if [ -f "$f" ] && { [ ! -f "$tarball" ] || [ "$f" -nt "$tarball" ]; }; then tarball=$f; fi
done
if [ -f "$tarball" ]; then
	"$BIN/buildd" machine --machines-dir "$MACHINES" import "$MACHINE" "$tarball" --dist "$DIST" --arch "$ARCH" >&2
else
	say "no cached machine: debootstrap from the host's apt mirror (a minute or two)"
	"$BIN/buildd" machine --machines-dir "$MACHINES" create "$MACHINE" --dist "$DIST" --arch "$ARCH" >&2
fi
REV=$(readlink -f "$MACHINES/$MACHINE/current")
say "revision $REV"

# sbuild's chroot: snapshots of the same read-only revision.
cat >"$SCHROOT_CONF" <<EOF
[$CHROOT]
description=buildd sbuild-bench (temporary): $REV
type=btrfs-snapshot
btrfs-source-subvolume=$REV
btrfs-snapshot-directory=$VOL/schroot
groups=root,sbuild
root-groups=root,sbuild
profile=sbuild
EOF

# Our config.
CONF=$WORK/buildd.conf
cat >"$CONF" <<EOF
home = "$WORK/home"
machines_dir = "$MACHINES"
builder_name = "sbuild-bench"
nice_level = 0

[[dist]]
dist_name = "$DIST"
built_architecture = "$ARCH"
machine = "$MACHINE"
EOF

# sbuild reads only this (empty) config beside /etc/sbuild/sbuild.conf.
export SBUILD_CONFIG=$WORK/sbuildrc
echo '1;' >"$SBUILD_CONFIG"
unset DEB_BUILD_OPTIONS DEB_BUILD_PROFILES MAKEFLAGS

# The .dsc of each testdata package; the version of each other, from the
# machine's apt after an update (in a throwaway session of the schroot,
# which checks its config too).
declare -A DSC
ARCHIVE_PKGS=()
for p in "${PKGS[@]}"; do
	if [ -d "$TOP/buildd/build/testdata/$p/debian" ]; then
		mkdir -p "$WORK/src"
		cp -r "$TOP/buildd/build/testdata/$p" "$WORK/src/"
		(cd "$WORK/src" && dpkg-source -b "$p" >/dev/null) || die "$p: dpkg-source -b failed"
		DSC[$p]=$(ls "$WORK/src/$p"_*.dsc)
	else
		ARCHIVE_PKGS+=("$p")
	fi
done
say "versions from the machine's apt"
# shellcheck disable=SC2016 # expanded by the chroot's shell
schroot -c "$CHROOT" -u root -d / -- sh -c '
	apt-get -qq update >/dev/null
	for p; do apt-cache showsrc --only-source "$p" | sed -n "s/^Version: /$p /p"; done' sh "${ARCHIVE_PKGS[@]}" >"$WORK/versions"
declare -A VERSION
for p in "${ARCHIVE_PKGS[@]}"; do
	v=""
	while read -r name ver; do
		[ "$name" = "$p" ] || continue
		if [ -z "$v" ] || dpkg --compare-versions "$ver" gt "$v"; then v=$ver; fi
	done <"$WORK/versions"
	[ -n "$v" ] || die "$p: no source package in the machine's apt sources"
	VERSION[$p]=$v
done

now() { date +%s.%N; }
field() { sed -n "s/^$1: //p" "$2" | tail -1; }
keep() { if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$1" "$KEEP_LOGS/$2"; fi; }
show_tail() { printf '\n--- last lines of %s ---\n' "$1" >&2; tail -30 "$1" >&2; exit 1; }

# run_sbuild PKG_VERSION|DSC N: prints "JOB_TIME WALL"
run_sbuild() {
	local out t0 t1 log rc=0
	out=$WORK/sbuild/$(basename "$1")-$2
	mkdir -p "$out"
	t0=$(now)
	(cd "$out" && sbuild --chroot-mode=schroot --chroot="$CHROOT" --dist="$DIST" --arch="$ARCH" \
		--arch-any --no-arch-all --no-run-lintian --no-run-piuparts --no-run-autopkgtest \
		--apt-update --no-apt-upgrade --no-apt-distupgrade --jobs="$PARALLEL" \
		--build-dir="$out" "$1" >"$out/stdout" 2>&1) || rc=$?
	t1=$(now)
	log=$(find "$out" -maxdepth 1 -type f -name '*.build' | head -1)
	[ -n "$log" ] || show_tail "$out/stdout"
	keep "$log" "sbuild-$(basename "$1")-$2.build"
	if [ "$rc" != 0 ] || [ "$(field Status "$log")" != successful ]; then show_tail "$log"; fi
	echo "$(field Package-Time "$log") $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
}

# run_ours PKG_VERSION|DSC N: prints "JOB_TIME WALL INSTALL_TIME LAYER DOWNLOADED_MIB"
run_ours() {
	local out=$WORK/ours.out t0 t1 log rc=0 what=("$1")
	case $1 in *.dsc) what=(--dsc "$1") ;; esac
	t0=$(now)
	"$BIN/buildd" build --config "$CONF" --dist "$DIST" --parallel "$PARALLEL" "${what[@]}" >"$out" 2>&1 || rc=$?
	t1=$(now)
	log=$(field Log "$out")
	if [ -z "$log" ] || [ ! -f "$log" ]; then show_tail "$out"; fi
	keep "$log" "ours-$(basename "$1")-$2.build"
	if [ "$rc" != 0 ] || [ "$(field Status "$log")" != successful ]; then show_tail "$log"; fi
	local layer dl
	case $(field Install-Layer "$log") in none) layer=none ;; *'(new)') layer=new ;; *) layer=hit ;; esac
	dl=$(sed -n 's/^[0-9]* bytes from the machine.s package cache, \([0-9]*\) to download$/\1/p' "$log" | tail -1)
	echo "$(field Job-Time "$log") $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(field Install-Time "$log") $layer $(awk -v n="${dl:-0}" 'BEGIN { printf "%.1f", n / 1048576 }')"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD0=$(load)
rows=()
for p in "${PKGS[@]}"; do
	pv=${DSC[$p]:-${p}_${VERSION[$p]:-}}
	name=$(basename "$pv" .dsc)
	sj=() sw=() oj=() ow=()
	for ((i = 1; i <= ROUNDS; i++)); do
		say "$name round $i/$ROUNDS: sbuild"
		res=$(run_sbuild "$pv" "$i")
		read -r j w <<<"$res"
		sj+=("$j") sw+=("$w")
		say "$name round $i/$ROUNDS: ours ($j s / $w s for sbuild)"
		res=$(run_ours "$pv" "$i")
		read -r j w inst layer dl <<<"$res"
		# Ours: the first round is cold; the median is over the warm ones.
		if [ "$i" -gt 1 ] || [ "$ROUNDS" = 1 ]; then oj+=("$j") ow+=("$w"); fi
		say "$name round $i/$ROUNDS: done ($j s / $w s for ours)"
		rows+=("$(printf '%-24s %-7s %9s s %9s s %9s s %9s s %9s s %6s %8s MiB' "$name" "$i" "${sj[-1]}" "${sw[-1]}" "$j" "$w" "$inst" "$layer" "$dl")")
	done
	msj=$(printf '%s\n' "${sj[@]}" | median) msw=$(printf '%s\n' "${sw[@]}" | median)
	moj=$(printf '%s\n' "${oj[@]}" | median) mow=$(printf '%s\n' "${ow[@]}" | median)
	rows+=("$(printf '%-24s %-7s %9s s %9s s %9s s %9s s   ours (warm)/sbuild: Job-Time %s, wall %s' "$name" median \
		"$msj" "$msw" "$moj" "$mow" \
		"$(awk -v a="$moj" -v b="$msj" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / (b > 0 ? b : 1) }')" \
		"$(awk -v a="$mow" -v b="$msw" 'BEGIN { printf "%.2f", a / b }')")")
done

printf '\nsbuild %s (schroot btrfs-snapshot) vs buildd build, %s round(s), parallel=%s, same revision %s\n' \
	"$(dpkg-query -W -f '${Version}' sbuild)" "$ROUNDS" "$PARALLEL" "$(basename "$REV")"
printf '%-24s %-7s %11s %11s %11s %11s %11s %6s %12s\n' package round 'sbuild job' 'sbuild wall' 'ours job' 'ours wall' 'ours inst' layer downloaded
printf '%s\n' "${rows[@]}"
printf '(job: sbuild'"'"'s Package-Time, our Job-Time, whole seconds; wall: the whole command; inst: our Install-Time;\n'
printf ' layer: new (installed, kept a layer), hit (from a layer), none; downloaded: our build-dependencies fetched;\n'
printf ' medians: sbuild over every round, ours over the warm rounds 2..N)\n'
printf '(load average before the runs %s, after %s: anything else running skews both)\n' "$LOAD0" "$(load)"

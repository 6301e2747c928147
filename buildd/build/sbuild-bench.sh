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
#   make bench-sbuild                                       (as root)
#   buildd/build/sbuild-bench.sh [-f] [-n ROUNDS] [PKG...]  (default: 3 rounds, tiny-dh hello bc)
#
# -f: first builds, as a host meets new uploads: the archive packages'
# build-dependencies are downloaded into our package cache before the runs
# (sbuild downloads them every build), and each package is built once, ours
# with no layer of its set (but the layers of the packages before it).
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

ROUNDS=3 FIRST=""
while getopts fn: opt; do
	case $opt in
	f) FIRST=1 ;;
	n) ROUNDS=$OPTARG ;;
	*) echo "usage: $0 [-f] [-n ROUNDS] [PKG...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
PKGS=("$@")
[ ${#PKGS[@]} -gt 0 ] || PKGS=(tiny-dh hello bc)
case $ROUNDS in '' | *[!0-9]* | 0) echo "sbuild-bench: -n wants a positive number" >&2; exit 2 ;; esac
KIND=warm
[ -z "$FIRST" ] || ROUNDS=1 KIND=first

PARALLEL=${PARALLEL:-$(nproc)}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=buildd/build/bench-lib.sh
. "$TOP/buildd/build/bench-lib.sh"
[ -x "$TOP/bin/buildd" ] || die "no $TOP/bin/buildd: run make first (make bench-sbuild does)"

if ! command -v sbuild >/dev/null || ! command -v schroot >/dev/null; then
	say "installing sbuild and schroot"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends sbuild schroot >&2
fi

CHROOT=buildd-sbuild-bench-$$
SCHROOT_CONF=/etc/schroot/chroot.d/$CHROOT
bench_clean_more() {
	local s
	# sbuild ends its sessions itself; one an interruption left behind
	# would keep mounts and a snapshot on the volume.
	for s in $(schroot --list --all-sessions 2>/dev/null | sed -n "s/^session:\\($CHROOT-.*\\)/\\1/p"); do
		schroot --end-session -c "session:$s" >/dev/null 2>&1
	done
	rm -f "$SCHROOT_CONF"
}
bench_start 8G
MACHINES=$VOL/machines
mkdir -p "$VOL/schroot"
say "btrfs volume and machine $MACHINE in $WORK"
REV=$(bench_machine "$MACHINES")
say "revision $REV"

# sbuild's chroot: snapshots of the same read-only revision.
cat >"$SCHROOT_CONF" <<EOF2
[$CHROOT]
description=buildd sbuild-bench (temporary): $REV
type=btrfs-snapshot
btrfs-source-subvolume=$REV
btrfs-snapshot-directory=$VOL/schroot
groups=root,sbuild
root-groups=root,sbuild
profile=sbuild
EOF2

# Our config.
CONF=$WORK/buildd.conf
bench_config "$CONF" "$WORK/home" "$MACHINES"

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
declare -A VERSION
if [ -n "$FIRST" ]; then
	say "versions from the machine's apt, and the build-dependencies downloaded (the warm package cache)"
	bench_warm "$REV" "$MACHINES" "${ARCHIVE_PKGS[@]}"
else
	say "versions from the machine's apt"
	bench_warm "$REV" "" "${ARCHIVE_PKGS[@]}"
fi
for p in "${ARCHIVE_PKGS[@]}"; do
	[ -n "${VERSION[$p]:-}" ] || die "$p: no source package in the machine's apt sources"
done

keep() { if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$1" "$KEEP_LOGS/$2"; fi; }
show_tail() { printf '\n--- last lines of %s ---\n' "$1" >&2; tail -30 "$1" >&2; exit 1; }

# run_sbuild PKG_VERSION|DSC N: prints "JOB_TIME WALL AROUND" (AROUND: wall minus Build-Time)
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
	echo "$(field Package-Time "$log") $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(awk -v a="$t0" -v b="$t1" -v c="$(field Build-Time "$log")" 'BEGIN { printf "%.2f", b - a - c }')"
}

# run_ours PKG_VERSION|DSC N: prints "JOB_TIME WALL INSTALL_TIME LAYER DOWNLOADED_MIB AROUND"
run_ours() {
	local out=$WORK/ours.out t0 t1 log rc=0 what=("$1")
	case $1 in *.dsc) what=(--dsc "$1") ;; esac
	t0=$(now)
	"$TOP/bin/buildd" build --config "$CONF" --dist "$DIST" --parallel "$PARALLEL" "${what[@]}" >"$out" 2>&1 || rc=$?
	t1=$(now)
	log=$(field Log "$out")
	if [ -z "$log" ] || [ ! -f "$log" ]; then show_tail "$out"; fi
	keep "$log" "ours-$(basename "$1")-$2.build"
	if [ "$rc" != 0 ] || [ "$(field Status "$log")" != successful ]; then show_tail "$log"; fi
	local layer dl
	case $(field Install-Layer "$log") in none) layer=none ;; *'(new)') layer=new ;; *'(new, grown'*) layer=grown ;; *) layer=hit ;; esac
	dl=$(sed -n 's/^[0-9]* bytes from the machine.s package cache, \([0-9]*\) to download$/\1/p' "$log" | tail -1)
	echo "$(field Job-Time "$log") $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(field Install-Time "$out") $layer $(awk -v n="${dl:-0}" 'BEGIN { printf "%.1f", n / 1048576 }')" \
		"$(awk -v a="$t0" -v b="$t1" -v c="$(field Build-Time "$log")" 'BEGIN { printf "%.2f", b - a - c }')"
}


LOAD0=$(load)
rows=()
for p in "${PKGS[@]}"; do
	pv=${DSC[$p]:-${p}_${VERSION[$p]:-}}
	name=$(basename "$pv" .dsc)
	sj=() sw=() sa=() oj=() ow=() oa=()
	for ((i = 1; i <= ROUNDS; i++)); do
		say "$name round $i/$ROUNDS: sbuild"
		res=$(run_sbuild "$pv" "$i")
		read -r j w a <<<"$res"
		sj+=("$j") sw+=("$w") sa+=("$a")
		say "$name round $i/$ROUNDS: ours ($j s / $w s for sbuild)"
		res=$(run_ours "$pv" "$i")
		read -r j w inst layer dl a <<<"$res"
		# Ours: the first round is cold; the median is over the warm ones.
		if [ "$i" -gt 1 ] || [ "$ROUNDS" = 1 ]; then oj+=("$j") ow+=("$w") oa+=("$a"); fi
		say "$name round $i/$ROUNDS: done ($j s / $w s for ours)"
		rows+=("$(printf '%-24s %-7s %9s s %9s s %9s s %9s s %9s s %6s %8s MiB' "$name" "$i" "${sj[-1]}" "${sw[-1]}" "$j" "$w" "$inst" "$layer" "$dl")")
	done
	msj=$(printf '%s\n' "${sj[@]}" | median) msw=$(printf '%s\n' "${sw[@]}" | median)
	moj=$(printf '%s\n' "${oj[@]}" | median) mow=$(printf '%s\n' "${ow[@]}" | median)
	msa=$(printf '%s\n' "${sa[@]}" | median) moa=$(printf '%s\n' "${oa[@]}" | median)
	rows+=("$(printf '%-24s %-7s %9s s %9s s %9s s %9s s   ours (%s)/sbuild: Job-Time %s, wall %s, around the build %s (%s s / %s s)' "$name" median \
		"$msj" "$msw" "$moj" "$mow" "$KIND" \
		"$(awk -v a="$moj" -v b="$msj" 'BEGIN { printf (b > 0 ? "%.2f" : "n/a"), a / (b > 0 ? b : 1) }')" \
		"$(awk -v a="$mow" -v b="$msw" 'BEGIN { printf "%.2f", a / b }')" \
		"$(awk -v a="$moa" -v b="$msa" 'BEGIN { printf "%.2f", a / b }')" "$moa" "$msa")")
done

printf '\nsbuild %s (schroot btrfs-snapshot) vs buildd build, %s round(s), parallel=%s, same revision %s\n' \
	"$(dpkg-query -W -f '${Version}' sbuild)" "$ROUNDS" "$PARALLEL" "$(basename "$REV")"
printf '%-24s %-7s %11s %11s %11s %11s %11s %6s %12s\n' package round 'sbuild job' 'sbuild wall' 'ours job' 'ours wall' 'ours inst' layer downloaded
printf '%s\n' "${rows[@]}"
printf '(job: sbuild'"'"'s Package-Time, our Job-Time, whole seconds; wall: the whole command; inst: our Install-Time;\n'
printf ' layer: new (installed, kept a layer), grown (installed on a layer, kept a layer), hit (from a layer), none;\n'
printf ' downloaded: our build-dependencies fetched; around the build: wall minus the log'"'"'s Build-Time;\n'
printf ' medians: sbuild over every round, ours over the warm rounds 2..N, or the first with -f)\n'
printf '(load average before the runs %s, after %s: anything else running skews both)\n' "$LOAD0" "$(load)"

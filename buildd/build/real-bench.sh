#!/usr/bin/env bash
# First builds of real packages, today's code beside an older commit's: the
# way a host meets new uploads. Each package of a fixed sample of real
# bookworm sources is built once, in sequence, by `buildd build` of the
# older commit (OLD, a git worktree built into the run's directory) and by
# bin/buildd, alternating package by package, each with its own machine
# (imported from the same tarball), layers and home, both starting with a
# warm package cache (every build-dependency of the sample downloaded
# before) and no layer. It prints per package and code the Install-Time,
# the layer (new: installed on the bare revision; grown from: the layer it
# grew from; hit), the Job-Time and whether both made the same .debs,
# byte for byte; then the median and p90 Install-Time and the disk all
# layers take, for each code.
#
#   make bench-real                               (as root)
#   buildd/build/real-bench.sh [-o OLD] [PKG...]  (default: the sample below)
#
# OLD defaults to the last commit before issue 26 (fast first builds). Its
# Install-Time is the log summary's whole seconds (it prints no finer);
# ours is the hundredths `buildd build` prints. The layers' disk is what
# deleting them all frees on the volume (btrfs, after a sync), so what
# layers share is counted once. PARALLEL=N (default: the number of CPUs) is
# the parallel setting; KEEP_LOGS=DIR keeps every build log there.
#
# It needs root, the mirror of the host's apt sources (the machine's own
# lines) and the cached machine tarball of the tests or the demo (else it
# debootstraps one). Everything lives in a temporary directory under
# ${TMPDIR:-/var/tmp}, removed at exit; it holds
# /var/lock/buildd-realbuilds.lock, as the real-build tests do.
set -euo pipefail

# The sample: autotools (hello bc pv less nano libyaml libogg libvorbis),
# plain make (tree xxhash lua5.4), CMake (cjson json-c tinyxml2 cmark
# cmocka), Meson (wayland libxkbcommon), CMake with Python bindings
# (brotli), Perl XS (libtext-csv-xs-perl); from debhelper alone to doxygen,
# graphviz, XCB and every Python version's development packages. All of
# them are sources the mirror serves.
SAMPLE=(hello cjson bc pv json-c less tinyxml2 nano wayland libyaml brotli
	cmocka libtext-csv-xs-perl tree libxkbcommon libogg cmark libvorbis lua5.4 xxhash)
OLD=ae9ea5c

while getopts o: opt; do
	case $opt in
	o) OLD=$OPTARG ;;
	*) echo "usage: $0 [-o OLD] [PKG...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
PKGS=("$@")
[ ${#PKGS[@]} -gt 0 ] || PKGS=("${SAMPLE[@]}")
TOP=$(cd "$(dirname "$0")/../.." && pwd)
PARALLEL=${PARALLEL:-$(nproc)}
# shellcheck source=buildd/build/bench-lib.sh
. "$TOP/buildd/build/bench-lib.sh"

[ -x "$TOP/bin/buildd" ] || die "no $TOP/bin/buildd: run make first (make bench-real does)"
OLDREV=$(git -C "$TOP" rev-parse --verify "$OLD^{commit}") || die "$OLD: no such commit"

bench_clean_more() {
	git -C "$TOP" worktree remove --force "$WORK/old-src" 2>/dev/null
	git -C "$TOP" worktree prune 2>/dev/null
}
bench_start 40G

say "building buildd of $OLD in a worktree"
git -C "$TOP" worktree add -q --detach "$WORK/old-src" "$OLDREV"
(cd "$WORK/old-src" && go build -o "$WORK/old-buildd" ./buildd)
BIN_OLD=$WORK/old-buildd BIN_NEW=$TOP/bin/buildd

REV=""
for code in old new; do
	REV=$(bench_machine "$VOL/$code/machines")
	bench_config "$WORK/$code.conf" "$VOL/$code/home" "$VOL/$code/machines" \
		"layer_cache_size = 1000000" "package_cache_size = 1000000"
done
say "revision $(basename "$REV")"

say "downloading the sample's build-dependencies (the warm package cache)"
declare -A VERSION
bench_warm "$REV" "$VOL/old/machines $VOL/new/machines" "${PKGS[@]}"

keep() { if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$1" "$KEEP_LOGS/$2"; fi; }

# run CODE PKG_VERSION: prints "INSTALL_TIME LAYER JOB_TIME DEBS_SHA256"
run() {
	local code=$1 bin out=$WORK/out rc=0 log inst layer debs
	bin=$BIN_NEW
	[ "$code" = new ] || bin=$BIN_OLD
	"$bin" build --config "$WORK/$code.conf" --dist "$DIST" --parallel "$PARALLEL" "$2" >"$out" 2>&1 || rc=$?
	log=$(field Log "$out")
	if [ -z "$log" ] || [ ! -f "$log" ]; then cat "$out" >&2; die "$2 ($code): no log"; fi
	keep "$log" "$code-$2.build"
	if [ "$rc" != 0 ] || [ "$(field Status "$log")" != successful ]; then tail -40 "$log" >&2; die "$2 ($code): not successful"; fi
	inst=$(field Install-Time "$out")
	[ -n "$inst" ] || inst=$(field Install-Time "$log")
	case $(field Install-Layer "$log") in
	none) layer=none ;;
	*'(new)') layer=new ;;
	*'grown from '*)
		layer="grown:$(field Install-Layer "$log" | sed 's/.*grown from layer-[0-9]*-\([0-9a-f]\{6\}\).*/\1/')"
		if grep -q '^Step layer: ' "$log"; then layer=step+grown; fi ;;
	*) layer=hit ;;
	esac
	# The .debs, by name and checksum, then out of the home.
	debs=$(cd "$VOL/$code/home/build" && sha256sum -- *.deb | sort -k2 | sha256sum | cut -c1-12)
	rm -f "$VOL/$code/home/build/"*
	echo "$inst $layer $(field Job-Time "$log") $debs"
}

LOAD0=$(load)
rows=() old_inst=() new_inst=() same=0
for p in "${PKGS[@]}"; do
	[ -n "${VERSION[$p]:-}" ] || die "$p: no source package in the machine's apt sources"
	pv=${p}_${VERSION[$p]}
	say "$pv: $OLD"
	res=$(run old "$pv") || exit 1
	read -r oi ol oj od <<<"$res"
	say "$pv: ours ($OLD: Install-Time $oi s, $ol)"
	res=$(run new "$pv") || exit 1
	read -r ni nl nj nd <<<"$res"
	say "$pv: done (ours: Install-Time $ni s, $nl)"
	old_inst+=("$oi") new_inst+=("$ni")
	s=DIFFERENT
	if [ "$od" = "$nd" ]; then s=same; same=$((same + 1)); fi
	rows+=("$(printf '%-36s %8s %-10s %6s  %8s %-16s %6s  %s' "$pv" "$oi" "$ol" "$oj" "$ni" "$nl" "$nj" "$s")")
done

p90() { sort -n | awk '{ v[NR] = $1 } END { i = int(NR * 0.9 + 0.999); if (i < 1) i = 1; print v[i] }'; }
# disk CODE: MiB that deleting all of CODE's layers frees on the volume.
disk() {
	local before after l
	btrfs filesystem sync "$VOL"
	before=$(btrfs filesystem usage -b "$VOL" | sed -n 's/^ *Used: *//p' | head -1)
	for l in "$VOL/$1/machines/$MACHINE"/layer-*; do
		[ -d "$l" ] && btrfs subvolume delete "$l" >/dev/null
	done
	btrfs subvolume sync "$VOL" >/dev/null
	btrfs filesystem sync "$VOL"
	after=$(btrfs filesystem usage -b "$VOL" | sed -n 's/^ *Used: *//p' | head -1)
	echo $(((before - after) / 1048576))
}
nlayers() { find "$VOL/$1/machines/$MACHINE" -maxdepth 1 -name 'layer-*' -type d | wc -l; }
old_n=$(nlayers old) new_n=$(nlayers new)
old_disk=$(disk old) new_disk=$(disk new)

printf '\nFirst builds of %d real packages, %s (%s) beside ours, parallel=%s, revision %s\n' \
	"${#PKGS[@]}" "$OLD" "$(git -C "$TOP" log -1 --format=%cs "$OLDREV")" "$PARALLEL" "$(basename "$REV")"
printf '%-36s %8s %-10s %6s  %8s %-16s %6s  %s\n' package 'old inst' 'old layer' 'job' 'inst' 'layer' 'job' '.debs'
printf '%s\n' "${rows[@]}"
printf '%-36s %8s %-10s %6s  %8s\n' 'median Install-Time (s)' "$(printf '%s\n' "${old_inst[@]}" | median)" '' '' "$(printf '%s\n' "${new_inst[@]}" | median)"
printf '%-36s %8s %-10s %6s  %8s\n' 'p90 Install-Time (s)' "$(printf '%s\n' "${old_inst[@]}" | p90)" '' '' "$(printf '%s\n' "${new_inst[@]}" | p90)"
printf '%-36s %8s %-10s %6s  %8s\n' 'layers' "$old_n" '' '' "$new_n"
printf '%-36s %8s %-10s %6s  %8s\n' 'disk of all layers (MiB)' "$old_disk" '' '' "$new_disk"
printf '.debs the same, byte for byte: %d of %d\n' "$same" "${#PKGS[@]}"
printf '(inst: Install-Time, s; job: Job-Time, s; layer: new (installed on the bare revision), step+grown (first a step\n'
printf ' layer of what it shares with another, then grown from it), grown:KEY (grown from layer ...KEY), hit; load average before %s, after %s)\n' "$LOAD0" "$(load)"

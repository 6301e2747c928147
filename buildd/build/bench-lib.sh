# Shared by sbuild-bench.sh and real-bench.sh (sourced, not run): the lock,
# the temporary btrfs volume, machine revisions imported into it, and the
# cleanup. The sourcing script sets TOP and defines bench_clean_more (what
# it must undo before the volume goes), then calls bench_start.

DIST=bookworm
ARCH=$(dpkg --print-architecture)
MACHINE=$DIST-$ARCH
LOCK=/var/lock/buildd-realbuilds.lock

say() { printf '==> [%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

bench_clean() {
	local rc=$? m dev
	set +e
	bench_clean_more
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

# bench_start SIZE: as root, holds the real-build lock (on fd 9, so one
# flock covers the whole run and a second copy waits), makes WORK and the
# btrfs volume VOL of SIZE in it, removed at exit.
bench_start() {
	[ "$(id -u)" = 0 ] || die "run it as root: it mounts a btrfs volume, and the builds need root"
	exec 9>>"$LOCK"
	if ! flock -n 9; then
		say "waiting for $LOCK (another real-build run holds it)"
		flock 9
	fi
	WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/$(basename "$0" .sh).XXXXXX")
	VOL=$WORK/vol
	trap bench_clean EXIT
	trap 'exit 130' INT TERM HUP
	truncate -s "$1" "$WORK/vol.img"
	mkfs.btrfs -q "$WORK/vol.img"
	mkdir -p "$VOL"
	mount -o loop "$WORK/vol.img" "$VOL"
}

# bench_machine MACHINES_DIR: the machine in MACHINES_DIR, imported from the
# cached tarball of the tests or the demo (the newer), or made with buildd
# machine create; prints its current revision's path.
bench_machine() {
	local tarball=/var/cache/buildd-demo/$MACHINE.tar f
	for f in /var/cache/buildd-test/machine-"$MACHINE"-*.tar; do
		if [ -f "$f" ] && { [ ! -f "$tarball" ] || [ "$f" -nt "$tarball" ]; }; then tarball=$f; fi
	done
	mkdir -p "$1"
	if [ -f "$tarball" ]; then
		"$TOP/bin/buildd" machine --machines-dir "$1" import "$MACHINE" "$tarball" --dist "$DIST" --arch "$ARCH" >&2
	else
		say "no cached machine: debootstrap from the host's apt mirror (a minute or two)"
		"$TOP/bin/buildd" machine --machines-dir "$1" create "$MACHINE" --dist "$DIST" --arch "$ARCH" >&2
	fi
	readlink -f "$1/$MACHINE/current"
}

# bench_config FILE HOME MACHINES [LINE...]: a buildd config for the bench.
bench_config() {
	local file=$1 home=$2 machines=$3
	shift 3
	mkdir -p "$home"
	{
		printf 'home = "%s"\nmachines_dir = "%s"\nbuilder_name = "bench"\nnice_level = 0\n' "$home" "$machines"
		printf '%s\n' "$@"
		printf '\n[[dist]]\ndist_name = "%s"\nbuilt_architecture = "%s"\nmachine = "%s"\n' "$DIST" "$ARCH" "$MACHINE"
	} >"$file"
}

# bench_warm REV "MACHINES_DIR..." PKG...: sets VERSION[PKG] to the newest
# version of each source PKG in a throwaway snapshot of REV (after an apt
# update, in a chroot with its own mount and PID namespaces; apt fails when
# the mirror does not serve the source's files), and fills the
# package cache of the machine in each MACHINES_DIR (none: no download)
# with every build-dependency of the PKGs (apt-get build-dep -d there).
bench_warm() {
	local rev=$1 dirs=$2 warm=$VOL/warm d name ver
	shift 2
	btrfs subvolume snapshot "$rev" "$warm" >/dev/null
	cp /etc/resolv.conf "$warm/etc/resolv.conf"
	# shellcheck disable=SC2016 # expanded by the snapshot's shell
	unshare --mount --pid --fork --mount-proc="$warm/proc" chroot "$warm" sh -c '
		set -e
		download=$1
		shift
		apt-get -qq update >/dev/null
		for p; do
			apt-cache showsrc --only-source "$p" | sed -n "s/^Version: /$p /p" >>/versions
			(cd /tmp && apt-get -qq --download-only source "$p" >/dev/null)
			[ -z "$download" ] || apt-get -qq -d --arch-only build-dep "$p" >/dev/null
		done' sh "$dirs" "$@"
	for d in $dirs; do
		mkdir -p "$d/$MACHINE/.apt-archives"
		cp --reflink=always "$warm"/var/cache/apt/archives/*.deb "$d/$MACHINE/.apt-archives/"
	done
	while read -r name ver; do
		if [ -z "${VERSION[$name]:-}" ] || dpkg --compare-versions "$ver" gt "${VERSION[$name]}"; then VERSION[$name]=$ver; fi
	done <"$warm/versions"
	btrfs subvolume delete "$warm" >/dev/null
}

field() { sed -n "s/^$1: //p" "$2" | tail -1; }
now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

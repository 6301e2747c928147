# freshroot.sh, sourced by test-fresh.sh and dist/test-deb.sh: a fresh
# debootstrapped bookworm to run in, as root. The caller sets root (the
# tree) and work (its directory, which holds the logs and the lock).
#
#   freshroot_lock                  one run at a time ($work.lock)
#   freshroot_make VARIANT PKGS     debootstrap, the host's apt sources,
#                                   name resolution and certificate
#                                   authorities; cleaned up at exit
#   freshroot_mount                 root a mount point of its own, /dev,
#                                   /proc and /sys bound in
#   freshroot_run CMD...            CMD in the tree, with a clean environment

say() { printf '==> [%s] %s\n' "$(date +%T)" "$*"; }
die() { printf '%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it debootstraps and mounts)"

freshroot_lock() {
	mkdir -p "$work"
	exec 9>"$work.lock"
	flock -n 9 || die "another run holds $work.lock"
}

# unmount_below unmounts every mount at or below $1, deepest first.
unmount_below() {
	local m
	findmnt -rn -o TARGET | awk -v r="$1" '$0 == r || index($0, r "/") == 1' | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
}

freshroot_cleanup() {
	unmount_below "$root"
	if findmnt -rn -o TARGET | awk -v r="$root" 'index($0, r) == 1' | grep . >/dev/null; then
		echo "${0##*/}: mounts remain below $root; not removing it" >&2
		return
	fi
	if [ "${KEEP:-}" != 1 ]; then
		rm -rf --one-file-system "$root"
	fi
}

# host_mirror prints the host's bookworm mirror, from its apt sources
# (deb822 or one-line form).
host_mirror() {
	local m
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/{u=$2} /^Suites:/{for(i=2;i<=NF;i++) if($i=="bookworm") {print u; exit}}')
	[ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$m" ] || die "no bookworm mirror in the host's apt sources"
	echo "$m"
}

freshroot_make() {
	local variant=$1 pkgs=$2 mirror
	mirror=$(host_mirror)
	freshroot_cleanup
	trap freshroot_cleanup EXIT
	say "debootstrap bookworm ($variant + $pkgs) into $root"
	debootstrap --variant="$variant" --include="$pkgs" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		die "debootstrap failed: $(tail -5 "$work/debootstrap.log")"
	if cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null; then
		rm -f "$root/etc/apt/sources.list"
	fi
	# The host's name resolution, as the image has it (dupload asks
	# hostname -f who it is).
	cp /etc/resolv.conf /etc/hosts /etc/hostname "$root/etc/"
	# The image's own certificate authorities (its network goes through them).
	if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1 && [ -x "$root/usr/sbin/update-ca-certificates" ]; then
		cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
		chroot "$root" update-ca-certificates >/dev/null
	fi
}

# The fresh root is a mount point, as a host's / is (the build sandbox
# remounts / private).
freshroot_mount() {
	local m
	mount --bind "$root" "$root"
	mount --make-private "$root"
	for m in dev proc sys; do
		mount --rbind "/$m" "$root/$m"
		mount --make-rslave "$root/$m"
	done
}

freshroot_run() {
	chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

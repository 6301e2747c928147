#!/usr/bin/env bash
# The buildd demo: the whole loop on this machine, as root.
#
#   demo.sh          run it (idempotent; a second run is quick)
#   demo.sh clean    remove everything it made: mounts and loop devices too
#
# It makes a loop-mounted btrfs volume with one build machine, a local
# reprepro archive holding four small source packages, a wanna-build queue
# merged from it; runs buildd until the queue is empty (two builds at a
# time); answers the log mails as an admin would, signed through
# buildd-reply.el in emacs --batch, and feeds the answers to buildd-mail;
# uploads with buildd-uploader into the archive and merges again so the
# uploads show as Installed. Everything lives under $DEMO_DIR.
#
# It runs the programs of this checkout (bin/, built by make), or, with
# BIN=/usr/bin, the installed ones (make test-deb: the Debian packages,
# whose buildd-reply.el is then the installed elpa-buildd-reply's).
set -euo pipefail

DEMO_DIR=${DEMO_DIR:-/var/tmp/buildd-demo}
CACHE_DIR=${CACHE_DIR:-/var/cache/buildd-demo}
DIST=bookworm
ARCH=$(dpkg --print-architecture)
MACHINE=$DIST-$ARCH
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$TOP/bin}
# Where Emacs finds buildd-reply.el: this checkout's, or the installed
# elpa-buildd-reply (package.el activates Debian's packages from
# site-lisp, which -Q would leave out).
if [ "$BIN" = "$TOP/bin" ]; then ELISP=(-Q -L "$TOP/elisp"); else ELISP=(-q -f package-activate-all); fi
HOME_DIR=$DEMO_DIR/home
ARCHIVE=$DEMO_DIR/archive
CONF=$DEMO_DIR/buildd.conf
GNUPGHOME=$DEMO_DIR/gnupg
export GNUPGHOME

step() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

clean() {
	step "Removing the demo in $DEMO_DIR"
	if mountpoint -q "$DEMO_DIR/machines" 2>/dev/null; then
		local dev
		dev=$(findmnt -n -o SOURCE "$DEMO_DIR/machines")
		umount "$DEMO_DIR/machines"
		info "unmounted $DEMO_DIR/machines"
		case $dev in /dev/loop*) losetup -d "$dev" 2>/dev/null || true ;; esac
	fi
	for dev in $(losetup -j "$DEMO_DIR/machines.img" -O NAME -n 2>/dev/null); do
		losetup -d "$dev" && info "detached $dev"
	done
	gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true
	rm -rf "$DEMO_DIR"
	info "removed $DEMO_DIR"
	info "the machine cache $CACHE_DIR is kept for the next demo (rm -r it to debootstrap again)"
}

preflight() {
	[ "$(id -u)" = 0 ] || die "run the demo as root: it mounts a btrfs volume and builds in namespaces"
	if [ "$BIN" != "$TOP/bin" ]; then
		step "The installed programs in $BIN"
		for p in buildd buildd-mail buildd-uploader buildd-watcher wanna-build; do
			[ -x "$BIN/$p" ] || die "no $BIN/$p"
		done
		return
	fi
	step "Installing what the demo needs (Debian packages, the five programs)"
	make -s -C "$TOP" deps all
}

volume() {
	step "btrfs volume for build machines: $DEMO_DIR/machines"
	mkdir -p "$DEMO_DIR/machines"
	if mountpoint -q "$DEMO_DIR/machines"; then
		info "already mounted"
		return
	fi
	if [ ! -f "$DEMO_DIR/machines.img" ]; then
		truncate -s 8G "$DEMO_DIR/machines.img"
		mkfs.btrfs -q "$DEMO_DIR/machines.img"
	fi
	mount -o loop "$DEMO_DIR/machines.img" "$DEMO_DIR/machines"
	info "mounted $(findmnt -n -o SOURCE "$DEMO_DIR/machines") on $DEMO_DIR/machines"
}

machine() {
	step "Build machine $MACHINE"
	if "$BIN/buildd" machine --machines-dir "$DEMO_DIR/machines" list 2>/dev/null | grep "^$MACHINE\b" >/dev/null; then
		info "already there"
		return
	fi
	local tarball=$CACHE_DIR/$MACHINE.tar
	if [ -f "$tarball" ]; then
		info "importing the cached machine $tarball"
		"$BIN/buildd" machine --machines-dir "$DEMO_DIR/machines" import "$MACHINE" "$tarball" --dist "$DIST" --arch "$ARCH"
		return
	fi
	info "debootstrap --variant=buildd from the host's apt mirror (about a minute, once; log: $DEMO_DIR/machine-create.log)"
	"$BIN/buildd" machine --machines-dir "$DEMO_DIR/machines" create "$MACHINE" --dist "$DIST" --arch "$ARCH" \
		>"$DEMO_DIR/machine-create.log" 2>&1 || die "machine create failed: $(tail -5 "$DEMO_DIR/machine-create.log")"
	mkdir -p "$CACHE_DIR"
	tar -C "$DEMO_DIR/machines/$MACHINE/current/" --numeric-owner --xattrs -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	info "cached as $tarball"
}

archive() {
	step "Local archive (reprepro) with the demo's source packages: $ARCHIVE"
	mkdir -p "$ARCHIVE/conf" "$ARCHIVE/incoming" "$ARCHIVE/tmp" "$DEMO_DIR/src"
	cat >"$ARCHIVE/conf/distributions" <<-EOF
		Codename: $DIST
		Architectures: $ARCH source
		Components: main
		Description: buildd demo archive
	EOF
	cat >"$ARCHIVE/conf/incoming" <<-EOF
		Name: demo
		IncomingDir: incoming
		TempDir: tmp
		Allow: $DIST
		Cleanup: on_deny on_error
	EOF
	for pkg in "$TOP"/buildd/demo/packages/*/; do
		local name
		name=$(basename "$pkg")
		if reprepro -b "$ARCHIVE" --list-format '${package}\n' listfilter "$DIST" "Package (== $name)" | grep . >/dev/null; then
			info "$name: already in the archive"
			continue
		fi
		rm -rf "${DEMO_DIR:?}/src/$name"
		cp -r "$pkg" "$DEMO_DIR/src/$name"
		(cd "$DEMO_DIR/src" && dpkg-source -q -b "$name" >/dev/null)
		reprepro -b "$ARCHIVE" -s includedsc "$DIST" "$DEMO_DIR"/src/"${name}"_*.dsc
		info "$name: added"
	done
}

config() {
	step "Admin key and buildd.conf"
	mkdir -p "$HOME_DIR" "$GNUPGHOME"
	chmod 700 "$GNUPGHOME"
	if ! gpg --batch --list-secret-keys admin@demo.example.org >/dev/null 2>&1; then
		gpg --batch --quiet --passphrase '' --quick-gen-key "Demo Admin <admin@demo.example.org>" ed25519 sign never
		info "made the demo admin key"
	fi
	gpg --batch --armor --export admin@demo.example.org >"$DEMO_DIR/admins.asc"
	cat >"$CONF" <<-EOF
		# buildd.conf of the demo: every program reads it (BUILDD_CONF).
		home = "$HOME_DIR"
		admin_mail = "admin@demo.example.org"
		mail_from = "buildd@demo.example.org"
		builder_name = "demo-buildd"
		machines_dir = "$DEMO_DIR/machines"
		wanna_build_db = "$HOME_DIR/wanna-build.db"
		admin_keyring = "$DEMO_DIR/admins.asc"
		outbox = "$HOME_DIR/outbox"
		max_build = 2
		idle_sleep_time = 5
		should_build_msgs = false
		upload_tool = "dput"

		[[dist]]
		dist_name = "$DIST"
		built_architecture = "$ARCH"
		machine = "$MACHINE"
		apt_sources = [
		  "deb [trusted=yes] file:$ARCHIVE $DIST main",
		  "deb-src [trusted=yes] file:$ARCHIVE $DIST main",
		]

		[[upload_queue]]
		dupload_local_queue_dir = "upload"
		dupload_archive_name = "demo"
	EOF
	mkdir -p "$HOME_DIR"
	cat >"$HOME_DIR/.dput.cf" <<-EOF
		[demo]
		method = local
		incoming = $ARCHIVE/incoming
		allow_unsigned_uploads = 1
	EOF
	info "$CONF"
}

merge() {
	"$BIN/wanna-build" --merge-v3 -A "$ARCH" --dist="$DIST" \
		"$ARCHIVE/dists/$DIST/main/binary-$ARCH/Packages" . \
		"$ARCHIVE/dists/$DIST/main/source/Sources.gz" . \
		"$ARCHIVE/dists/$DIST/main/binary-$ARCH/Packages"
}

queue() {
	step "wanna-build: merging the archive's indexes into the queue"
	merge
	"$BIN/wanna-build" --dist="$DIST" --list=all | sed 's/^/    /'
}

build() {
	step "buildd: building until the queue is empty (max_build = 2, one btrfs snapshot per build)"
	local round=0 seen
	seen=$(wc -l <"$HOME_DIR/daemon.log" 2>/dev/null || echo 0)
	while "$BIN/wanna-build" --dist="$DIST" --list=needs-build | grep _ >/dev/null; do
		round=$((round + 1))
		[ $round -le 3 ] || die "the queue is not emptying; see $HOME_DIR/daemon.log"
		"$BIN/buildd" --once
	done
	[ $round -gt 0 ] || info "nothing needs building"
	tail -n +$((seen + 1)) "$HOME_DIR/daemon.log" | grep -E 'Starting build|finished \(' | sed 's/^[^:]*:[^:]*:[^:]*: /    /' || true
}

mails() {
	step "Log mails in the outbox ($HOME_DIR/outbox/new)"
	for m in "$HOME_DIR"/outbox/new/*; do
		[ -f "$m" ] || continue
		info "$(sed -n 's/^Subject: //p' "$m" | head -1)"
	done
}

answer() {
	step "The admin answers in Emacs (buildd-reply.el, signed with the demo key) and buildd-mail acts"
	mkdir -p "$DEMO_DIR/answers"
	for m in "$HOME_DIR"/outbox/new/*; do
		[ -f "$m" ] || continue
		local subject pv cmd out reason=""
		subject=$(sed -n 's/^Subject: //p' "$m" | head -1)
		case $subject in Re:*) continue ;; esac # buildd-mail's own error replies
		pv=$(sed -n 's/^.* build of \([^ ]*\) .*/\1/p' <<<"$subject")
		[ -n "$pv" ] || continue
		out=$DEMO_DIR/answers/$(basename "$m")
		[ -f "$out" ] && continue
		case $subject in
		*successful*) cmd=ok ;;
		*) if grep -q 'Unmet build dependencies' "$m"; then cmd=dep-wait; else cmd=fail; reason="Does not compile: missing semicolon in hello.c."; fi ;;
		esac
		emacs --batch "${ELISP[@]}" -l buildd-reply -l "$TOP/buildd/demo/answer.el" \
			--eval "(buildd-demo-answer \"$m\" \"$cmd\" \"$out\" \"$reason\")" 2>"$out.log" ||
			die "emacs failed to answer $m: $(tail -3 "$out.log")"
		"$BIN/buildd-mail" <"$out"
		info "$pv: answered '$cmd'"
	done
}

upload() {
	step "buildd-uploader: dput into the archive's incoming; reprepro processincoming; merge"
	HOME=$HOME_DIR "$BIN/buildd-uploader"
	for u in "$HOME_DIR"/upload/*.upload; do
		[ -f "$u" ] && info "uploaded $(basename "${u%.upload}").changes"
	done
	reprepro -b "$ARCHIVE" -s processincoming demo
	info "archive now holds: $(reprepro -b "$ARCHIVE" -T deb --list-format '${package}_${version} ' list "$DIST")"
	merge
}

report() {
	step "Result"
	printf '    %-24s %-12s %-9s %s\n' PACKAGE STATE JOB-TIME LOG
	local line pkg state log bt
	while read -r line; do
		pkg=${line%%_*}
		[ -n "$pkg" ] || continue
		state=$("$BIN/wanna-build" --dist="$DIST" --info "$pkg" | sed -n 's/^ *State *: //p')
		log=$(ls -t "$HOME_DIR"/logs/"${pkg}"_* 2>/dev/null | head -1)
		bt=$([ -n "$log" ] && sed -n 's/^Job-Time: //p' "$log" | tail -1)
		printf '    %-24s %-12s %-9s %s\n' "$pkg" "$state" "${bt:--}${bt:+ s}" "${log:--}"
	done < <("$BIN/wanna-build" --dist="$DIST" --list=all | sed -n 's|^[^/]*/\([^ :]*\).*|\1|p')
	cat <<-EOF

	    Where everything lives:
	      config          $CONF
	      home            $HOME_DIR   (build/ logs/ upload/ mqueue/ daemon.log)
	      log mails       $HOME_DIR/outbox/new
	      signed answers  $DEMO_DIR/answers
	      queue           $HOME_DIR/wanna-build.db   (BUILDD_CONF=$CONF $BIN/wanna-build --list=all)
	      machines        $DEMO_DIR/machines         ($BIN/buildd machine --config $CONF list)
	      archive         $ARCHIVE
	    Remove it all with: make demo-clean
	EOF
}

case ${1:-run} in
clean) clean ;;
run)
	preflight
	volume
	machine
	archive
	config
	export BUILDD_CONF=$CONF
	queue
	build
	mails
	answer
	upload
	report
	;;
*) die "usage: demo.sh [run|clean]" ;;
esac

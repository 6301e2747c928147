#!/usr/bin/env bash
# make-classic.sh: record what the classic wanna-build's --merge-v3
# registers, in an empty database, for the real bookworm indexes, as the
# oracle of TestMergeParityWithClassic.
#
#   make-classic.sh CLASSIC [DATA]
#
# CLASSIC is a checkout of the classic wanna-build (git clone of the
# wanna-build repository: lib/WB/QD.pm, bin/wanna-build); DATA is the
# directory holding debian-bookworm-main/ (default ../shared/data next to
# this repository). The Packages-arch-specific beside this script is merged
# too. Needs perl and libdpkg-perl (dpkg-dev). Writes
# classic-ARCH.tsv.xz beside this script for amd64 and arm64; the first
# lines (# ...) name the classic commit and the inputs' SHA-256, which the
# test checks against the data it merges.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: make-classic.sh CLASSIC [DATA]" >&2; exit 2; }
classic=$(cd "$1" && pwd)
data=${2:-$here/../../../../../shared/data}/debian-bookworm-main
commit=$(git -C "$classic" rev-parse HEAD 2>/dev/null || echo unknown)
pas=$here/Packages-arch-specific

for arch in amd64 arm64; do
	out=$here/classic-$arch.tsv.xz
	{
		echo "# classic wanna-build $commit: WB::QD::readsourcebins + parse_all_v3, empty database"
		echo "# arch $arch"
		{
			(cd "$data" && sha256sum Sources.xz "Packages-$arch.xz")
			(cd "$here" && sha256sum Packages-arch-specific)
		} | sed 's/^/# sha256 /'
		TMPDIR=${TMPDIR:-/tmp} perl "$here/classic-merge.pl" "$classic" "$arch" "$pas" \
			"$data/Sources.xz" "$data/Packages-$arch.xz"
	} | xz -9 >"$out.tmp"
	mv "$out.tmp" "$out"
	echo "wrote $out"
done

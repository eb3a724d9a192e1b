#!/bin/sh
# Prepare the offline Buildroot build of pbx_qemu_x86_64_debian_defconfig from the Debian
# archive alone (the only source these machines reach besides crates.io and the Rust dist):
#
#  - toolchain: Debian's gcc 12 behind a wrapper that points it at a glibc sysroot unpacked
#    from Debian's binary packages (libc6-dev, linux-libc-dev, ...), which Buildroot then takes
#    as a custom external toolchain ($OUT/debian/toolchain, $OUT/debian/sysroot);
#  - source trees: every package the configuration builds from source, from `apt-get source`
#    (Debian's patches applied), unpacked in $OUT/debian/src/<name>; board/qemu-x86_64-debian/
#    local.mk points Buildroot's <PKG>_OVERRIDE_SRCDIR at them (host-fakeroot excepted: the
#    archive serves no fakeroot source here, so Debian's binary package is used);
#  - kernel: Debian's linux-image-amd64 (board/scripts/fetch-debs.sh, as `make image` does),
#    linked as $OUT/debian/kernel for the board's post-build and post-image scripts.
#
# Downloads (.deb, .dsc and tarballs) are kept in $DL/pbx-debian and reused; the unpacked
# trees under $OUT/debian are remade when their download changes.
#
# usage: prepare.sh OUT DL
#   OUT        the Buildroot output directory (O=)
#   DL         the download directory (BR2_DL_DIR)
# Needs root the first time (apt-get update, a deb-src entry, apt-get install of the tools).
set -eu

out=${1:?usage: prepare.sh OUT DL}
dl=${2:?usage: prepare.sh OUT DL}
board=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$board/../.." && pwd)
die() { echo "prepare: $*" >&2; exit 1; }
say() { echo "prepare: $*" >&2; }
# latest FILE...: the last existing one of a sorted glob (empty when none)
latest() { last=""; for f in "$@"; do [ -e "$f" ] && last=$f; done; echo "$last"; }

[ "$(dpkg --print-architecture)" = amd64 ] || die "the Debian toolchain here is the native amd64 gcc: run on amd64"
mkdir -p "$out" "$dl"
out=$(realpath "$out"); dl=$(realpath "$dl")
cache="$dl/pbx-debian"
work="$out/debian"
mkdir -p "$cache/debs" "$cache/src" "$work/src"

# Build tools from the Debian archive: the compiler, dpkg-source, what Buildroot's
# dependency check asks for, kmod (install-modules.sh) and tzdata (post-build.sh).
GCC=x86_64-linux-gnu-gcc-12
tools="gcc-12 g++ dpkg-dev rsync bc cpio unzip file patch perl wget bzip2 kmod tzdata"
missing=""
for p in $tools; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || die "missing Debian packages:$missing (run as root to install them)"
	say "apt-get install$missing"
	apt-get update -qq
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi
command -v "$GCC" >/dev/null || die "$GCC not found"

# apt-get source needs deb-src entries: add them for the suites the host already uses.
if ! apt-get source --print-uris -qq busybox >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || die "no deb-src entries for apt-get source (run as root to add them)"
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>/etc/apt/sources.list.d/pbx-deb-src.sources
	elif [ -f /etc/apt/sources.list ]; then
		sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/pbx-deb-src.list
	else
		die "no Debian apt sources found to derive deb-src entries from"
	fi
	say "added deb-src entries; apt-get update"
	apt-get update -qq
	apt-get source --print-uris -qq busybox >/dev/null || die "apt-get source still fails after adding deb-src"
fi

# --- glibc sysroot and toolchain --------------------------------------------------------------
# The target C library and kernel headers, at the versions the host's gcc 12 was built against.
# libstdc++-12-dev: without a libstdc++.a in the sysroot, Buildroot would copy gcc's whole
# library directory (cc1, plugins: 120 MB) into staging as "support libraries".
sysroot_debs="libc6 libc6-dev linux-libc-dev libcrypt1 libcrypt-dev libgcc-s1 libgomp1 libstdc++-12-dev"
# deb PKG: the file name of PKG's amd64 .deb in $cache/debs, downloaded the first time
deb() {
	if [ -z "$(latest "$cache/debs/$1"_*_amd64.deb)" ]; then
		say "apt-get download $1"
		(cd "$cache/debs" && apt-get -q -o APT::Sandbox::User=root download "$1:amd64" >&2) ||
			die "apt-get download $1 failed"
	fi
	basename "$(latest "$cache/debs/$1"_*_amd64.deb)"
}
stamp=""
for p in $sysroot_debs; do stamp="$stamp $(deb "$p")"; done
if [ "$(cat "$work/sysroot.stamp" 2>/dev/null)" != "$stamp" ]; then
	say "unpacking the sysroot:$stamp"
	rm -rf "$work/sysroot"
	mkdir -p "$work/sysroot"
	for d in $stamp; do dpkg-deb -x "$cache/debs/$d" "$work/sysroot"; done
	# Only libraries and headers: Buildroot copies the sysroot to staging and looks for
	# libraries by name (etc/ld.so.conf.d matches its ld*.so.* and breaks the copy).
	rm -rf "$work/sysroot/etc" "$work/sysroot/usr/share" "$work/sysroot/usr/bin" \
		"$work/sysroot/usr/sbin" "$work/sysroot/sbin" "$work/sysroot/bin"
	echo "$stamp" >"$work/sysroot.stamp"
fi

# gcc and cpp are wrapped so that they use the sysroot (Buildroot's own wrapper adds
# --sysroot=$STAGING_DIR after ours, and the last one wins). A native gcc also searches
# /usr/lib/x86_64-linux-gnu, relative to its own prefix and outside any sysroot; -B puts the
# sysroot's library directories first, so `-print-file-name=libc.a` (how Buildroot finds the
# sysroot) and the link use the sysroot's glibc. binutils are used as they are.
tc="$work/toolchain/bin"
# (remade only when the sysroot changes: a running build may be using it)
if [ "$(cat "$work/toolchain.stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$work/toolchain"
	mkdir -p "$tc"
	for t in gcc cpp; do
		cat >"$tc/x86_64-linux-gnu-$t" <<EOF
#!/bin/sh
exec /usr/bin/x86_64-linux-gnu-$t-12 --sysroot=$work/sysroot \\
	-B$work/sysroot/usr/lib/x86_64-linux-gnu/ -B$work/sysroot/lib/x86_64-linux-gnu/ "\$@"
EOF
		chmod +x "$tc/x86_64-linux-gnu-$t"
	done
	for t in addr2line ar as c++filt elfedit gprof ld ld.bfd nm objcopy objdump ranlib readelf size \
		strings strip; do
		ln -s "/usr/bin/x86_64-linux-gnu-$t" "$tc/x86_64-linux-gnu-$t"
	done
	for t in gcc-ar gcc-nm gcc-ranlib; do
		ln -s "/usr/bin/x86_64-linux-gnu-$t-12" "$tc/x86_64-linux-gnu-$t"
	done
	echo "$stamp" >"$work/toolchain.stamp"
fi
"$tc/x86_64-linux-gnu-gcc" -print-file-name=libc.a | grep -q "^$work/sysroot/" ||
	die "the wrapped gcc does not find libc.a in $work/sysroot"

# --- source packages ----------------------------------------------------------------------------
# Debian source package for each Buildroot package built from source (see local.mk). Host tools
# too: Buildroot builds host-tar (the host's 1.34 is older than the 1.35 it requires),
# host-acl and host-attr (host-fakeroot depends on them), and host-patchelf for its RPATH fixing.
SRC_PKGS="busybox acl attr tar patchelf"
AS_RELEASED="acl attr tar"
for p in $SRC_PKGS; do
	dsc=$(latest "$cache/src/${p}"_*.dsc)
	if [ -z "$dsc" ]; then
		say "apt-get source $p"
		(cd "$cache/src" && apt-get -q -o APT::Sandbox::User=root source --download-only "$p" >&2) ||
			die "apt-get source $p failed"
		dsc=$(latest "$cache/src/${p}"_*.dsc)
	fi
	if [ "$(cat "$work/src/$p.stamp" 2>/dev/null)" != "$(basename "$dsc")" ]; then
		say "unpacking $(basename "$dsc")"
		rm -rf "$work/src/$p"
		# Debian's patches are applied to the packages that are not autotools-generated. In the
		# host tools' trees some touch configure.ac or Makefile.am, after which make wants to
		# rerun aclocal/automake (autoreconf: host-autoconf, -automake, -libtool, -m4), so
		# those are built from Debian's orig tarball, the upstream release, as it is.
		case " $AS_RELEASED " in
			*" $p "*) skip=--skip-patches ;;
			*) skip= ;;
		esac
		dpkg-source --no-check -x ${skip:+"$skip"} "$dsc" "$work/src/$p" >&2
		# OVERRIDE_SRCDIR skips Buildroot's patches: ours for these trees are applied here
		# (patches/patchelf: the option Buildroot's RPATH fixing calls).
		for pt in "$board/patches/$p"/*.patch; do
			[ -f "$pt" ] || continue
			patch -d "$work/src/$p" -p1 --forward --quiet <"$pt" >&2 || die "$pt does not apply to $p"
		done
		rm -f "$work/src/$p"_*.orig.tar.*
		basename "$dsc" >"$work/src/$p.stamp"
	fi
done

# host-fakeroot: the archive this machine reaches lists fakeroot's source but serves none of its
# tarballs (404 for bookworm's 1.31 and trixie's 1.37), so it is Debian's binary package,
# unpacked; local.mk installs it in place of a build.
fr="$(deb fakeroot) $(deb libfakeroot)"
if [ "$(cat "$work/fakeroot-bin.stamp" 2>/dev/null)" != "$fr" ]; then
	rm -rf "$work/fakeroot-bin"
	mkdir -p "$work/fakeroot-bin"
	for d in $fr; do dpkg-deb -x "$cache/debs/$d" "$work/fakeroot-bin"; done
	echo "$fr" >"$work/fakeroot-bin.stamp"
fi

# --- kernel -------------------------------------------------------------------------------------
"$top/board/scripts/fetch-debs.sh" x86_64 "$cache/kernel" >&2
ln -sfn "$cache/kernel/x86_64" "$work/kernel"

say "ready: $work (toolchain, sysroot, src/{$(echo "$SRC_PKGS" | tr ' ' ,)}, fakeroot-bin, kernel $(cat "$work/kernel/kernel.release"))"

#!/bin/sh
# Fetch and unpack the Debian packages that `make image` builds an initramfs from:
# the kernel (linux-image-*, resolved through the linux-image-<debarch> metapackage unless
# IMG_KERNEL_PKG names one) and busybox-static, both for the *target* architecture.
#
# usage: fetch-debs.sh ARCH DLDIR        ARCH: x86_64 | aarch64
# result: DLDIR/ARCH/kernel/ (unpacked deb), DLDIR/ARCH/busybox/ (unpacked deb),
#         DLDIR/ARCH/kernel.pkg (package name), DLDIR/ARCH/kernel.release (uname -r)
# Only `apt-get download` is used (the Debian archive configured on this host): no other source.
set -eu

arch=${1:?usage: fetch-debs.sh ARCH DLDIR}
dl=${2:?usage: fetch-debs.sh ARCH DLDIR}
case "$arch" in
	x86_64) debarch=amd64 ;;
	aarch64) debarch=arm64 ;;
	*) echo "fetch-debs: unsupported ARCH '$arch' (x86_64|aarch64)" >&2; exit 2 ;;
esac

die() { echo "fetch-debs: $*" >&2; exit 1; }

host_debarch=$(dpkg --print-architecture)
suffix=""
if [ "$debarch" != "$host_debarch" ]; then
	dpkg --print-foreign-architectures | grep -qx "$debarch" ||
		die "architecture $debarch is not enabled; run: dpkg --add-architecture $debarch && apt-get update"
	suffix=":$debarch"
fi

out="$dl/$arch"
mkdir -p "$out/debs"

kpkg=${IMG_KERNEL_PKG:-}
if [ -z "$kpkg" ]; then
	kpkg=$(apt-cache depends "linux-image-$debarch$suffix" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^: ]*\).*/\1/p' | head -n 1)
	[ -n "$kpkg" ] || die "cannot resolve linux-image-$debarch$suffix (apt-get update?)"
fi

# latest FILE...: the last existing one of a sorted glob (empty when none)
latest() { last=""; for f in "$@"; do [ -e "$f" ] && last=$f; done; echo "$last"; }

# download PKG: fetch PKG for the target arch into $out/debs unless already there
download() {
	if [ -z "$(latest "$out/debs/$1"_*_"$debarch".deb)" ]; then
		echo "fetch-debs: apt-get download $1$suffix" >&2
		(cd "$out/debs" && apt-get -q -o APT::Sandbox::User=root download "$1$suffix" >&2) ||
			die "apt-get download $1$suffix failed"
	fi
	latest "$out/debs/$1"_*_"$debarch".deb
}

unpack() { # unpack DEB DIR: (re)extract when the deb is newer than the stamp
	if [ ! -f "$2/.stamp" ] || [ -n "$(find "$1" -newer "$2/.stamp")" ]; then
		rm -rf "$2"; mkdir -p "$2"
		dpkg-deb -x "$1" "$2"
		touch "$2/.stamp"
	fi
}

if [ "$(cat "$out/kernel.pkg" 2>/dev/null)" != "$kpkg" ]; then rm -rf "$out/kernel"; fi
unpack "$(download "$kpkg")" "$out/kernel"
echo "$kpkg" > "$out/kernel.pkg"
basename "$(latest "$out/kernel/lib/modules"/*)" > "$out/kernel.release"
unpack "$(download busybox-static)" "$out/busybox"
[ -x "$out/busybox/bin/busybox" ] || die "busybox-static has no bin/busybox"
echo "fetch-debs: $arch: $kpkg ($(cat "$out/kernel.release")), $(basename "$(latest "$out"/debs/busybox-static_*)")"

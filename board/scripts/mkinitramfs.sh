#!/bin/sh
# Assemble the bootable test image: a Debian kernel plus an initramfs holding Debian's
# busybox-static, the static kpbxd/kpbx binaries, the kernel modules the Debian kernel needs
# for virtio disk/net and ext4, board/common/skeleton (what Buildroot's skeleton and BusyBox
# package would provide) and rootfs-overlay (the product's files, shared with Buildroot).
#
# usage: mkinitramfs.sh ARCH DLDIR OUTDIR KPBXD_BIN [KPBX_BIN]
#   ARCH x86_64|aarch64; DLDIR as filled by fetch-debs.sh; KPBX_BIN missing -> kpbx is a
#   symlink to kpbxd (multi-call layout).
# env: IMG_MODULES   modules to load at boot (dependencies are added; install-modules.sh)
#      IMG_CONSOLE   serial port for getty (default ttyS0 / ttyAMA0)
# result: OUTDIR/vmlinuz, OUTDIR/initrd.cpio.gz, OUTDIR/kernel.release, OUTDIR/rootfs/
set -eu

arch=${1:?usage}; dl=${2:?usage}; out=${3:?usage}; kpbxd=${4:?usage}; kpbx=${5:-}
top=$(cd "$(dirname "$0")/../.." && pwd)
case "$arch" in
	x86_64) console=${IMG_CONSOLE:-ttyS0} ;;
	aarch64) console=${IMG_CONSOLE:-ttyAMA0} ;;
	*) echo "mkinitramfs: unsupported ARCH $arch" >&2; exit 2 ;;
esac
die() { echo "mkinitramfs: $*" >&2; exit 1; }

# Absolute paths: the build below runs inside the new root.
[ -x "$kpbxd" ] || die "no daemon binary at $kpbxd"
kpbxd=$(realpath "$kpbxd")
if [ -n "$kpbx" ]; then
	[ -x "$kpbx" ] || die "no CLI binary at $kpbx"
	kpbx=$(realpath "$kpbx")
fi
mkdir -p "$out"
out=$(realpath "$out")
dl=$(realpath "$dl")
kdir="$dl/$arch/kernel"
krel=$(cat "$dl/$arch/kernel.release" 2>/dev/null) || die "run fetch-debs.sh $arch first"
command -v cpio >/dev/null || die "cpio missing (apt-get install cpio)"

root="$out/rootfs"
rm -rf "$root"
mkdir -p "$root"
cp -a "$top/board/common/skeleton/." "$root/"
cp -a "$top/rootfs-overlay/." "$root/"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin proc sys dev run tmp root var/lib mnt lib/modules
for d in if-pre-up.d if-up.d if-down.d if-post-down.d; do mkdir -p "etc/network/$d"; done
ln -sfn ../tmp var/log
ln -sfn ../run var/run
chmod 600 etc/shadow
chmod 1777 tmp

cp "$dl/$arch/busybox/bin/busybox" bin/busybox
install -m 0755 "$kpbxd" usr/bin/kpbxd
# The tz database (kpbx system set timezone=..., TZ rules in phone files); Buildroot images
# get it from BR2_TARGET_TZ_INFO. The right/ and posix/ copies are not needed.
[ -d /usr/share/zoneinfo ] || die "no /usr/share/zoneinfo on the build host (apt-get install tzdata)"
mkdir -p usr/share/zoneinfo
(cd /usr/share/zoneinfo && tar --exclude=./right --exclude=./posix -cf - .) | tar -xf - -C usr/share/zoneinfo
if [ -n "$kpbx" ]; then install -m 0755 "$kpbx" usr/bin/kpbx; else ln -sf kpbxd usr/bin/kpbx; fi

# The serial getty on this board's port (Buildroot does the same from post-build.sh).
"$top/board/scripts/set-getty.sh" . "$console" 115200

# Modules in load order (lib/modules/load.list, read by /init).
"$top/board/scripts/install-modules.sh" "$kdir" "$krel" .

find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n >"$out/initrd.cpio.gz"
cp "$kdir/boot/vmlinuz-$krel" "$out/vmlinuz"
echo "$krel" >"$out/kernel.release"
echo "mkinitramfs: $out/initrd.cpio.gz ($(wc -c <"$out/initrd.cpio.gz") bytes; kernel $krel;" \
	"modules: $(tr '\n' ' ' <lib/modules/load.list | sed 's|[^ ]*/||g; s|\.ko||g'))"

#!/bin/sh
# Post-build script of pbx_qemu_x86_64_debian_defconfig, after board/common/post-build.sh
# ($1 = TARGET_DIR; BASE_DIR in the environment). The root filesystem is an initramfs booted by
# Debian's kernel, the same arrangement as the `make image` test image:
#  - the kernel's modules for virtio disk/net and ext4, in load order (install-modules.sh);
#  - /init: board/common/skeleton/init, which loads them and hands over to BusyBox init;
#  - the tz database, from the build host's Debian tzdata as in `make image` (Buildroot's
#    BR2_TARGET_TZ_INFO would build it from upstream tarballs these machines cannot fetch).
set -eu
TARGET_DIR=$1
BOARD_DIR=$(cd "$(dirname "$0")/.." && pwd)
kernel="$BASE_DIR/debian/kernel"

krel=$(cat "$kernel/kernel.release") ||
	{ echo "post-build: no Debian kernel in $kernel: run board/qemu-x86_64-debian/prepare.sh" >&2; exit 1; }
rm -rf "$TARGET_DIR/lib/modules"
"$BOARD_DIR/scripts/install-modules.sh" "$kernel/kernel" "$krel" "$TARGET_DIR"
install -m 0755 "$BOARD_DIR/common/skeleton/init" "$TARGET_DIR/init"

[ -d /usr/share/zoneinfo ] ||
	{ echo "post-build: no /usr/share/zoneinfo on the build host (apt-get install tzdata)" >&2; exit 1; }
rm -rf "$TARGET_DIR/usr/share/zoneinfo"
mkdir -p "$TARGET_DIR/usr/share/zoneinfo"
(cd /usr/share/zoneinfo && tar --exclude=./right --exclude=./posix -cf - .) |
	tar -xf - -C "$TARGET_DIR/usr/share/zoneinfo"

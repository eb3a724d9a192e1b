#!/bin/sh
# Post-image script of pbx_qemu_x86_64_debian_defconfig ($1 = BINARIES_DIR; BASE_DIR in the
# environment): Debian's kernel next to the root filesystem, under the names the qemu driver
# (board/scripts/qemu-test.py, qemu-run.sh) expects of an image directory: vmlinuz and
# initrd.cpio.gz.
set -eu
BINARIES_DIR=$1
kernel="$BASE_DIR/debian/kernel"
krel=$(cat "$kernel/kernel.release")
cp "$kernel/kernel/boot/vmlinuz-$krel" "$BINARIES_DIR/vmlinuz"
echo "$krel" >"$BINARIES_DIR/kernel.release"
ln -sf rootfs.cpio.gz "$BINARIES_DIR/initrd.cpio.gz"

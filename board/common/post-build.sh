#!/bin/sh
# Buildroot post-build script shared by all pbx_* defconfigs. Runs after rootfs-overlay has been
# copied into $TARGET_DIR ($1 = TARGET_DIR; BR2_CONFIG in the environment).
set -eu
TARGET_DIR=$1
BOARD_DIR=$(cd "$(dirname "$0")/.." && pwd)

cfg() { sed -n "s/^$1=\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}\$/\\1/p" "$BR2_CONFIG"; }

# The overlay's inittab replaced the one BusyBox generated, GENERIC_SERIAL line included:
# redo that line for this board's getty settings.
port=$(cfg BR2_TARGET_GENERIC_GETTY_PORT)
baud=$(cfg BR2_TARGET_GENERIC_GETTY_BAUDRATE)
"$BOARD_DIR/scripts/set-getty.sh" "$TARGET_DIR" "${port:-console}" "${baud:-0}"

# Mount point of the persistent data disk (see /etc/init.d/S60kpbxd), hook directory.
mkdir -p "$TARGET_DIR/var/lib/kpbxd" "$TARGET_DIR/etc/kpbxd/hooks.d"

#!/bin/sh
# Board post-build (after board/common/post-build.sh): GRUB's config on the EFI partition.
set -eu
BOARD_DIR=$(dirname "$0")
install -D -m 0644 "$BOARD_DIR/grub.cfg" "$BINARIES_DIR/efi-part/EFI/BOOT/grub.cfg"

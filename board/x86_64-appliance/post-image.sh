#!/bin/sh
# Board post-image: assemble disk.img (GPT: EFI, root, data) with genimage.
# Buildroot runs post-image scripts from its top directory, hence support/scripts/genimage.sh.
set -eu
BOARD_DIR=$(dirname "$0")
support/scripts/genimage.sh -c "$BOARD_DIR/genimage.cfg"

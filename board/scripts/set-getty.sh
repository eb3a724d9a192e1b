#!/bin/sh
# Point the serial getty of rootfs-overlay's inittab (the line tagged "# GENERIC_SERIAL") at a
# board's console port. Used by post-build.sh (Buildroot) and mkinitramfs.sh (test image).
# usage: set-getty.sh ROOTDIR PORT [BAUD]      BAUD 0 = keep the kernel's console speed
set -eu
root=${1:?usage: set-getty.sh ROOTDIR PORT [BAUD]}; port=${2:?usage}; baud=${3:-0}
inittab="$root/etc/inittab"
sed -i "s|^[^#:]*::respawn:/sbin/getty .*# GENERIC_SERIAL\$|$port::respawn:/sbin/getty -L $port $baud vt100 # GENERIC_SERIAL|" "$inittab"
grep -q "^$port::respawn:/sbin/getty -L $port $baud " "$inittab" ||
	{ echo "set-getty: no '# GENERIC_SERIAL' getty line in $inittab" >&2; exit 1; }

#!/bin/sh
# Copy the Debian kernel's modules an image needs into a root filesystem, in load order, with
# their list in ROOT/lib/modules/load.list (read by board/common/skeleton/init at boot).
# Used by mkinitramfs.sh (`make image`) and by the Buildroot board qemu-x86_64-debian.
#
# usage: install-modules.sh KDIR KREL ROOT
#   KDIR  an unpacked linux-image-* package (fetch-debs.sh); KREL its `uname -r`
# env: IMG_MODULES  modules to load at boot (dependencies are added)
set -eu

kdir=${1:?usage: install-modules.sh KDIR KREL ROOT}
krel=${2:?usage}
root=${3:?usage}
modules=${IMG_MODULES:-virtio_pci virtio_blk virtio_net e1000 ext4}
die() { echo "install-modules: $*" >&2; exit 1; }
command -v depmod >/dev/null || die "depmod missing (apt-get install kmod)"

# modprobe resolves dependencies and softdeps from the unpacked deb.
[ -f "$kdir/lib/modules/$krel/modules.dep" ] || depmod -b "$kdir" "$krel"
mkdir -p "$root/lib/modules"
: >"$root/lib/modules/load.list"
for m in $modules; do
	modprobe -d "$kdir" -S "$krel" --show-depends "$m" ||
		die "module $m not found in $krel"
done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' | while read -r ko; do
	rel=${ko#"$kdir/lib/modules/$krel/"}
	mkdir -p "$root/lib/modules/$(dirname "$rel")"
	case "$ko" in
		*.xz) xz -dc "$ko" >"$root/lib/modules/${rel%.xz}"; rel=${rel%.xz} ;;
		*.zst) zstd -qdc "$ko" >"$root/lib/modules/${rel%.zst}"; rel=${rel%.zst} ;;
		*) cp "$ko" "$root/lib/modules/$rel" ;;
	esac
	echo "$rel" >>"$root/lib/modules/load.list"
done
[ -s "$root/lib/modules/load.list" ] || die "no modules resolved"

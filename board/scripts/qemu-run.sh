#!/bin/sh
# Boot the test image interactively: serial console on this terminal (Ctrl-a x quits qemu),
# log in as root. The data disk OUTDIR/data.img persists between runs (rm it to start fresh).
# Network: user-mode with restrict=on, host 127.0.0.1:${IMG_HTTP_PORT:-8080} -> guest :80.
# usage: qemu-run.sh ARCH IMAGE_DIR
set -eu
arch=${1:?usage: qemu-run.sh ARCH IMAGE_DIR}; dir=${2:?usage}
disk="$dir/data.img"
if [ ! -f "$disk" ]; then
	truncate -s 64M "$disk"
	mkfs.ext4 -q -F -L KPBXDATA "$disk"
fi
accel=tcg
if [ "$arch" = "$(uname -m)" ] && [ -w /dev/kvm ] && grep -Eqw 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
case "$arch" in
	x86_64) set -- qemu-system-x86_64 -accel "$accel"; console=ttyS0 ;;
	aarch64) set -- qemu-system-aarch64 -accel "$accel" -M virt -cpu cortex-a57; console=ttyAMA0 ;;
	*) echo "qemu-run: ARCH x86_64|aarch64" >&2; exit 2 ;;
esac
echo "qemu-run: $arch, accel $accel; Ctrl-a x to quit"
exec "$@" -m 256 -nographic -no-reboot \
	-kernel "$dir/vmlinuz" -initrd "$dir/initrd.cpio.gz" \
	-append "console=$console,115200 panic=-1 quiet" \
	-drive "if=none,id=data,format=raw,file=$disk" -device virtio-blk-pci,drive=data \
	-netdev "user,id=lan,restrict=on,hostfwd=tcp:127.0.0.1:${IMG_HTTP_PORT:-8080}-:80" \
	-device virtio-net-pci,netdev=lan

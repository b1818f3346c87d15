#!/bin/bash
# build-initramfs.sh - the kernel-device tier's stage-1 initramfs: busybox + the modules that mount
# the HOST root read-only over virtio-9p with a tmpfs overlay on top (stage1-init), then switch_root
# into it. The kernel itself is the test guest's (guest/build-guest.sh: the same Debian kernel,
# extracted to the ELF that boots through PVH), so both tiers share one kernel build.
#
# Usage:  build-initramfs.sh [KVER]      (default: newest /lib/modules/*-amd64)
# Output: <repo>/.cache/kernel-vm/KVER/initramfs.cpio (or $QDB_KVM_CACHE/KVER/...), rebuilt only
#         when an input changed. Prints KERNEL= and INITRD= lines on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KVER=${1:-${KVER:-$(ls -1 /lib/modules | grep -- '-amd64$' | sort -V | tail -1)}}
OUT=${QDB_KVM_CACHE:-$REPO/.cache/kernel-vm}/$KVER
die() { echo "build-initramfs: $*" >&2; exit 1; }
# shellcheck source=../../guest/copy-modules.sh
. "$REPO/guest/copy-modules.sh"
[ -d "/lib/modules/$KVER/kernel" ] || die "no /lib/modules/$KVER: apt-get install linux-image-$KVER"
ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is dynamically linked: apt-get install busybox-static"
KERNEL=$(KVER=$KVER bash "$REPO/guest/build-guest.sh" 2>/dev/null | sed -n 's/^KERNEL=//p')
[ -r "$KERNEL" ] || die "guest/build-guest.sh built no kernel for $KVER (run it to see why)"

STAMP=$( { cat "$0" "$HERE/stage1-init" "$REPO/guest/copy-modules.sh" | sha256sum; echo "$KVER"; stat -c '%s %Y' "/lib/modules/$KVER/modules.dep"; } | sha256sum | cut -c1-16)
if [ "$(cat "$OUT/.stamp" 2>/dev/null)" != "$STAMP" ]; then
  mkdir -p "$OUT"
  ROOT=$(mktemp -d); trap 'rm -rf "$ROOT"' EXIT
  mkdir -p "$ROOT"/{bin,proc,sys,dev,lower,rw,newroot,lib/modules}
  cp /bin/busybox "$ROOT/bin/busybox"
  for a in sh mount umount insmod mkdir cat switch_root sleep poweroff echo cut tr grep; do ln -s busybox "$ROOT/bin/$a"; done
  # the 9p root and the overlay, dependencies first (Debian builds them as modules)
  copy_modules "$KVER" "$ROOT" virtio_pci 9pnet_virtio 9p overlay
  cp "$HERE/stage1-init" "$ROOT/init"; chmod 0755 "$ROOT/init"
  (cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible) >"$OUT/initramfs.cpio.tmp"
  mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
  echo "$STAMP" >"$OUT/.stamp"
  echo "build-initramfs: $OUT/initramfs.cpio ($(wc -l <"$ROOT/modules.order") modules)" >&2
fi
echo "KERNEL=$KERNEL"
echo "INITRD=$OUT/initramfs.cpio"

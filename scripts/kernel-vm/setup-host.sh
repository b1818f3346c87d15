#!/bin/bash
# scripts/kernel-vm/setup-host.sh - what the kernel-device test tier (test/kernel/) needs on the host,
# idempotent; called by scripts/setup.sh. The tier boots the host's Debian kernel KVER in a TCG VM
# with the host root shared read-only (run-guest.sh), so everything the guest uses is installed HERE:
#   - Debian packages: headers for KVER, dkms + v4l2loopback-dkms, v4l-utils, evtest, udev, ...
#     (apt-get when root; otherwise prints the exact sudo line and exits 1)
#   - v4l2loopback built for KVER with DKMS: `dkms install` only compiles the module and copies it
#     to /lib/modules/KVER/updates/dkms (+ depmod). Nothing is loaded on the host (and this machine
#     class could not: the guest loads it).
#   - the stage-1 initramfs (build-initramfs.sh, cached)
# Usage: setup-host.sh [KVER]   (default: the test guest's kernel, the newest /lib/modules/*-amd64)
# Set QDB_SETUP_QUIET=1 to print only problems.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
say() { [ "${QDB_SETUP_QUIET:-0}" = 1 ] || echo "kernel-vm setup: $*" >&2; }
KVER=${1:-${KVER:-$(ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$' | sort -V | tail -1 || true)}}
[ -n "$KVER" ] || { echo "kernel-vm setup: no Debian amd64 kernel in /lib/modules: apt-get install linux-image-amd64" >&2; exit 1; }

# What the guest uses comes from this host (its root is the guest's): the kernel tier's packages.
PACKAGES=("linux-image-$KVER" "linux-headers-$KVER" dkms v4l2loopback-dkms v4l-utils evtest udev
  busybox-static kmod cpio xz-utils python3 dbus dbus-user-session systemd
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
source "$HERE/../ensure-packages.sh"
# headers first: v4l2loopback-dkms's postinst then builds for KVER straight away
ensure_packages "linux-headers-$KVER" || exit 1
ensure_packages "${PACKAGES[@]}" || exit 1

# v4l2loopback for the GUEST kernel (dkms only builds and copies; it loads nothing)
if ! modinfo -k "$KVER" v4l2loopback >/dev/null 2>&1; then
  V=$(dpkg-query -W -f='${Version}' v4l2loopback-dkms | sed 's/-[^-]*$//')
  if [ "$(id -u)" = 0 ]; then
    say "building v4l2loopback $V for $KVER with dkms"
    dkms install "v4l2loopback/$V" -k "$KVER" >&2
  else
    echo "kernel-vm setup: v4l2loopback is not built for $KVER. Build it with:" >&2
    echo "  sudo dkms install v4l2loopback/$V -k $KVER" >&2
    exit 1
  fi
fi
"$HERE/build-initramfs.sh" "$KVER" >/dev/null
say "ready for $KVER ($(modinfo -k "$KVER" -F filename v4l2loopback))"

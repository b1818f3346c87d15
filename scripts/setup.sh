#!/usr/bin/env bash
# scripts/setup.sh — everything `npm test`, `npm run demo` and `npm run bench` need, idempotent:
#   1. Debian packages (apt-get when root; otherwise prints the exact sudo line and exits 1)
#   2. npm dependencies (npm ci, only when package-lock.json changed)
#   3. the native addon, the TypeScript build and the test guest (each incremental)
#   4. QEMU 10.0 next to the system's 7.2, for the real-QEMU test matrix (scripts/fetch-qemu10.sh,
#      cached in .cache/qemu10; when it cannot be provided the reason goes to .cache/qemu10.unavailable
#      and the QEMU 10.0 tests fail with it)
# Set QDB_SETUP_QUIET=1 to print only problems.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { [ "${QDB_SETUP_QUIET:-0}" = 1 ] || echo "setup: $*" >&2; }

# Keep in sync with README "Requirements".
PACKAGES=(
  # build
  g++ make python3 pkg-config clang-format
  libpipewire-0.3-dev libpulse-dev libyuv-dev libevdev-dev libvirt-dev
  # QEMU with the D-Bus display/audio modules (+ the pa backend used as a benchmark baseline)
  qemu-system-x86 qemu-system-gui dbus
  # sound servers and tools used by tests and the demo
  pipewire pipewire-bin wireplumber pulseaudio pulseaudio-utils
  # pipewire-pulse.conf: the PulseAudio protocol in front of a test PipeWire (startPipeWire({pulse}),
  # the audio-e2e bench's QEMU -audiodev pa path)
  pipewire-pulse
  gstreamer1.0-tools gstreamer1.0-pipewire gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  # the test guest: Debian kernel + busybox initramfs with ALSA tools
  linux-image-amd64 busybox-static alsa-utils sox cpio kmod gzip
  # a real libvirtd for the libvirt tests (libvirt-daemon-system creates the qemu user and qemu.conf)
  libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu libvirt-daemon-system
  # systemd-analyze for the unit checks
  systemd
  # the Debian package and its tests (test/package/): build, lint, a clean root to install into
  debhelper dpkg-dev fakeroot lintian debootstrap dpkg-repack man-db
)

source scripts/ensure-packages.sh
ensure_packages "${PACKAGES[@]}" || exit 1

# The guest boots a Debian kernel: linux-image-amd64 must have left one with its modules.
if ! ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1; then
  echo "setup: no /boot/vmlinuz-*-amd64 kernel; reinstall it: sudo apt-get install --reinstall linux-image-amd64" >&2
  exit 1
fi

# npm dependencies: reinstall only when the lock file changed. `npm install` (not `npm ci`): this
# machine class writes lock files without registry addresses, and npm ci then rejects the lock for
# lacking other platforms' optional packages (rollup, esbuild); npm install honours the same lock.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.qdb-lock-hash
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  say "npm install (from package-lock.json)"
  npm install --no-audit --no-fund >&2
  node -e "require('usocket')" 2>/dev/null || {
    echo "setup: usocket (fd passing) did not build; see docs: node-gyp must be ^11 on Node 20 (package.json overrides)" >&2
    exit 1
  }
  echo "$lock_hash" >"$stamp"
fi

say "building native addon"
bash scripts/build-native.sh
say "building TypeScript"
node_modules/.bin/tsc -p tsconfig.build.json
say "building test guest"
bash guest/build-guest.sh >/dev/null
say "QEMU 10.0 for the test matrix"
mkdir -p .cache
if qemu10=$(bash scripts/fetch-qemu10.sh 2>.cache/qemu10.log); then
  rm -f .cache/qemu10.unavailable
  say "QEMU 10.0: $qemu10"
else
  tail -n 3 .cache/qemu10.log | tr '\n' ' ' >.cache/qemu10.unavailable
  echo "setup: QEMU 10.0 could not be provided (its tests will fail): $(cat .cache/qemu10.unavailable)" >&2
fi
# the kernel-device tier (test/kernel/): its packages, v4l2loopback built for the guest kernel with
# DKMS (nothing is loaded on this host), the stage-1 initramfs
say "preparing the kernel-device tier"
bash scripts/kernel-vm/setup-host.sh
say "ready"

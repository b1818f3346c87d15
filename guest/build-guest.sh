#!/bin/bash
# build-guest.sh - build the tiny test guest (Debian kernel + busybox initramfs) for the
# qemu-dbus-bridge integration tests. guest/README.md describes the scenarios and serial output.
#
# Needs (Debian 12): linux-image-amd64 busybox-static alsa-utils sox cpio kmod util-linux gcc libc6-dev (xz-utils: faster boots)
# Output: <cache>/<hash>/{kernel,initramfs.cpio}, where <hash> covers every input (this script,
#         guest/init, kernel version, busybox and alsa-utils versions). A second call with the same
#         inputs does nothing but print the paths. <cache> is $QDB_GUEST_CACHE or <repo>/.cache/guest;
#         <cache>/current is a symlink to the newest build.
# Prints:  KERNEL=<path>  INITRD=<path>  GUEST_DIR=<path>  (one per line, on stdout; all else on stderr)
#
# Usage: guest/build-guest.sh              (KVER defaults to the newest /lib/modules/*-amd64)
#        KVER=6.1.0-56-amd64 guest/build-guest.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${QDB_GUEST_CACHE:-$REPO/.cache/guest}
INIT_SRC=$HERE/init

die() { echo "build-guest: $*" >&2; exit 1; }
# shellcheck source=copy-modules.sh
. "$HERE/copy-modules.sh"
trap 'echo "build-guest: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
need() { # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package '$2' (apt-get install $2)"
}

# --- inputs -------------------------------------------------------------------
need /bin/busybox busybox-static
if ldd /bin/busybox >/dev/null 2>&1; then
  die "/bin/busybox is dynamically linked: install the Debian package 'busybox-static' (apt-get install busybox-static)"
fi
need aplay alsa-utils
need amixer alsa-utils
need sox sox
need cpio cpio
need modprobe kmod
need flock util-linux
need sha256sum coreutils
need gcc gcc
CURSOR_SRC=$(dirname "$INIT_SRC")/drm-cursor.c
[ -r "$CURSOR_SRC" ] || die "missing $CURSOR_SRC (it is part of the repository; restore it with git)"
FBSHOW_SRC=$(dirname "$INIT_SRC")/fb-show.c
[ -r "$FBSHOW_SRC" ] || die "missing $FBSHOW_SRC (it is part of the repository; restore it with git)"
BURSTS_SRC=$(dirname "$INIT_SRC")/tone-bursts.c
[ -r "$BURSTS_SRC" ] || die "missing $BURSTS_SRC (it is part of the repository; restore it with git)"
[ -r "$INIT_SRC" ] || die "missing $INIT_SRC (it is part of the repository; restore it with git)"

if [ -z "${KVER:-}" ]; then
  KVER=$(ls -1 /lib/modules 2>/dev/null | grep -- '-amd64$' | sort -V | tail -1 || true)
  [ -n "$KVER" ] || die "no Debian amd64 kernel in /lib/modules: install the Debian package 'linux-image-amd64' (apt-get install linux-image-amd64)"
fi
KIMG=/boot/vmlinuz-$KVER
[ -e "$KIMG" ] || die "kernel $KIMG missing: install the Debian package 'linux-image-$KVER' or 'linux-image-amd64'"
[ -r "$KIMG" ] || die "kernel $KIMG is not readable by $(id -un): run as root once, or 'sudo chmod 0644 $KIMG'"
[ -d "/lib/modules/$KVER/kernel" ] || die "no /lib/modules/$KVER: install the Debian package 'linux-image-$KVER'"

# (sed reads to the end: `head -1` would make the writer die of SIGPIPE, fatal under pipefail)
BB_VERSION=$(/bin/busybox 2>&1 | sed -n 1p)
ALSA_VERSION=$(aplay --version 2>&1 | sed -n 1p)
KSTAT=$(stat -c '%s %Y' "$KIMG")
HASH=$( { sha256sum "$0" "$INIT_SRC" "$CURSOR_SRC" "$FBSHOW_SRC" "$BURSTS_SRC" "$HERE/copy-modules.sh" | cut -d' ' -f1; echo "$KVER $KSTAT"; echo "$BB_VERSION"; echo "$ALSA_VERSION"; } \
  | sha256sum | cut -c1-16)
OUT=$CACHE/$HASH

report() {
  ln -sfn "$HASH" "$CACHE/current.tmp.$$" && mv -T "$CACHE/current.tmp.$$" "$CACHE/current"
  echo "KERNEL=$OUT/kernel"
  echo "INITRD=$OUT/initramfs.cpio"
  echo "GUEST_DIR=$OUT"
}

mkdir -p "$CACHE"
if [ -f "$OUT/.complete" ]; then report; exit 0; fi

# Several test processes may ask at once: one builds, the others wait and reuse its result.
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$OUT/.complete" ]; then report; exit 0; fi

T0=$(date +%s.%N)
STAGE=$(mktemp -d "$CACHE/.build-XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
chmod 0755 "$STAGE"
ROOT=$STAGE/rootfs
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,lib/modules,usr/share,tones}

# --- busybox (static) ----------------------------------------------------------
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do
  [ "$a" = busybox ] || ln -s busybox "$ROOT/bin/$a"
done
# the guest's /init needs these applets
for a in sh awk od md5sum hexdump dd head insmod poweroff killall sed cut wc cat sleep; do
  [ -e "$ROOT/bin/$a" ] || die "/bin/busybox lacks the '$a' applet: reinstall busybox-static (apt-get install --reinstall busybox-static)"
done

# --- ALSA userspace (dynamic: binaries + their shared libs + config) ------------
copy_with_libs() {
  local bin=$1
  cp -L "$bin" "$ROOT$bin"
  ldd "$bin" | awk '/=>/ {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
    [ -n "$lib" ] && [ -e "$lib" ] || continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -Ln "$lib" "$ROOT$lib"
  done
}
copy_with_libs /usr/bin/aplay
copy_with_libs /usr/bin/amixer
ln -s aplay "$ROOT/usr/bin/arecord" # aplay decides its role by argv[0]
mkdir -p "$ROOT/lib64"
[ -e "$ROOT/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$ROOT/lib64/"
cp -a /usr/share/alsa "$ROOT/usr/share/alsa"

# --- kernel modules, dependencies first, in load order ---------------------------
# virtio_pci + virtio_input + evdev : virtio keyboard / tablet / mouse -> /dev/input/event*
# snd-hda-codec-generic + snd-hda-intel : intel-hda + hda-duplex (QEMU's codec uses the generic parser)
# bochs : DRM driver for -vga std -> /dev/fb0 (not loaded by the `text` scenario, see init)
# button : ACPI power button -> "Power Button" input device; /init powers off when it is pressed
# virtio_gpu : DRM driver for -vga virtio -> /dev/fb0 (QEMU 9.2+ shares its 2D resources as memfds:
#   the Listener.Unix.Map path; without the device it binds nothing)
MODS="button virtio_pci virtio_input evdev snd-hda-codec-generic snd-hda-intel bochs virtio_gpu"
copy_modules "$KVER" "$ROOT" $MODS
grep -q 'bochs' "$ROOT/modules.order" || die "kernel $KVER has no bochs module: install 'linux-image-amd64'"

# --- tones: exactly one second of a sine (an integer number of periods), S16_LE stereo, raw --------
# The guest concatenates seconds and cuts to bridge.tone_ms, so any length is possible.
TONE_HZ="440 1000 2500"
TONE_RATES="22050 44100 48000"
for hz in $TONE_HZ; do
  for rate in $TONE_RATES; do
    sox -n -r "$rate" -c 2 -b 16 -e signed-integer -t raw "$ROOT/tones/tone-$hz-$rate.raw" synth 1.0 sine "$hz" vol 0.5
  done
done

# --- drm-cursor (static): the `cursor` scenario's hardware cursor -----------------
gcc -static -Os -s -o "$ROOT/bin/drm-cursor" "$CURSOR_SRC" \
  || die "cannot build $CURSOR_SRC statically: install the Debian packages 'gcc' and 'libc6-dev'"

# --- fb-show (static): the `heads` scenario shows a second head's framebuffer --------
gcc -static -Os -s -o "$ROOT/bin/fb-show" "$FBSHOW_SRC" \
  || die "cannot build $FBSHOW_SRC statically: install the Debian packages 'gcc' and 'libc6-dev'"

# --- tone-bursts (static): the `bursts` scenario's player (raw ALSA ioctls, no alsa-lib) ----
gcc -static -O2 -s -o "$ROOT/bin/tone-bursts" "$BURSTS_SRC" -lm \
  || die "cannot build $BURSTS_SRC statically: install the Debian packages 'gcc' and 'libc6-dev'"

# --- /init -----------------------------------------------------------------------
cp "$INIT_SRC" "$ROOT/init"
chmod 0755 "$ROOT/init"

# --- pack --------------------------------------------------------------------------
# Uncompressed: under TCG the guest's own gunzip of 4.5 MB costs about 0.5 s of every boot.
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible) >"$STAGE/initramfs.cpio"

# --- kernel: the uncompressed ELF when it has a PVH entry --------------------------------
# QEMU boots an ELF vmlinux through its PVH entry point, which skips the kernel's own XZ
# decompression: about 2 s less per boot under TCG (measured: MARK ready at 2.6-2.8 s instead of
# 5.6-6.6 s). The payload's place is in the bzImage header (boot protocol >= 2.08); the kernel
# build appends the uncompressed size as le32, which also checks the result.
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
extract_vmlinux() { # extract_vmlinux <bzImage> <out ELF>; non-zero if not possible
  local setup_sects payload_off payload_len off want magic
  grep -qx 'CONFIG_PVH=y' "/boot/config-$KVER" 2>/dev/null || return 1
  setup_sects=$(u8 "$1" $((0x1f1))) payload_off=$(u32 "$1" $((0x248))) payload_len=$(u32 "$1" $((0x24c)))
  off=$(((setup_sects + 1) * 512 + payload_off))
  magic=$(od -An -tx1 -j "$off" -N6 "$1" | tr -d ' ')
  want=$(u32 "$1" $((off + payload_len - 4)))
  case $magic in
    fd377a585a00) tail -c +$((off + 1)) "$1" | head -c "$payload_len" | xz -dc >"$2" 2>/dev/null || true ;;
    1f8b*) tail -c +$((off + 1)) "$1" | head -c "$payload_len" | gzip -dc >"$2" 2>/dev/null || true ;;
    *) return 1 ;;
  esac
  # xz stops at the appended size word with an error although the data is complete: check the size
  [ "$(stat -c %s "$2")" = "$want" ] && [ "$(od -An -tx1 -N4 "$2" | tr -d ' ')" = 7f454c46 ]
}
if command -v xz >/dev/null 2>&1 && extract_vmlinux "$KIMG" "$STAGE/kernel"; then
  KFORMAT=elf-pvh
else
  echo "build-guest: booting the compressed bzImage (no PVH ELF extracted: needs xz-utils and CONFIG_PVH=y); boots ~2 s slower" >&2
  cp "$KIMG" "$STAGE/kernel"
  KFORMAT=bzimage
fi
cp "$ROOT/modules.order" "$STAGE/modules.order"
{
  echo "kver=$KVER"
  echo "kernel_format=$KFORMAT"
  echo "busybox=$BB_VERSION"
  echo "alsa=$ALSA_VERSION"
  echo "modules=$(wc -l <"$ROOT/modules.order")"
  echo "tones_hz=$TONE_HZ"
  echo "tones_rates=$TONE_RATES"
} >"$STAGE/build-info.txt"
rm -rf "$ROOT"

rm -rf "$OUT"
mv -T "$STAGE" "$OUT"
trap - EXIT
touch "$OUT/.complete"
# Keep this build and the previous one (another checkout state may still want it); drop older ones.
n=0
for done_file in $(ls -1t "$CACHE"/*/.complete 2>/dev/null); do
  d=${done_file%/.complete}
  [ -L "$d" ] && continue # the `current` symlink
  n=$((n + 1))
  if [ $n -gt 2 ] && [ "$d" != "$OUT" ]; then rm -rf "$d"; fi
done
T1=$(date +%s.%N)
echo "build-guest: built $OUT in $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.2f", b-a}') s ($KFORMAT kernel, $(du -h "$OUT/initramfs.cpio" | cut -f1) initramfs, $(wc -l <"$OUT/modules.order") modules)" >&2
report

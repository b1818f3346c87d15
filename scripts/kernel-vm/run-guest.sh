#!/bin/bash
# run-guest.sh - run COMMAND as root inside a QEMU (TCG) guest that boots the host's Debian kernel
# with the host root shared read-only over virtio-9p (tmpfs overlay: writes stay in the guest), in
# the same working directory (same paths as on the host: the checkout, node_modules, the built
# addon), with the host's QDB_* and KDEV_* environment variables. This is how the kernel-device
# tier (test/kernel/) reaches /dev/uinput, evdev, v4l2loopback and systemd on a machine that has
# none of them and cannot load modules.
#
# Usage: run-guest.sh [options] -- COMMAND [ARGS...]
#   -k KVER      kernel version (default: newest /lib/modules/*-amd64)
#   -d DIR       run dir, shared read-write as /mnt/kdev (default: a new dir under $KDEV_RUNS or /tmp)
#   -m MEM       guest memory (default 1G)       -s N    vCPUs (default 2)
#   -t SECONDS   wall-clock limit for QEMU (default 600)
#   -u           start systemd-udevd in the guest (group permissions, by-id/by-path links, hot-plug)
#   -S           systemd as PID 1; COMMAND runs as the systemd.run= unit, the guest powers off after
#   -a ARGS      extra kernel command line
#   -q ARGS      extra QEMU arguments (word-split), e.g. "-device qemu-xhci -device usb-kbd"
# Output in DIR: serial.log (console), cmd.log (the command's output), exit-code, timing.txt
# Exit status: the command's in the guest; 124 on timeout; 125 if it never ran (boot failure).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KVER='' DIR='' MEM=1G SMP=2 TMO=600 UDEV=0 SYSTEMD=0 EXTRA='' QEXTRA=''
usage() { sed -n '2,22p' "$0" >&2; exit 2; }
while getopts k:d:m:s:t:uSa:q: o; do
  case $o in
    k) KVER=$OPTARG ;; d) DIR=$OPTARG ;; m) MEM=$OPTARG ;; s) SMP=$OPTARG ;; t) TMO=$OPTARG ;;
    u) UDEV=1 ;; S) SYSTEMD=1 ;; a) EXTRA=$OPTARG ;; q) QEXTRA=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || usage
KVER=${KVER:-$(ls -1 /lib/modules | grep -- '-amd64$' | sort -V | tail -1)}
BOOT=$("$HERE/build-initramfs.sh" "$KVER") || { echo "run-guest: no kernel/initramfs for $KVER (scripts/kernel-vm/setup-host.sh)" >&2; exit 125; }
KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$BOOT") INITRD=$(sed -n 's/^INITRD=//p' <<<"$BOOT")
if [ -z "$DIR" ]; then mkdir -p "${KDEV_RUNS:-/tmp}"; DIR=$(mktemp -d "${KDEV_RUNS:-/tmp}/qdb-kvm-XXXXXX"); fi
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
rm -f "$DIR"/{serial.log,cmd.log,exit-code,timing.txt}
cp "$HERE/guest/stage2.sh" "$HERE/guest/sd-init.sh" "$HERE/guest/sd-run.sh" "$DIR/"
# the command, run in the guest from the same directory; QDB_* and KDEV_* variables go along
{ for v in $(compgen -e | grep -E '^(KDEV|QDB)_' || true); do printf 'export %s=%q\n' "$v" "${!v}"; done
  echo "cd $(printf %q "$PWD") || exit 125"; printf '%q ' "$@"; echo; } >"$DIR/cmd.sh"
# the directory the command runs in, raw: stage2.sh keeps it visible when it lies under /tmp
printf '%s\n' "$PWD" >"$DIR/workdir"

APPEND="console=ttyS0 panic=-1 loglevel=4"
[ $UDEV = 1 ] && APPEND+=" kdev.udev=1"
if [ $SYSTEMD = 1 ]; then
  # systemd-run-generator: default.target := kernel-command-line.service running sd-run.sh
  APPEND+=" init=/mnt/kdev/sd-init.sh systemd.run=/mnt/kdev/sd-run.sh systemd.run_success_action=poweroff-force"
  APPEND+=" systemd.run_failure_action=poweroff-force systemd.show_status=1 systemd.firstboot=0"
else
  APPEND+=" init=/mnt/kdev/stage2.sh"
fi
APPEND+=" $EXTRA"

T0=$(date +%s.%N)
QPID=''
# SIGTERM/SIGINT (a test stopping us by PID) take QEMU down with us
trap '[ -n "$QPID" ] && kill "$QPID" 2>/dev/null; exit 143' TERM INT
set +e
# pdeathsig on both: if this script is SIGKILLed, `timeout` dies, and with it QEMU
# shellcheck disable=SC2086
setpriv --pdeathsig SIGKILL -- timeout -k 5 "$TMO" setpriv --pdeathsig SIGKILL -- \
  qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp "$SMP" -m "$MEM" \
  -nodefaults -no-user-config -no-reboot -display none -serial "file:$DIR/serial.log" \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device virtio-9p-pci,fsdev=hostroot,mount_tag=root \
  -fsdev local,id=kdev,path="$DIR",security_model=none,multidevs=remap \
  -device virtio-9p-pci,fsdev=kdev,mount_tag=kdev \
  -device virtio-rng-pci $QEXTRA </dev/null &
QPID=$!
wait "$QPID"; QRC=$?
set -e
T1=$(date +%s.%N)
WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}')
{ echo "qemu_wall_s=$WALL qemu_rc=$QRC"; grep -ah 'KDEV-MARK' "$DIR/serial.log" "$DIR/cmd.log" 2>/dev/null || true; } >"$DIR/timing.txt"
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then echo "run-guest: timed out after ${TMO}s ($DIR)" >&2; exit 124; fi
[ -s "$DIR/exit-code" ] || { echo "run-guest: the command never ran or never finished (QEMU exit $QRC; see $DIR/serial.log)" >&2; exit 125; }
echo "run-guest: $DIR: exit $(cat "$DIR/exit-code"), QEMU wall ${WALL}s" >&2
exit "$(cat "$DIR/exit-code")"

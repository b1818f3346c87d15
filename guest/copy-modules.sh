# copy-modules.sh - sourced by guest/build-guest.sh and scripts/kernel-vm/build-initramfs.sh, the
# two initramfs builders that boot the host's Debian kernel.
#
# copy_modules KVER ROOT MODULE... copies each module and everything it depends on from
# /lib/modules/KVER into ROOT/lib/modules, and lists them, dependencies first and each once, in
# ROOT/modules.order: the order in which the init scripts insmod them.
copy_modules() {
  local kver=$1 root=$2 m ko rel
  shift 2
  : >"$root/modules.order"
  for m in "$@"; do
    modprobe -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r ko; do
      rel=${ko#/lib/modules/$kver/}
      grep -qxF "$rel" "$root/modules.order" && continue
      mkdir -p "$root/lib/modules/$(dirname "$rel")"
      cp "$ko" "$root/lib/modules/$rel"
      echo "$rel" >>"$root/modules.order"
    done
  done
}

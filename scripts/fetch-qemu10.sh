#!/usr/bin/env bash
# scripts/fetch-qemu10.sh — QEMU 10.0 (Debian 12's bookworm-backports build) in a private prefix,
# next to the system's QEMU 7.2, for the second column of the real-QEMU test matrix.
#
#   bash scripts/fetch-qemu10.sh [PREFIX]   # default PREFIX: <repo>/.cache/qemu10 (gitignored)
#
# Prints the path of a qemu-system-x86_64 wrapper on stdout. Touches neither the system's QEMU nor
# the system's apt configuration: apt runs with its own sources list and package lists under the
# prefix, taking the archive address from the system's own bookworm entry. Idempotent and cached:
# a prefix whose wrapper answers --version is reused without network. Needs root for apt's
# download step; otherwise prints why and exits 1 (the tests then fail with that reason).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-$repo/.cache/qemu10}
wrapper=$prefix/bin/qemu-system-x86_64
if [ -x "$wrapper" ] && "$wrapper" --version >/dev/null 2>&1; then
  echo "$wrapper"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "fetch-qemu10: apt's download step needs root: sudo bash scripts/fetch-qemu10.sh $prefix" >&2
  exit 1
fi

source "$repo/scripts/ensure-packages.sh"
uri=$(debian_archive_uri bookworm)
[ -n "$uri" ] || { echo "fetch-qemu10: no bookworm entry in the apt sources (run apt-get update first)" >&2; exit 1; }
apt_dir=$prefix/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$prefix/debs" "$prefix/bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm-backports main" >"$apt_dir/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq >&2
# Debian's 10.0 packaging splits the modules: ui-dbus.so and audio-dbus.so are in
# qemu-system-modules-opengl (7.2 had them in qemu-system-gui).
pkgs=(qemu-system-x86 qemu-system-common qemu-system-data qemu-system-gui qemu-system-modules-opengl)
version=$(apt-cache "${opts[@]}" policy qemu-system-x86 |
  awk '/bpo12/ { for (i = 1; i <= NF; i++) if ($i ~ /bpo12/) { print $i; exit } }')
[ -n "$version" ] || { echo "fetch-qemu10: bookworm-backports has no qemu-system-x86" >&2; exit 1; }
rm -f "$prefix"/debs/*.deb
(cd "$prefix/debs" && for p in "${pkgs[@]}"; do apt-get "${opts[@]}" download -qq "$p=$version" >&2; done)
rm -rf "$prefix/root" && mkdir -p "$prefix/root"
for d in "$prefix"/debs/*.deb; do dpkg -x "$d" "$prefix/root"; done
moddir=$prefix/root/usr/lib/x86_64-linux-gnu/qemu
missing=$(for f in "$prefix/root/usr/bin/qemu-system-x86_64" "$moddir"/{ui-dbus,audio-dbus,audio-pipewire}.so; do
  ldd "$f" | awk '/not found/ { print $1 }'
done | sort -u)
if [ -n "$missing" ]; then
  echo "fetch-qemu10: libraries missing for QEMU 10: $(echo $missing) (apt-get install the packages that ship them)" >&2
  exit 1
fi
cat >"$wrapper.tmp" <<WRAP
#!/bin/sh
# QEMU $version from Debian 12 backports, unpacked in $prefix/root by scripts/fetch-qemu10.sh
export QEMU_MODULE_DIR=$moddir
exec $prefix/root/usr/bin/qemu-system-x86_64 -L $prefix/root/usr/share/qemu "\$@"
WRAP
chmod +x "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
"$wrapper" --version | head -1 >&2
echo "$wrapper"

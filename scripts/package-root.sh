#!/usr/bin/env bash
# scripts/package-root.sh — a clean Debian 12 root for the package tests (test/package/), made
# with debootstrap from Debian's archive and cached under /var/cache/qemu-dbus-bridge/package-root/<key>/
# ($QDB_PACKAGE_ROOT_CACHE overrides) where <key>
# hashes every input (this script, suite, mirror, package lists, the host's nodejs version).
# Prints the root's path. A first run downloads ~100 MB and takes a few minutes; later runs
# reuse the cache (and delete roots of older keys).
#
# What is in the root, and why:
#   - debootstrap --variant=minbase + systemd, dbus, dbus-user-session: the user's Debian 12 with
#     a systemd user manager, nothing of ours;
#   - nodejs from the host, repacked with dpkg-repack: Debian 12 ships Node 18 and the package
#     needs Node 20 (see debian/control), which a Debian 12 user gets from NodeSource — so does
#     the test root, from the NodeSource package installed on this machine;
#   - the runtime libraries' .debs downloaded (not installed) into /var/cache/apt/archives, so
#     that `apt-get install ./qemu-dbus-bridge_*.deb` resolves Depends from Debian's archive
#     but needs no network at test time;
#   - a user `user` (uid 1000) for `systemctl --user`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "package-root: $*" >&2; }

SUITE=bookworm
source scripts/ensure-packages.sh
MIRROR=$(debian_archive_uri "$SUITE")
[ -n "$MIRROR" ] || { echo "package-root: no $SUITE entry in this machine's apt sources (run apt-get update first)" >&2; exit 1; }
INCLUDE=systemd,dbus,dbus-user-session,libpam-systemd,ca-certificates
# Downloaded only: what the package's Depends pull in (dh_shlibdeps of the addon).
RUNTIME_LIBS=(libpipewire-0.3-0 libpulse0 libyuv0 libevdev2 libvirt0)

node_version=$(dpkg-query -W -f='${Version}' nodejs)
key=$(
  {
    sha256sum "$0" | cut -d' ' -f1
    echo "$SUITE $MIRROR $INCLUDE ${RUNTIME_LIBS[*]} nodejs=$node_version"
  } | sha256sum | cut -c1-16
)
# Outside the checkout: the root needs root anyway, and CI's fresh clones on the same machine reuse it.
base=${QDB_PACKAGE_ROOT_CACHE:-/var/cache/qemu-dbus-bridge/package-root}
root=$base/$key
if [ -f "$root/.qdb-ready" ]; then
  echo "$root"
  exit 0
fi

for tool in debootstrap dpkg-repack; do
  command -v "$tool" >/dev/null || {
    echo "package-root: $tool is missing; run: npm run setup" >&2
    exit 1
  }
done
[ "$(id -u)" = 0 ] || {
  echo "package-root: debootstrap and chroot need root (sudo npm run test:package)" >&2
  exit 1
}

start=$(date +%s)
mkdir -p "$base"
# Older keys are stale by definition; one root is ~400 MB.
for old in "$base"/*/; do
  [ "$old" = "$root/" ] || rm -rf --one-file-system "$old"
done
rm -rf --one-file-system "$root"
say "debootstrap $SUITE into $root (first run only; a few minutes)"
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" >"$base/debootstrap.log" 2>&1 || {
  tail -20 "$base/debootstrap.log" >&2
  echo "package-root: debootstrap failed (log: $base/debootstrap.log)" >&2
  exit 1
}

# nodejs 20 as a Debian 12 user has it: the NodeSource package, here repacked from the host.
repack=$(mktemp -d)
trap 'rm -rf "$repack"' EXIT
# The host npm may have been upgraded in place: dpkg-repack warns about every changed file.
(cd "$repack" && dpkg-repack --deb-option=-Znone nodejs >"$base/dpkg-repack.log" 2>&1) || {
  tail -5 "$base/dpkg-repack.log" >&2
  exit 1
}
cp "$repack"/nodejs_*.deb "$root/tmp/"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root apt-get update -qq
in_root apt-get install -y -qq --no-install-recommends /tmp/"$(basename "$repack"/nodejs_*.deb)" >/dev/null
in_root apt-get install -y -qq --no-install-recommends --download-only "${RUNTIME_LIBS[@]}" >/dev/null
rm -f "$root"/tmp/nodejs_*.deb
in_root useradd --create-home --uid 1000 --shell /bin/sh user
in_root node --version >/dev/null

touch "$root/.qdb-ready"
say "ready in $(($(date +%s) - start)) s"
echo "$root"

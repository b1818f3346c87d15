#!/usr/bin/env bash
# The Debian package in a clean Debian 12 root (scripts/package-root.sh), driven by
# test/package/deb.test.ts. Run inside `unshare --mount --pid --fork --kill-child`: every mount
# and every process (systemd --user, the bridge) goes away with this script, whatever happens.
#
#   env ROOT  the cached clean root (read-only: the lower layer of an overlay)
#   env WORK  an empty directory for the overlay's upper layer
#   env DEB   the .deb to install
#   env VMDIR a host directory with the VM's bus socket `bus` (QEMU runs on the host), mounted at
#             /run/user/1000/vm in the root
#   env VM    the VM's name
#
# Prints `## <step>` markers and what each step printed; after `## running` it waits for one line
# on stdin (the test checks the guest meanwhile), then disables the unit, removes the package and
# lists what is left behind.
set -uo pipefail
step() { echo "## $*"; }
die() {
  step "failed: $*"
  exit 1
}

if [ "${1:-}" != inner ]; then
  mkdir -p "$WORK/upper" "$WORK/work" "$WORK/merged" || die "mkdir"
  M=$WORK/merged
  mount --make-rprivate / || die "private mounts"
  mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$WORK/upper,workdir=$WORK/work" "$M" || die "overlay mount"
  mount -t proc proc "$M/proc" || die "proc"
  mount --rbind /sys "$M/sys" || die "sys"
  # A /dev of its own: the host's has more than a clean system needs.
  mount -t tmpfs -o mode=755 tmpfs "$M/dev" || die "dev"
  for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$n"
    mknod -m 666 "$M/dev/$name" c "$major" "$minor" || die "mknod $name"
  done
  mkdir -p "$M/dev/pts" "$M/dev/shm" && chmod 1777 "$M/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$M/dev/pts" && ln -s pts/ptmx "$M/dev/ptmx" || die "devpts"
  # PrivateIPC= mounts a fresh mqueue on /dev/mqueue, which a booted system has (dev-mqueue.mount).
  mkdir -p "$M/dev/mqueue" && mount -t mqueue mqueue "$M/dev/mqueue" || die "mqueue"
  mount -t tmpfs -o mode=755 tmpfs "$M/run" || die "run"
  mount -t tmpfs -o mode=1777 tmpfs "$M/tmp" || die "tmp"
  # What PID 1 would have made at boot: `systemd --user` refuses to run unless
  # /run/systemd/system exists, and sets up units' mount namespaces on /run/systemd/unit-root
  # with the inaccessible nodes (mount_setup() and make_inaccessible_nodes() in systemd).
  mkdir -p "$M/run/systemd/system" "$M/run/systemd/unit-root" "$M/run/systemd/inaccessible/dir" "$M/run/user/1000/vm" "$M/run/qdb/work"
  (cd "$M/run/systemd/inaccessible" && touch reg && mkfifo fifo && mknod chr c 0 0 && mknod blk b 0 0 && chmod 0000 reg dir fifo chr blk) ||
    die "inaccessible nodes"
  chown 1000:1000 "$M/run/user/1000" && chmod 700 "$M/run/user/1000"
  mount --bind "$VMDIR" "$M/run/user/1000/vm" || die "vm dir"
  mount --bind "$WORK" "$M/run/qdb/work" || die "work dir"
  cp "$0" "$M/run/qdb/deb-root.sh" && cp "$DEB" "$M/tmp/" || die "copy script and deb"
  # pivot_root, not chroot: the kernel refuses user namespaces (the unit's PrivateUsers=yes) to
  # a chrooted process, and a pivoted root is what a booted system has.
  cd "$M" && mkdir -p .oldroot && pivot_root . .oldroot || die "pivot_root"
  exec /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin WORK=/run/qdb/work DEB="/tmp/$(basename "$DEB")" VM="$VM" \
    /bin/bash /run/qdb/deb-root.sh inner
fi
cd / && umount -l /.oldroot && rmdir /.oldroot || die "detach the host's root"

in_root() { /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
as_user() {
  /usr/bin/setpriv --reuid 1000 --regid 1000 --init-groups /usr/bin/env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \
    HOME=/home/user USER=user LOGNAME=user XDG_RUNTIME_DIR=/run/user/1000 "$@"
}
# Everything on the root's own file system, with type, mode, owner and (for files) size: the
# "nothing left behind" comparison. dpkg's and apt's own state and logs are expected to change.
snapshot() {
  find / -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/log -o -path /var/cache/apt \
    -o -path /var/cache/debconf -o -path /var/cache/ldconfig -o -path /etc/ld.so.cache -o -path /home/user \) -prune \
    -o -type d -printf '%y %m %u %p\n' -o -printf '%y %m %u %s %p\n' | LC_ALL=C sort
}

step "before"
snapshot >"$WORK/before.txt" || die "snapshot"

step "install"
in_root apt-get install -y --no-install-recommends "$DEB" 2>&1 | grep -E '^(Setting up|E:|W:)'
in_root dpkg-query -W -f='${Status}\n' qemu-dbus-bridge
rm -f "$DEB"

step "files"
in_root dpkg -L qemu-dbus-bridge | grep -E '^/usr/(bin/|lib/systemd/user/|share/man/man1/|share/doc/qemu-dbus-bridge/config)|qemu_dbus_bridge(_[a-z]+)?\.node$'

step "version"
as_user qemu-dbus-bridge --version
echo "exit $?"

step "doctor"
as_user qemu-dbus-bridge doctor --vm "$VM" --address unix:path=/run/user/1000/vm/bus
echo "exit $?"

step "systemd"
# A cgroup of our own, delegated to the user, for the user manager (as logind would do).
cg=qdb-pkg-$VM-$RANDOM
echo "cgroup: $cg"
for h in systemd unified; do
  [ -d "/sys/fs/cgroup/$h" ] || continue
  mkdir "/sys/fs/cgroup/$h/$cg" && chown -R 1000:1000 "/sys/fs/cgroup/$h/$cg" && echo $$ >"/sys/fs/cgroup/$h/$cg/cgroup.procs"
done
# On exit: out of our cgroup, kill what is left in it (the user bus, the manager if it is still
# there), then remove it, so nothing stays on the host.
cleanup_cgroups() {
  local h pids
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h/$cg" ] && echo $$ >"/sys/fs/cgroup/$h/cgroup.procs" 2>/dev/null
  done
  for _ in $(seq 1 50); do
    pids=$(find /sys/fs/cgroup/systemd/"$cg" /sys/fs/cgroup/unified/"$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [ -z "$pids" ] && break
    kill -9 $pids 2>/dev/null
    sleep 0.1
  done
  for h in systemd unified; do
    [ -d "/sys/fs/cgroup/$h/$cg" ] && find "/sys/fs/cgroup/$h/$cg" -depth -type d -exec rmdir {} +
  done
}
trap cleanup_cgroups EXIT
# journald, as on a booted system: the user manager and the unit log there.
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald >"$WORK/journald.log" 2>&1 &
for _ in $(seq 1 50); do
  [ -S /run/systemd/journal/socket ] && break
  sleep 0.1
done
as_user /lib/systemd/systemd --user >"$WORK/systemd-user.log" 2>&1 &
sd=$!
for _ in $(seq 1 100); do
  state=$(as_user systemctl --user is-system-running 2>/dev/null)
  case "$state" in running | degraded) break ;; esac
  sleep 0.2
done
echo "user manager: $state"

as_user mkdir -p /home/user/.config/qemu-dbus-bridge
# The user's config for the VM: its bus; no sound server or webcam in this root, so those routes
# are off; keys come from a FIFO the test writes (replayed into the VM).
as_user tee "/home/user/.config/qemu-dbus-bridge/$VM.toml" >/dev/null <<EOF
[connection]
address = "unix:path=/run/user/1000/vm/bus"
[audio]
backend = "none"
[camera]
device = "none"
[input]
replay = ["/run/user/1000/vm/keys.fifo"]
grab_toggle = "none"
EOF
as_user systemctl --user enable --now "qemu-dbus-bridge@$VM.service" 2>&1
echo "exit $?"
for _ in $(seq 1 300); do
  active=$(as_user systemctl --user is-active "qemu-dbus-bridge@$VM.service")
  [ "$active" = activating ] || break
  sleep 0.2
done
as_user systemctl --user show "qemu-dbus-bridge@$VM.service" -p ActiveState -p SubState -p StatusText -p FragmentPath -p ExecMainStatus
as_user systemctl --user is-enabled "qemu-dbus-bridge@$VM.service"

step "running"
read -r _

step "disable"
as_user systemctl --user disable --now "qemu-dbus-bridge@$VM.service" 2>&1
echo "exit $?"
as_user systemctl --user show "qemu-dbus-bridge@$VM.service" -p ActiveState -p ExecMainStatus -p Result
kill "$sd"
wait "$sd"
step "unit output"
journalctl --no-pager -o short-monotonic | grep -a "qemu-dbus-bridge@$VM" | tail -30

step "remove"
in_root apt-get remove -y --autoremove qemu-dbus-bridge 2>&1 | grep -E '^(Removing|E:|W:)'
in_root dpkg-query -W -f='${db:Status-Abbrev}\n' qemu-dbus-bridge 2>&1

step "dependency conffiles"
# The libraries apt installed for us and autoremoved keep their conffiles until purged, as every
# Debian package does (dpkg state "rc"); ours has none. They are listed, and not counted below.
for p in $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "rc" { print $2 }'); do
  dpkg-query -W -f='${Conffiles}\n' "$p" | awk -v p="$p" 'NF { print $1 " (" p ")" }'
done | tee "$WORK/conffiles.txt"

step "leftovers"
snapshot >"$WORK/after.txt"
# Every added, removed or changed path, minus those conffiles and the directories holding them.
diff "$WORK/before.txt" "$WORK/after.txt" | grep '^[<>]' |
  awk 'NR == FNR { c[$1] = 1; d = $1; while (sub(/\/[^\/]*$/, "", d) && d != "") c[d] = 1; next } !($NF in c)' "$WORK/conffiles.txt" -
step "done"

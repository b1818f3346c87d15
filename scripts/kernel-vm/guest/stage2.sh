#!/bin/bash
# stage-2 init (PID 1 in the overlay root, script mode): API file systems, systemd-udevd when the
# kernel command line says kdev.udev=1, then /mnt/kdev/cmd.sh with its output in /mnt/kdev/cmd.log
# (the host's run dir) and on the console, its exit status in /mnt/kdev/exit-code; then power off.
mark() { echo "KDEV-MARK $1 $(cut -d' ' -f1 /proc/uptime)"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
# a fresh /tmp: the host's (seen through the overlay) is full of other processes' sockets and dirs.
# A checkout under /tmp (CI may clone there) stays visible at its path, writable in the overlay:
# its overlay view is moved aside, the fresh /tmp mounted, and the view moved back.
workdir=$(cat /mnt/kdev/workdir 2>/dev/null)
case "$workdir" in /tmp/?*) keep=1 ;; *) keep=0 ;; esac
if [ $keep = 1 ] && [ -d "$workdir" ]; then mkdir -p /run/kdev-workdir && mount --bind "$workdir" /run/kdev-workdir; fi
mount -t tmpfs -o mode=1777 tmpfs /tmp
if [ $keep = 1 ] && mountpoint -q /run/kdev-workdir; then mkdir -p "$workdir" && mount --move /run/kdev-workdir "$workdir"; fi
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
mark stage2
hostname kdev
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8
# the modules every group uses; the others load what they need (v4l2loopback, xhci...)
modprobe evdev; modprobe uinput
if grep -qw kdev.udev=1 /proc/cmdline; then
  /lib/systemd/systemd-udevd --daemon 2>/dev/null
  # coldplug only what the tests need (a full trigger costs ~12 s under TCG)
  udevadm trigger --action=add --subsystem-match=input --subsystem-match=video4linux --subsystem-match=misc
  udevadm settle -t 30
  mark udev-settled
fi
cd /mnt/kdev
mark cmd-start
bash /mnt/kdev/cmd.sh 2>&1 | tee /mnt/kdev/cmd.log
echo "${PIPESTATUS[0]}" >/mnt/kdev/exit-code
mark cmd-end
sync
busybox poweroff -f

#!/bin/bash
# systemd mode (run-guest.sh -S), PID 1 before systemd: adapt the (overlay) host root so that systemd boots as a
# VM rather than as the container the host root came from, then exec systemd as PID 1.
# Changes land in the tmpfs overlay only.
mount -t proc proc /proc
echo "KDEV-MARK sd-init $(cut -d" " -f1 /proc/uptime)"
# systemd 252 checks /.dockerenv (and /run/.containerenv) and would then treat the guest as a
# Docker container: kernel command line (systemd.run=) ignored, console-getty instead of serial.
rm -f /.dockerenv /run/.containerenv
# Debian's tmp.conf ("D /tmp") would empty /tmp at boot: over 9p that walks the host's whole
# /tmp (tens of seconds) and hides whatever the tests need from it.
mkdir -p /etc/tmpfiles.d && ln -sf /dev/null /etc/tmpfiles.d/tmp.conf
# the host's own /run must not leak into the guest's (systemd mounts a fresh tmpfs on /run
# only when it is not a mount point yet)
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
# services from the host image that a test guest never needs (no-ops when absent)
for u in postgresql.service libvirtd.service libvirt-guests.service virtlockd.socket virtlogd.socket \
  libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket e2scrub_reap.service apt-daily.timer \
  apt-daily-upgrade.timer man-db.timer logrotate.timer dpkg-db-backup.timer e2scrub_all.timer \
  systemd-tmpfiles-clean.timer systemd-timesyncd.service; do
  ln -sf /dev/null "/etc/systemd/system/$u"
done
# an empty machine-id lets systemd generate a transient one (the host's may be missing)
[ -s /etc/machine-id ] || : >/etc/machine-id
exec /lib/systemd/systemd

// Smoke test of the private-bus harness against the real dbus-daemon.
import * as fs from 'fs';
import { describe, expect, it } from 'vitest';
import { dbusSend, listNames, startDbusDaemon } from '../harness/dbus';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('harness: private dbus-daemon', () => {
  it('starts on a private socket, answers calls and is gone after stop()', async () => {
    const bus = await startDbusDaemon();
    try {
      expect(bus.address).toBe(`unix:path=${bus.dir}/bus`);
      expect(Buffer.byteLength(bus.address)).toBeLessThan(108);
      expect(fs.statSync(`${bus.dir}/bus`).isSocket()).toBe(true);
      expect(alive(bus.pid)).toBe(true);

      expect(await listNames(bus.address)).toContain('org.freedesktop.DBus');
      // A second, independent client sees the bus id the daemon reports.
      const id = await dbusSend(bus.address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetId']);
      expect(id).toMatch(/string "[0-9a-f]{32}"/);
    } finally {
      await bus.stop();
    }
    expect(alive(bus.pid)).toBe(false);
    await expect(listNames(bus.address)).rejects.toThrow(/dbus-send/);
  });

  it('gives every caller its own bus', async () => {
    const [a, b] = await Promise.all([startDbusDaemon(), startDbusDaemon()]);
    try {
      expect(a.address).not.toBe(b.address);
      expect(a.pid).not.toBe(b.pid);
      const idA = await dbusSend(a.address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetId']);
      const idB = await dbusSend(b.address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetId']);
      expect(idA).not.toBe(idB);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

// Liveness against the real QEMU 7.2: a client that hands QEMU a listener socket and then never
// speaks blocks QEMU's main loop (g_dbus_connection_new_sync waits for our auth bytes). GDBus's
// worker thread still answers Peer.Ping then, which is why liveness reads a property instead.
import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { socketpair } from '../../src/native';
import { QemuVm, RemoteObject, type QemuDbusError } from '../../src/qemu';

describe('QEMU 7.2 liveness', () => {
  let guest: Guest;
  let vm: QemuVm;

  beforeAll(async () => {
    guest = await startGuest({ scenario: 'idle' });
    vm = await QemuVm.connect({ busAddress: guest.busAddress, livenessIntervalMs: 200, livenessTimeoutMs: 1000 });
  });
  afterAll(async () => {
    await vm?.close();
    await guest?.stop();
  });

  it('a blocked QEMU main loop is reported EQEMU_UNRESPONSIVE although Ping still answers; it recovers', async () => {
    const errors: QemuDbusError[] = [];
    vm.on('error', (e) => errors.push(e));
    let responsive = false;
    vm.on('responsive', () => (responsive = true));

    // Register a display listener but never run the D-Bus handshake on our end.
    const [mine, theirs] = socketpair();
    await vm.console().proxy.registerListener(theirs);
    fs.closeSync(theirs);
    try {
      await waitFor('EQEMU_UNRESPONSIVE', 20_000, () => errors.some((e) => e.code === 'EQEMU_UNRESPONSIVE'));
      const root = new RemoteObject(vm.link, '/org/qemu/Display1');
      await root.call('org.freedesktop.DBus.Peer', 'Ping', '', [], { timeoutMs: 1000 }); // still answered
      expect(vm.attached).toBe(true);
    } finally {
      fs.closeSync(mine); // QEMU's handshake fails, its main loop runs again
    }
    await waitFor('responsive again', 20_000, () => responsive);
    expect((await vm.console().size()).width).toBeGreaterThan(0);
  });
});

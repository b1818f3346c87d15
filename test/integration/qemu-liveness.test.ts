// Liveness against the real QEMU 7.2: a client that hands QEMU a listener socket and then never
// speaks blocks QEMU's main loop (g_dbus_connection_new_sync waits for our auth bytes). GDBus's
// worker thread still answers Peer.Ping then, which is why liveness reads a property instead.
// While the guest plays, QEMU's audio Writes (queued by its main loop's audio timer) stand in for
// the read; a QEMU stopped by SIGSTOP sends none, and the reads come back and report it.
import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { RecordingAudioOutHandler } from '../fakes/recording-handlers';
import { startPipeWire } from '../harness/pipewire';
import { selectAudioBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import type { AudioOutHandler } from '../../src/qemu/handlers';
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

/**
 * Who takes QEMU's Writes: a handler in JavaScript (every Write passes the dispatcher, which times
 * it) or the real Speaker on PipeWire, whose intake thread takes them without JS (the connection's
 * counters add the intake's: peer/stats.ts withIntake). `writes()`: Writes taken so far.
 */
interface Taker {
  name: string;
  open(guestName: string): Promise<{ handler: AudioOutHandler; writes: () => number; close: () => Promise<void> }>;
}
const TAKERS: Taker[] = [
  {
    name: 'a JavaScript handler',
    open: async () => {
      const h = new RecordingAudioOutHandler();
      return { handler: h, writes: () => h.writes, close: async () => undefined };
    },
  },
  {
    name: "the Speaker's native intake (PipeWire)",
    open: async (guestName) => {
      const pw = await startPipeWire();
      const backend = (await selectAudioBackend('pipewire', { env: pw.env }))!;
      const speaker = new Speaker({ vmName: guestName, backend });
      return {
        handler: speaker,
        writes: () => speaker.stats().intakeWrites,
        close: async () => {
          await speaker.close();
          await pw.stop();
        },
      };
    },
  },
];

describe.each(TAKERS)('QEMU 7.2 liveness while the guest plays, Writes taken by $name', (taker) => {
  let guest: Guest;
  let vm: QemuVm;
  let taken: Awaited<ReturnType<Taker['open']>>;
  const audio = { get writes(): number { return taken.writes(); } };

  beforeAll(async () => {
    guest = await startGuest({ scenario: 'tone', params: { tone_ms: 600_000 } });
    vm = await QemuVm.connect({ busAddress: guest.busAddress, livenessIntervalMs: 500, livenessTimeoutMs: 1500 });
    taken = await taker.open(guest.name);
    await vm.addAudioOutListener(taken.handler);
  }, 180_000);
  afterAll(async () => {
    if (guest?.isRunning()) process.kill(guest.pid, 'SIGCONT');
    await vm?.close();
    await taken?.close();
    await guest?.stop();
  });

  it('no VM read while Writes arrive; SIGSTOP stops them, the reads resume and report EQEMU_UNRESPONSIVE; SIGCONT: responsive', async () => {
    await guest.waitForSerial(/MARK play-start/, 120_000);
    await waitFor('Writes arriving', 30_000, () => audio.writes > 10);
    const reads = vi.spyOn(RemoteObject.prototype, 'getProperty');
    const nameReads = (): number => reads.mock.calls.filter((c) => c[0] === 'org.qemu.Display1.VM' && c[1] === 'Name').length;
    try {
      const w0 = audio.writes;
      await new Promise((r) => setTimeout(r, 3000)); // six intervals
      const played = audio.writes - w0;
      console.log(`3 s of the guest playing: ${played} Writes, ${nameReads()} liveness reads`);
      expect(played).toBeGreaterThan(0);
      expect(nameReads()).toBe(0);

      const errors: QemuDbusError[] = [];
      vm.on('error', (e) => errors.push(e));
      let responsive = false;
      vm.on('responsive', () => (responsive = true));
      const stoppedAt = performance.now();
      process.kill(guest.pid, 'SIGSTOP');
      await waitFor('EQEMU_UNRESPONSIVE', 20_000, () => errors.some((e) => e.code === 'EQEMU_UNRESPONSIVE'));
      // Timing is logged, not asserted (a loaded 2-core host): interval + timeout after the last Write is the design.
      console.log(`SIGSTOP -> EQEMU_UNRESPONSIVE in ${(performance.now() - stoppedAt).toFixed(0)} ms (interval 500 + timeout 1500); ${nameReads()} reads`);
      expect(nameReads()).toBeGreaterThan(0);
      expect(errors.filter((e) => e.code === 'EQEMU_UNRESPONSIVE')).toHaveLength(1);
      expect(vm.attached).toBe(true);
      process.kill(guest.pid, 'SIGCONT');
      await waitFor('responsive again', 20_000, () => responsive);
      const w1 = audio.writes;
      await waitFor('Writes again', 20_000, () => audio.writes > w1);
    } finally {
      process.kill(guest.pid, 'SIGCONT');
      reads.mockRestore();
    }
  }, 240_000);
});

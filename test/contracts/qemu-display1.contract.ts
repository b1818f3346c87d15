// ONE contract suite for the QEMU Display1 boundary, run against the fake peer
// (test/unit/qemu-display1.fake.test.ts) and the real QEMU 7.2 guest
// (test/integration/qemu-display1.real.test.ts): whatever the fake claims, QEMU does too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { QemuVm } from '../../src/qemu';
import { RecordingAudioOutHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';

/** A running Display1 peer on a bus, whichever implementation. */
export interface Display1Peer {
  /** ends the peer the hard way (process killed / connection dropped) */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export type Display1PeerFactory = (o: { busAddress: string; name: string; uuid: string }) => Promise<Display1Peer>;

export function display1Contract(label: string, start: Display1PeerFactory, opts: { slow?: boolean } = {}): void {
  const wait = opts.slow ? 60_000 : 5_000;
  describe(`Display1 contract: ${label}`, () => {
    let bus: DbusDaemon;
    let peer: Display1Peer;
    let vm: QemuVm;
    const name = `contract-${process.pid}`;
    const uuid = '6b4f2e10-0000-4000-8000-0000000c0a7c';

    beforeAll(async () => {
      bus = await startDbusDaemon();
      peer = await start({ busAddress: bus.address, name, uuid });
      vm = await QemuVm.connect({ busAddress: bus.address, name, livenessIntervalMs: 500, reattach: false });
      vm.on('error', () => undefined);
    });
    afterAll(async () => {
      await vm?.close();
      await peer?.stop();
      await bus?.stop();
    });

    it('is found by name with its UUID, one graphic console with a size', async () => {
      expect(vm.info).toMatchObject({ name, uuid, consoleIds: [0] });
      const p = await vm.console().properties();
      expect(p.Type).toBe('Graphic');
      expect(p.Width).toBeGreaterThan(0);
      expect(p.Height).toBeGreaterThan(0);
      expect(vm.capabilities.audio).toBe(true);
      expect(vm.capabilities.clipboard).toBe(true);
    });

    it('a display listener gets a full Scanout right after registration', async () => {
      const d = new RecordingConsoleHandler();
      const h = await vm.addConsoleListener(d);
      await waitFor('Scanout', wait, () => d.scanouts.length > 0);
      const s = d.scanouts[0];
      expect(s.format).toBe(0x20020888);
      expect(s.stride).toBeGreaterThanOrEqual(s.width * 4);
      expect(s.bytes).toBe(s.stride * s.height);
      await h.remove();
    });

    it('an audio-out listener gets Init with the voice format, then SetEnabled', async () => {
      const a = new RecordingAudioOutHandler();
      const h = await vm.addAudioOutListener(a);
      await waitFor('Init + SetEnabled', wait, () => a.inits.length > 0 && a.enabled.length > 0);
      const f = a.inits[0].format;
      expect(f.bits).toBe(16);
      expect(f.nchannels).toBe(2);
      expect(f.bytesPerFrame).toBe(4);
      expect(f.bytesPerSecond).toBe(f.freq * 4);
      expect(a.enabled[0][0]).toBe(a.inits[0].id);
      await h.remove();
    });

    it('keyboard and mouse calls are accepted; Modifiers holds LED bits only, IsAbsolute a boolean', async () => {
      const c = vm.console();
      // each call rejects if the peer refuses it
      await c.keyboard.press(0x1e);
      await c.keyboard.release(0x1e);
      await c.mouse.press(0);
      await c.mouse.release(0);
      expect([0, 1, 2, 3, 4, 5, 6, 7]).toContain(await c.keyboard.leds());
      expect([true, false]).toContain(await c.mouse.isAbsolute());
    });

    it('a second display listener from the same connection is served once the first is gone', async () => {
      const a = new RecordingConsoleHandler();
      const ha = await vm.addConsoleListener(a);
      await waitFor('first Scanout', wait, () => a.scanouts.length > 0);
      await ha.remove();
      const b = new RecordingConsoleHandler();
      const hb = await vm.addConsoleListener(b);
      await waitFor('second Scanout', wait, () => b.scanouts.length > 0);
      await hb.remove();
    });

    it('killing the peer reports vm-gone and tells the handlers', async () => {
      const d = new RecordingConsoleHandler();
      await vm.addConsoleListener(d);
      await waitFor('Scanout', wait, () => d.scanouts.length > 0);
      const gone = new Promise<void>((r) => vm.once('vm-gone', () => r()));
      await peer.kill();
      await gone;
      expect(vm.attached).toBe(false);
      expect(d.disables).toBeGreaterThan(0);
    });
  });
}

// A slow display consumer must not stall QEMU: frames are run in time slices, so a synchronous
// call QEMU is blocked on (audio Read) is answered while frames are still queued, and a full-frame
// Scanout drops the queued Updates it covers (what QEMU 9.0+ does on its side, and 7.2 does not).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { QemuVm, type ListenerHandle } from '../../src/qemu';
import { FakeQemuPeer, type FakeListenerPeer } from '../fakes/qemu-peer';
import { RecordingAudioInHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';

/** A camera that takes `ms` of CPU per frame update (busy, like a real conversion). */
class SlowDisplay extends RecordingConsoleHandler {
  constructor(private readonly ms: number) {
    super();
  }
  override update(x: number, y: number, w: number, h: number, stride: number, f: number, data: Uint8Array): void {
    const end = performance.now() + this.ms;
    while (performance.now() < end) {
      /* burn */
    }
    super.update(x, y, w, h, stride, f, data);
  }
}

describe('slow display consumer', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;
  let display: SlowDisplay;
  let dh: ListenerHandle;
  let dl: FakeListenerPeer;
  let al: FakeListenerPeer;
  const upd = (i: number): unknown[] => [i % 16, 0, 32, 32, 128, 0x20020888, Buffer.alloc(4096, i)];

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'busy' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    display = new SlowDisplay(15);
    dh = await vm.addConsoleListener(display);
    await waitFor('greeting', 5000, () => display.scanouts.length === 1);
    dl = fake.listeners.at(-1)!;
    await vm.addAudioInListener(new RecordingAudioInHandler());
    await waitFor('audio-in peer', 5000, () => fake.listeners.length === 2);
    al = fake.listeners.at(-1)!;
    await al.ready;
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('an audio Read is answered while a burst of frames is still queued', async () => {
    const n = 40;
    await Promise.all(Array.from({ length: n }, (_, i) => dl.call('Update', 'iiiiuuay', upd(i))));
    const data = (await al.call('Read', 'tt', [1n, 4096n], { reply: true })) as Buffer;
    const doneWhenAnswered = display.updates.length;
    expect(data.length).toBe(4096);
    expect(doneWhenAnswered).toBeLessThan(n);
    await waitFor('every Update handled, in order', 10_000, () => display.updates.length === n);
    expect(display.updates.map((u) => u.x)).toEqual(Array.from({ length: n }, (_, i) => i % 16));
    expect(dh.stats!.maxQueued).toBeGreaterThan(1);
  });

  it('a Scanout supersedes the Updates still queued before it', async () => {
    display.updates = [];
    display.scanouts = [];
    const before = dh.stats!.superseded;
    const sends = Array.from({ length: 30 }, (_, i) => dl.call('Update', 'iiiiuuay', upd(i)));
    sends.push(dl.call('Scanout', 'uuuuay', [64, 64, 256, 0x20020888, Buffer.alloc(256 * 64, 9)]));
    sends.push(dl.call('Update', 'iiiiuuay', [5, 5, 32, 32, 128, 0x20020888, Buffer.alloc(4096, 1)]));
    await Promise.all(sends);
    await waitFor('the Scanout and the Update after it', 10_000, () => display.scanouts.length === 1 && display.updates.some((u) => u.x === 5 && u.y === 5));
    expect(dh.stats!.superseded).toBeGreaterThan(before);
    expect(display.updates.length).toBeLessThan(31);
    expect(display.scanouts[0]).toMatchObject({ width: 64, height: 64 });
    expect(display.updates.at(-1)).toMatchObject({ x: 5, y: 5 });
  });
});

// VM lifecycle against fake peers: a peer that stops answering (liveness read), a peer that
// vanishes and comes back under the same name (re-attach, listeners re-registered), and 7.2's
// "already registered" answer while QEMU has not yet seen the old listener's EOF.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { QemuVm, type QemuDbusError } from '../../src/qemu';
import { Liveness } from '../../src/qemu/vm/liveness';
import { FakeQemuPeer } from '../fakes/qemu-peer';
import { RecordingAudioOutHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';

describe('VM lifecycle (fake peer)', () => {
  let bus: DbusDaemon;
  const fakes: FakeQemuPeer[] = [];
  let vm: QemuVm | undefined;

  beforeEach(async () => {
    bus = await startDbusDaemon();
  });
  afterEach(async () => {
    await vm?.close();
    vm = undefined;
    for (const f of fakes.splice(0)) await f.stop();
    await bus.stop();
  });

  it('a peer that stops answering is reported EQEMU_UNRESPONSIVE by the property read; it recovers with "responsive"', async () => {
    const fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'sleepy' });
    fakes.push(fake);
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 100, livenessTimeoutMs: 300 });
    const errors: QemuDbusError[] = [];
    vm.on('error', (e) => errors.push(e));
    const responsive = new Promise<void>((r) => vm!.once('responsive', () => r()));
    fake.freeze();
    await waitFor('EQEMU_UNRESPONSIVE', 5000, () => errors.some((e) => e.code === 'EQEMU_UNRESPONSIVE'));
    expect(vm.attached).toBe(true); // stuck is not gone
    expect(errors.filter((e) => e.code === 'EQEMU_UNRESPONSIVE')).toHaveLength(1); // reported once, not per tick
    fake.thaw();
    await responsive;
  });

  it('vanishing peer -> vm-gone with handlers told; same name again -> re-attached, every listener registered again', async () => {
    const first = await FakeQemuPeer.start({ busAddress: bus.address, name: 'phoenix' });
    fakes.push(first);
    vm = await QemuVm.connect({ busAddress: bus.address, name: 'phoenix', livenessIntervalMs: 200, reattachPollMs: 100 });
    const display = new RecordingConsoleHandler();
    const audio = new RecordingAudioOutHandler();
    const dh = await vm.addConsoleListener(display);
    const ah = await vm.addAudioOutListener(audio);
    await waitFor('first frame + Init', 5000, () => display.scanouts.length === 1 && audio.inits.length === 1);

    const events: string[] = [];
    const kinds: string[] = [];
    vm.on('vm-gone', (_i, _r, kind) => {
      events.push('vm-gone');
      kinds.push(kind);
    });
    vm.on('reattached', () => events.push('reattached'));
    await first.stop();
    await waitFor('vm-gone', 5000, () => events.includes('vm-gone'));
    expect(vm.attached).toBe(false);
    expect(kinds).toEqual(['name-vanished']);
    expect(dh.active).toBe(false);
    expect(ah.active).toBe(false);
    expect(display.disables).toBe(1);
    expect(audio.finis).toEqual([audio.inits[0].id]);

    // A different VM appearing must not be taken for ours.
    const other = await FakeQemuPeer.start({ busAddress: bus.address, name: 'stranger' });
    fakes.push(other);
    await new Promise((r) => setTimeout(r, 400));
    expect(vm.attached).toBe(false);

    const t0 = Date.now();
    const second = await FakeQemuPeer.start({ busAddress: bus.address, name: 'phoenix' });
    fakes.push(second);
    await waitFor('reattached', 5000, () => events.includes('reattached'));
    console.log(`[qemu-lifecycle] fake re-attach took ${Date.now() - t0} ms`);
    expect(vm.info.uniqueName).toBe(second.uniqueName);
    expect(dh.registrations).toBe(2);
    expect(ah.registrations).toBe(2);
    await waitFor('frame + Init from the new peer', 5000, () => display.scanouts.length === 2 && audio.inits.length === 2);
    expect(events).toEqual(['vm-gone', 'reattached']);
  });

  it('a VM gone from the bus is looked for less and less often (the bus says when a QEMU arrives) and not read; one that comes back is re-attached and read again', async () => {
    const first = await FakeQemuPeer.start({ busAddress: bus.address, name: 'sleeper' });
    fakes.push(first);
    vm = await QemuVm.connect({ busAddress: bus.address, name: 'sleeper', livenessIntervalMs: 200 }); // default poll: 250 ms
    const looks = vi.spyOn(QemuVm.prototype as unknown as { search(): Promise<void> }, 'search');
    const ticks = vi.spyOn(Liveness.prototype as unknown as { tick(): void }, 'tick');
    try {
      const gone = new Promise<void>((r) => vm!.once('vm-gone', () => r()));
      await first.stop();
      fakes.splice(fakes.indexOf(first), 1);
      await gone;
      const t0 = looks.mock.calls.length;
      const tick0 = ticks.mock.calls.length;
      await new Promise((r) => setTimeout(r, 3500));
      expect(ticks.mock.calls.length).toBe(tick0); // no liveness timer while the VM is away
      // After the look at the loss: looks at 250, 750 and 1750 ms (then 3750): 3, where a fixed 250 ms poll made 14.
      const n = looks.mock.calls.length - t0;
      console.log(`[qemu-lifecycle] ${n} looks in 3.5 s while the VM was gone`);
      expect(n).toBeGreaterThanOrEqual(2);
      expect(n).toBeLessThanOrEqual(4);
      const back = new Promise<void>((r) => vm!.once('reattached', () => r()));
      fakes.push(await FakeQemuPeer.start({ busAddress: bus.address, name: 'sleeper' }));
      await back;
      await waitFor('liveness ticking again after the re-attach', 5000, () => ticks.mock.calls.length > tick0);
    } finally {
      looks.mockRestore();
      ticks.mockRestore();
    }
  });

  it('7.2 "already registered": a second display listener is retried until the first one is gone', async () => {
    const fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'strict', flavour: '7.2' });
    fakes.push(fake);
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    const a = new RecordingConsoleHandler();
    const ha = await vm.addConsoleListener(a);
    const b = new RecordingConsoleHandler();
    const pending = vm.addConsoleListener(b);
    await waitFor('a rejection', 5000, () => fake.alreadyRegisteredRejections > 0);
    await ha.remove();
    const hb = await pending;
    expect(hb.active).toBe(true);
    await waitFor('Scanout for the second listener', 5000, () => b.scanouts.length === 1);
  });

  it('"already registered" for ever ends in ELISTENER with a fix, not a hang', async () => {
    const fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'stuck', flavour: '7.2' });
    fakes.push(fake);
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    await vm.addConsoleListener(new RecordingConsoleHandler());
    const err = await vm.addConsoleListener(new RecordingConsoleHandler()).then(
      () => undefined,
      (e: QemuDbusError) => e,
    );
    expect(err?.code).toBe('ELISTENER');
    expect(err?.message).toMatch(/already registered/);
    expect(fake.alreadyRegisteredRejections).toBeGreaterThan(5);
  });

  it('a listener dropped while QEMU is stuck is registered again once QEMU answers', async () => {
    const fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'hiccup' });
    fakes.push(fake);
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0, livenessTimeoutMs: 300 });
    vm.on('error', () => undefined);
    const display = new RecordingConsoleHandler();
    const h = await vm.addConsoleListener(display);
    await waitFor('Scanout', 5000, () => display.scanouts.length === 1);
    fake.freeze();
    fake.listeners[0].close(); // QEMU drops the listener while its main loop is blocked
    await waitFor('listener inactive', 5000, () => !h.active);
    await new Promise((r) => setTimeout(r, 800)); // at least one probe times out meanwhile
    expect(h.registrations).toBe(1);
    fake.thaw();
    await waitFor('registered again', 10_000, () => h.registrations === 2 && h.active);
    await waitFor('Scanout on the new socket', 5000, () => display.scanouts.length === 2);
    expect(vm.attached).toBe(true);
  });

  it('remove() while the listener is being registered again closes the new connection (no listener left with QEMU)', async () => {
    const fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'quitter' });
    fakes.push(fake);
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    vm.on('error', () => undefined);
    const display = new RecordingConsoleHandler();
    const h = await vm.addConsoleListener(display);
    await waitFor('Scanout', 5000, () => display.scanouts.length === 1);
    const release = fake.holdRegistrations();
    const callsBefore = fake.registerCalls;
    fake.listeners[0].close(); // QEMU drops the listener; the bridge registers it again
    await waitFor('RegisterListener in flight', 5000, () => fake.registerCalls === callsBefore + 1);
    await h.remove();
    release();
    await waitFor('the second connection accepted by QEMU', 5000, () => fake.listeners.length === 2);
    await waitFor('and closed by the bridge', 5000, () => fake.listeners[1].closed);
    expect(h.active).toBe(false);
    expect(display.scanouts).toHaveLength(1);
  });

  it("'attached' can be listened for right after connect() resolves", async () => {
    fakes.push(await FakeQemuPeer.start({ busAddress: bus.address, name: 'early' }));
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    const info = await new Promise<{ name: string }>((r) => vm!.once('attached', r));
    expect(info.name).toBe('early');
  });

  it('close() ends every listener socket (QEMU sees EOF) and stops watching', async () => {
    const fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'closer' });
    fakes.push(fake);
    vm = await QemuVm.connect({ busAddress: bus.address });
    const display = new RecordingConsoleHandler();
    const audio = new RecordingAudioOutHandler();
    await vm.addConsoleListener(display);
    await vm.addAudioOutListener(audio);
    await waitFor('both listeners served', 5000, () => display.scanouts.length === 1 && audio.inits.length === 1);
    await vm.close();
    vm = undefined;
    await waitFor('QEMU side sees EOF on both', 5000, () => fake.listeners.every((l) => l.closed));
  });
});

// The console's shared registration (src/qemu/console-share.ts) against a fake 7.2 peer, which
// accepts one console listener per sender: the input route's dead-man's switch and the camera's
// display handler share one connection whatever the order they come in, the display still gets a
// full frame, and the connection closes (QEMU then lifts held keys) only when the last user leaves.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { QemuVm } from '../../src/qemu';
import { FakeQemuPeer } from '../fakes/qemu-peer';
import { RecordingConsoleHandler } from '../fakes/recording-handlers';

describe("console dead-man's switch (fake 7.2 peer)", () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm | undefined;
  const open = () => fake.listeners.filter((l) => l.kind === 'console' && !l.closed);

  beforeEach(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'deadman', flavour: '7.2' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
  });
  afterEach(async () => {
    await vm?.close();
    vm = undefined;
    await fake.stop();
    await bus.stop();
  });

  it('alone, it keeps one console listener registered and drops the frames; remove() closes it', async () => {
    const h = await vm!.addDeadMansSwitch();
    await fake.waitForListener('console');
    expect(h.active).toBe(true);
    expect(open()).toHaveLength(1);
    await h.remove();
    await waitFor('the listener socket closed', 5000, () => open().length === 0);
  });

  it('display first, then the switch: one connection for both, no "already registered"', async () => {
    const display = new RecordingConsoleHandler();
    await vm!.addConsoleListener(display);
    const h = await vm!.addDeadMansSwitch();
    expect(h.active).toBe(true);
    expect(h.registrations).toBe(1);
    expect(open()).toHaveLength(1);
    expect(fake.alreadyRegisteredRejections).toBe(0);
  });

  it('switch first, then the display: registered again so the display gets a full frame', async () => {
    const h = await vm!.addDeadMansSwitch();
    await fake.waitForListener('console');
    const display = new RecordingConsoleHandler();
    const dh = await vm!.addConsoleListener(display);
    await waitFor('a Scanout for the display', 5000, () => display.scanouts.length === 1);
    expect(dh.registrations).toBe(2);
    expect(h.active).toBe(true);
    await waitFor('the first connection closed', 5000, () => open().length === 1);
  });

  it('the display leaving does not close the connection while the switch holds it; the display is told its stream ended', async () => {
    const display = new RecordingConsoleHandler();
    const dh = await vm!.addConsoleListener(display);
    const h = await vm!.addDeadMansSwitch();
    await dh.remove();
    expect(display.disables).toBeGreaterThan(0);
    expect(h.active).toBe(true);
    expect(open()).toHaveLength(1);
    await h.remove();
    await waitFor('the listener socket closed', 5000, () => open().length === 0);
  });
});

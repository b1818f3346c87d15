// Listener.Unix.Map end to end against the fake 9.2+/10.1 peer: the camera listener is offered
// the interface (it has scanoutMap), receives the memfd over the p2p socket and reads the shared
// surface into its framebuffer; a new map replaces (and closes) the old one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CameraConsoleListener } from '../../src/camera/listener';
import { QemuVm } from '../../src/qemu';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { FakeQemuPeer } from '../fakes/qemu-peer';
import { lineLogger } from '../fakes/logger';

describe('camera listener on a 10.1 peer with Listener.Unix.Map', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'mapped', flavour: '10.1' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('advertises Unix.Map, maps the memfd and shows the shared surface', async () => {
    const lines: string[] = [];
    const cam = new CameraConsoleListener({ log: lineLogger((l) => lines.push(l)) });
    const h = await vm.addConsoleListener(cam);
    await waitFor('mapped frame in the framebuffer', 10_000, () => cam.fb.width === 640 && cam.fb.data.toString('ascii', 0, 12) === 'MAPPED-FRAME');
    expect(fake.listeners.at(-1)!.interfaces).toEqual(['org.qemu.Display1.Listener.Unix.Map']);
    expect(cam.picture()).toMatchObject({ width: 640, height: 480 });
    const v = cam.version;
    // a second map at an unaligned offset: read from the right place
    cam.fb.data.fill(0, 0, 12);
    await fake.scanoutMap(fake.listeners.at(-1)!, 100);
    await waitFor('second map read', 10_000, () => cam.version > v && cam.fb.data.toString('ascii', 0, 12) === 'MAPPED-FRAME');
    expect(lines).toEqual([]);
    await h.remove();
    cam.close();
  });
});

// Hostile but well-typed values from the VM side, and forged signals from other peers on a shared
// bus (issue 12, items 1 and 7). Real dbus-daemon, the fake QEMU peer on it, the real listener
// serving code and the real camera listener/pipeline/addon; a FakeSink stands in for the webcam.
import * as dbus from 'dbus-native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CameraConsoleListener, type PictureSource } from '../../src/camera/listener';
import { CameraPipeline } from '../../src/camera/pipeline';
import { FakeSink } from '../fakes/camera-sink';
import { QemuVm, type ListenerHandle } from '../../src/qemu';
import { openBus, type BusConnection } from '../../src/qemu/bus';
import { consoleListenerInterfaces } from '../../src/qemu/console-listener';
import { MAX_DISPLAY_SIDE, MAX_FRAME_BYTES, MAX_VOICES } from '../../src/qemu/limits';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { sleep, waitFor } from '../harness/procs';
import { FakeQemuPeer, type FakeListenerPeer } from '../fakes/qemu-peer';
import { RecordingAudioOutHandler } from '../fakes/recording-handlers';
import { silentLogger } from '../../src/log';
import { lineLogger } from '../fakes/logger';

const XRGB = 0x20020888;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** A signal from `from`, addressed to `to` (unicast: no match rule on `to` can keep it out). */
function sendSignal(from: dbus.MessageBus, to: string, path: string, iface: string, member: string, signature: string, body: unknown[]): void {
  from.connection.message({ type: 4, serial: 1 + Math.floor(Math.random() * 1e6), destination: to, path, interface: iface, member, signature, body });
}

describe('hostile cursor coordinates (item 1)', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'hostile-cursor' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  async function cameraOnListener(): Promise<{ cam: CameraConsoleListener; pipeline: CameraPipeline; sink: FakeSink; l: FakeListenerPeer; h: ListenerHandle }> {
    const cam = new CameraConsoleListener({ log: silentLogger });
    const h = await vm.addConsoleListener(cam);
    const l = await fake.waitForListener('console');
    await waitFor('first frame', 5000, () => cam.picture() !== null);
    const sink = new FakeSink({ width: 64, height: 48, fps: 30 });
    const pipeline = new CameraPipeline({ source: cam, sink, log: silentLogger });
    return { cam, pipeline, sink, l, h };
  }

  it('MouseSet(-2^31, 0) after a CursorDefine: the frame is still composed and written', async () => {
    const { cam, pipeline, sink, l, h } = await cameraOnListener();
    const cursor = Buffer.alloc(8 * 8 * 4, 0xff);
    await l.call('CursorDefine', 'iiiiay', [8, 8, 0, 0, cursor], { reply: true });
    const v = cam.version;
    await l.call('MouseSet', 'iii', [INT32_MIN, 0, 1], { reply: true });
    await waitFor('MouseSet handled', 5000, () => cam.version > v);
    pipeline.tick();
    expect(pipeline.stats).toMatchObject({ converted: 1, written: 1, errors: 0 });
    expect(sink.frames).toHaveLength(1);
    expect(cam.cursor()).toMatchObject({ x: -MAX_DISPLAY_SIDE, y: 0 });
    await h.remove();
  });

  it('CursorDefine hot spots at the int32 extremes are clamped onto the image', async () => {
    const { cam, pipeline, sink, l, h } = await cameraOnListener();
    await l.call('MouseSet', 'iii', [INT32_MAX, INT32_MIN, 1], { reply: true });
    const v = cam.version;
    await l.call('CursorDefine', 'iiiiay', [8, 8, INT32_MIN, INT32_MAX, Buffer.alloc(8 * 8 * 4, 0xff)], { reply: true });
    await waitFor('CursorDefine handled', 5000, () => cam.version > v);
    expect(cam.cursor()).toMatchObject({ x: MAX_DISPLAY_SIDE, y: -MAX_DISPLAY_SIDE - 7 });
    pipeline.tick();
    expect(pipeline.stats).toMatchObject({ converted: 1, written: 1, errors: 0 });
    expect(sink.frames).toHaveLength(1);
    await h.remove();
  });
});

describe('frame geometry bounds at the listener boundary (item 7: every size QEMU announces)', () => {
  const maps: number[][] = [];
  const noop = (): void => undefined;
  const handler = { scanout: noop, update: noop, disable: noop, cursorDefine: noop, mouseSet: noop, scanoutMap: (...a: number[]) => void maps.push(a) };
  const [listener, unixMap] = consoleListenerInterfaces(handler, true);
  const refusal = (f: () => void): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return (e as { dbusName?: string }).dbusName;
    }
  };
  const ctx = { fds: [-1], takeFd: () => -1 };

  it('a ScanoutMap whose stride spans more than MAX_FRAME_BYTES is refused before the handler reads anything', () => {
    const stride = Math.ceil(MAX_FRAME_BYTES / 100) + 4;
    expect(refusal(() => unixMap.methods.ScanoutMap.call([0, 0, 1, 101, stride, XRGB], ctx))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(maps).toEqual([]);
    expect(refusal(() => unixMap.methods.ScanoutMap.call([0, 0, 1, 101, 4096, XRGB], ctx))).toBeUndefined();
    expect(maps).toEqual([[-1, 0, 1, 101, 4096, XRGB]]);
  });

  it('an Update whose rectangle would grow the picture beyond the bounds is refused', () => {
    const data = Buffer.alloc(4);
    expect(refusal(() => listener.methods.Update.validate!([8500, 8500, 1, 1, 4, XRGB, data]))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(refusal(() => listener.methods.Update.validate!([MAX_DISPLAY_SIDE, 0, 1, 1, 4, XRGB, data]))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(refusal(() => listener.methods.Update.validate!([719, 399, 1, 1, 4, XRGB, data]))).toBeUndefined();
  });
});

describe('no exception escapes the camera clock (item 1, in depth)', () => {
  it('a picture the converter refuses is counted and logged once; the clock keeps ticking and recovers', async () => {
    const lines: string[] = [];
    const cam = new CameraConsoleListener({ log: silentLogger });
    const px = Buffer.alloc(16 * 16 * 4, 0x80);
    cam.scanout(16, 16, 64, XRGB, px);
    let poisoned = true;
    // A cursor the addon refuses (x beyond int32), as a handler bug would hand it over.
    const source: PictureSource = {
      get version() {
        return cam.version;
      },
      picture: () => cam.picture(),
      cursor: () => (poisoned ? { data: Buffer.alloc(4), width: 1, height: 1, x: 2 ** 40, y: 0 } : null),
      takeArrivals: (into) => cam.takeArrivals(into),
    };
    const sink = new FakeSink({ width: 64, height: 48, fps: 100 });
    const pipeline = new CameraPipeline({ source, sink, log: lineLogger((l) => lines.push(l), 'camera') });
    pipeline.start();
    try {
      await waitFor('ticks after the failure', 5000, () => pipeline.stats.ticks >= 5);
      expect(pipeline.stats.errors).toBeGreaterThanOrEqual(1);
      poisoned = false;
      cam.scanout(16, 16, 64, XRGB, px); // the picture changes: converted again
      await waitFor('a frame after recovery', 5000, () => sink.frames.length > 0);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^camera: a guest picture could not be converted \(.+\); frame skipped$/);
    } finally {
      pipeline.stop();
    }
  });

  it('a sink that throws from wantedFormat() on the clock: counted, logged once, the clock keeps going', async () => {
    const lines: string[] = [];
    const cam = new CameraConsoleListener({ log: silentLogger });
    cam.scanout(16, 16, 64, XRGB, Buffer.alloc(16 * 16 * 4));
    const sink = new FakeSink({ width: 64, height: 48, fps: 100 });
    sink.wantedFormat = () => {
      throw new Error('sink state lost');
    };
    const pipeline = new CameraPipeline({ source: cam, sink, log: lineLogger((l) => lines.push(l), 'camera') });
    pipeline.start();
    try {
      await waitFor('ticks', 5000, () => pipeline.stats.ticks >= 5);
      expect(pipeline.running).toBe(true);
      expect(pipeline.stats.errors).toBe(pipeline.stats.ticks);
      expect(lines).toEqual(['camera: frame tick failed (sink state lost)']);
    } finally {
      pipeline.stop();
    }
  });
});

describe('signals only from the right sender; sizes bounded (item 7)', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;
  let intruder: BusConnection;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'hostile-signals' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    intruder = await openBus(bus.address);
  });
  afterAll(async () => {
    await intruder?.close();
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('a NameOwnerChanged "QEMU vanished" from another peer is ignored', async () => {
    const gone: string[] = [];
    vm.on('vm-gone', (_i, reason) => gone.push(reason));
    sendSignal(intruder.bus, vm.bus.name!, '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'NameOwnerChanged', 'sss', [fake.uniqueName, fake.uniqueName, '']);
    // A round trip on the same path (daemon -> vm) after the forged signal: it has been delivered.
    await vm.console().size();
    await sleep(100);
    expect(gone).toEqual([]);
    expect(vm.attached).toBe(true);
  });

  it(`an audio listener keeps at most ${MAX_VOICES} voices: the next new id is refused until one is finished`, async () => {
    const speaker = new RecordingAudioOutHandler();
    const h = await vm.addAudioOutListener(speaker);
    const l = await fake.waitForListener('audio-out');
    const init = (id: bigint) => l.call('Init', 'tybbuyuub', [id, 16, true, false, 48000, 2, 4, 192000, false], { reply: true });
    const refused = (p: Promise<unknown>) => p.then(() => 'accepted', (e: { dbusName?: string }) => e.dbusName);
    await waitFor('the greeting Init', 5000, () => speaker.inits.length === 1); // the fake's greeting voice is one
    for (let i = 1; i < MAX_VOICES; i++) await init(BigInt(1000 + i));
    expect(await refused(init(5000n))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(await refused(init(1001n))).toBe('accepted'); // a known id: its format changes, no new voice
    await l.call('Fini', 't', [1001n], { reply: true });
    expect(await refused(init(5000n))).toBe('accepted');
    expect(speaker.inits).toHaveLength(MAX_VOICES + 2);
    await h.remove();
  });

  it('Console Width/Height from another peer are ignored; from QEMU they pass only within bounds', async () => {
    const sizes: [number, number][] = [];
    const off = await vm.console().onSizeChanged((w, h) => sizes.push([w, h]));
    const props = (w: number, h: number) => ['org.qemu.Display1.Console', [['Width', ['u', w]], ['Height', ['u', h]]], []];
    const path = '/org/qemu/Display1/Console_0';
    try {
      sendSignal(intruder.bus, vm.bus.name!, path, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', props(800, 600));
      sendSignal(fake.bus, vm.bus.name!, path, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', props(2 ** 31, 2 ** 31));
      sendSignal(fake.bus, vm.bus.name!, path, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', props(0, 480));
      sendSignal(fake.bus, vm.bus.name!, path, 'org.freedesktop.DBus.Properties', 'PropertiesChanged', 'sa{sv}as', props(720, 400));
      await waitFor('the in-bounds size from QEMU', 5000, () => sizes.length > 0);
      await vm.console().size();
      expect(sizes).toEqual([[720, 400]]);
    } finally {
      await off();
    }
  });
});

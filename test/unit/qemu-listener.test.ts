// Listener serving against a fake Display1 peer: the 8.1+/9.2+ interfaces QEMU 7.2 cannot show
// (Interfaces, MultiTouch, NSamples, Listener.Unix.Map ScanoutMap with a memfd), and malformed
// calls from the peer (wrong signature, absurd sizes, garbage frames): error reply, no crash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { QemuVm, type ListenerHandle } from '../../src/qemu';
import { FakeQemuPeer, type FakeListenerPeer } from '../fakes/qemu-peer';
import { RecordingAudioInHandler, RecordingAudioOutHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';

const dbusNameOf = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => undefined,
    (e: { dbusName?: string }) => e.dbusName,
  );

describe('a newer QEMU (fake 10.1 peer)', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'newer', flavour: '10.1' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('capabilities come from the Interfaces/NSamples properties and the exported interfaces', () => {
    const c = vm.capabilities;
    expect(c.interfacesProperty).toBe(true);
    expect(c.multiTouch).toBe(true);
    expect(c.consoleInterfaces).toContain('org.qemu.Display1.MultiTouch');
    expect(c.unixMap).toBe(true);
    expect(c.audio).toBe(true);
    expect(c.audioNSamples).toBe(480);
    expect(c.clipboard).toBe(true);
    expect(c.p2pAudioBroken).toBe(false);
  });

  it('MultiTouch.SendEvent reaches QEMU; bad slots are refused before sending', async () => {
    await vm.console().multiTouch.sendEvent(0, 3, 10.5, 20);
    expect(fake.touches).toEqual([[0, 3n, 10.5, 20]]);
    expect(() => vm.console().multiTouch.sendEvent(0, 10, 0, 0)).toThrow(expect.objectContaining({ code: 'EBAD_ARGUMENT' }));
    expect(await vm.console().multiTouch.maxSlots()).toBe(10);
  });

  it('a handler with scanoutMap offers Listener.Unix.Map and receives the memfd (usocket transport)', async () => {
    const display = new RecordingConsoleHandler(true);
    const h = await vm.addConsoleListener(display);
    await waitFor('ScanoutMap', 5000, () => display.maps.length > 0);
    const l = fake.listeners.at(-1)!;
    expect(l.interfaces).toEqual(['org.qemu.Display1.Listener.Unix.Map']);
    const m = display.maps[0];
    expect(m).toMatchObject({ width: 640, height: 480, stride: 2560, format: 0x20020888 });
    expect(m.head.toString('ascii', 0, 12)).toBe('MAPPED-FRAME');
    await waitFor('UpdateMap', 5000, () => display.mapUpdates.length > 0);
    expect(display.mapUpdates[0]).toEqual([0, 0, 16, 16]);
    expect(display.scanouts).toHaveLength(0);
    // a second map at an unaligned offset
    await fake.scanoutMap(l, 100);
    await waitFor('second ScanoutMap', 5000, () => display.maps.length > 1);
    expect(display.maps[1].head.toString('ascii', 0, 12)).toBe('MAPPED-FRAME');
    await h.remove();
  });

  it('a handler without scanoutMap lists no interfaces and gets plain Scanouts', async () => {
    const display = new RecordingConsoleHandler(false);
    const h = await vm.addConsoleListener(display);
    await waitFor('Scanout', 5000, () => display.scanouts.length > 0);
    expect(fake.listeners.at(-1)!.interfaces).toEqual([]);
    expect(display.scanouts[0]).toMatchObject({ width: 640, height: 480, bytes: 640 * 480 * 4 });
    await h.remove();
  });
});

describe('malformed calls from the peer', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;
  let display: RecordingConsoleHandler;
  let handle: ListenerHandle;
  let l: FakeListenerPeer;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'rude' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
    display = new RecordingConsoleHandler();
    handle = await vm.addConsoleListener(display);
    await waitFor('greeting Scanout', 5000, () => display.scanouts.length === 1);
    l = fake.listeners.at(-1)!;
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('answers GetAll with the Interfaces property, Introspect and Ping on the p2p connection', async () => {
    expect(l.getAllReply).toEqual({ Interfaces: [] });
    const xml = (await l.call('Introspect', '', [], { reply: true, iface: 'org.freedesktop.DBus.Introspectable' })) as string;
    expect(xml).toContain('<interface name="org.qemu.Display1.Listener">');
    expect(xml).toContain('<method name="Scanout">');
    await l.call('Ping', '', [], { reply: true, iface: 'org.freedesktop.DBus.Peer' });
  });

  it('wrong signatures get InvalidArgs and never reach the handler', async () => {
    expect(await dbusNameOf(l.call('Scanout', 'uuuay', [1, 1, 4, Buffer.alloc(4)], { reply: true }))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(await dbusNameOf(l.call('Update', 's', ['x'], { reply: true }))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(await dbusNameOf(l.call('Scanout', '', [], { reply: true }))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(display.scanouts).toHaveLength(1);
    expect(display.updates).toHaveLength(0);
  });

  it('absurd sizes get InvalidArgs: huge dimensions, short data, stride below width, bad format', async () => {
    const cases: [string, string, unknown[]][] = [
      ['Scanout', 'uuuuay', [100000, 100000, 400000, 0x20020888, Buffer.alloc(16)]],
      ['Scanout', 'uuuuay', [64, 64, 256, 0x20020888, Buffer.alloc(255)]],
      ['Scanout', 'uuuuay', [64, 64, 100, 0x20020888, Buffer.alloc(6400)]],
      ['Scanout', 'uuuuay', [0, 64, 0, 0x20020888, Buffer.alloc(0)]],
      ['Scanout', 'uuuuay', [4, 4, 16, 0x01020304, Buffer.alloc(64)]],
      ['Update', 'iiiiuuay', [-5, 0, 4, 4, 16, 0x20020888, Buffer.alloc(64)]],
      ['Update', 'iiiiuuay', [0, 0, -4, 4, 16, 0x20020888, Buffer.alloc(64)]],
      ['CursorDefine', 'iiiiay', [10000, 10000, 0, 0, Buffer.alloc(4)]],
    ];
    for (const [m, sig, body] of cases) {
      expect(await dbusNameOf(l.call(m, sig, body, { reply: true })), `${m} ${JSON.stringify(body.slice(0, 4))}`).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    }
    expect(display.scanouts).toHaveLength(1);
    expect(display.updates).toHaveLength(0);
    expect(display.cursors).toHaveLength(0);
  });

  it('unknown members, interfaces and paths get the matching errors', async () => {
    expect(await dbusNameOf(l.call('Explode', '', [], { reply: true }))).toBe('org.freedesktop.DBus.Error.UnknownMethod');
    expect(await dbusNameOf(l.call('Scanout', 'uuuuay', [1, 1, 4, 0x20020888, Buffer.alloc(4)], { reply: true, iface: 'org.example.Nope' }))).toBe(
      'org.freedesktop.DBus.Error.UnknownInterface',
    );
    expect(await dbusNameOf(l.call('Scanout', 'uuuuay', [1, 1, 4, 0x20020888, Buffer.alloc(4)], { reply: true, path: '/elsewhere' }))).toBe(
      'org.freedesktop.DBus.Error.UnknownObject',
    );
    expect(await dbusNameOf(l.call('Get', 'ss', ['org.qemu.Display1.Listener', 'Nope'], { reply: true, iface: 'org.freedesktop.DBus.Properties' }))).toBe(
      'org.freedesktop.DBus.Error.UnknownProperty',
    );
    // An fd-carrying call on a listener that negotiated no fds is refused (the GL path is off).
    expect(await dbusNameOf(l.call('UpdateDMABUF', 'iiii', [0, 0, 1, 1], { reply: true }))).toBeUndefined();
  });

  it('malformed fire-and-forget calls are counted, not answered, and the connection stays usable', async () => {
    const before = handle.stats!.rejected;
    await l.call('Scanout', 'uuuuay', [100000, 1, 400000, 0x20020888, Buffer.alloc(8)]);
    await l.call('Update', 'x', [1n]);
    await waitFor('two rejects', 5000, () => handle.stats!.rejected >= before + 2);
    await l.call('Update', 'iiiiuuay', [1, 2, 2, 2, 8, 0x20020888, Buffer.alloc(16, 7)]);
    await waitFor('a valid Update after the garbage', 5000, () => display.updates.length === 1);
    expect(display.updates[0]).toEqual({ x: 1, y: 2, width: 2, height: 2, bytes: 16 });
    expect(handle.active).toBe(true);
  });

  it('a handler that throws gets an error reply; the listener carries on', async () => {
    const orig = display.mouseSet.bind(display);
    display.mouseSet = () => {
      throw new Error('handler bug');
    };
    expect(await dbusNameOf(l.call('MouseSet', 'iii', [1, 2, 1], { reply: true }))).toBe('org.freedesktop.DBus.Error.Failed');
    display.mouseSet = orig;
    await l.call('MouseSet', 'iii', [3, 4, 0], { reply: true });
    expect(display.mouse).toEqual([[3, 4, false]]);
    expect(handle.stats!.handlerErrors).toBe(1);
  });

  it('a frame that breaks D-Bus framing closes that connection only; QEMU still alive -> the listener is registered again', async () => {
    const peer = l;
    expect(handle.registrations).toBe(1);
    // protocol version 9 and a 4 GiB body length: unrecoverable framing
    peer.stream.write(Buffer.from([0x6c, 1, 0, 9, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0]));
    await waitFor('the broken connection to close', 5000, () => display.disables > 0);
    await waitFor('registration on a fresh socket', 5000, () => handle.registrations === 2 && handle.active);
    await waitFor('Scanout on the fresh socket', 5000, () => display.scanouts.length === 2);
    expect(vm.attached).toBe(true);
  });
});

describe('audio listeners against the fake', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'sound' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('out: Init/SetEnabled/SetVolume/Write reach the handler with bigint ids and byte views', async () => {
    const out = new RecordingAudioOutHandler();
    const h = await vm.addAudioOutListener(out);
    await waitFor('Init', 5000, () => out.inits.length === 1);
    expect(out.inits[0]).toEqual({ id: 0x5611deadbeefn, format: { bits: 16, isSigned: true, isFloat: false, freq: 48000, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: 192000, bigEndian: false } });
    const l = fake.listeners.at(-1)!;
    await l.call('SetVolume', 'tbay', [0x5611deadbeefn, false, Buffer.from([255, 128])]);
    await l.call('Write', 'tay', [0x5611deadbeefn, Buffer.alloc(4096, 3)]);
    await waitFor('Write', 5000, () => out.writes === 1);
    expect(out.bytes).toBe(4096);
    expect(out.volumes).toEqual([[0x5611deadbeefn, false, [255, 128]]]);
    expect(await dbusNameOf(l.call('Init', 'tybbuyuub', [1n, 12, true, false, 44100, 2, 4, 176400, false], { reply: true }))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    // vm-gone style teardown: removing the listener finis the open voice for the handler
    await h.remove();
    expect(out.finis).toEqual([0x5611deadbeefn]);
  });

  it('in: Read is answered synchronously with what read() returned, never more than asked', async () => {
    const inp = new RecordingAudioInHandler(0x5a);
    await vm.addAudioInListener(inp);
    await waitFor('Init', 5000, () => inp.inits.length === 1);
    const l = fake.listeners.at(-1)!;
    const data = (await l.call('Read', 'tt', [0x5611deadbeefn, 1834n], { reply: true })) as Buffer;
    expect(data.length).toBe(1834);
    expect(data.every((b) => b === 0x5a)).toBe(true);
    expect(inp.reads).toEqual([1834]);
    expect(await dbusNameOf(l.call('Read', 'tt', [1n, 1n << 40n], { reply: true }))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    expect(await dbusNameOf(l.call('Read', 't', [1n], { reply: true }))).toBe('org.freedesktop.DBus.Error.InvalidArgs');
    // a handler that returns too much is cut to the size asked
    inp.read = (_id, size) => Buffer.alloc(size + 100, 1);
    const cut = (await l.call('Read', 'tt', [1n, 64n], { reply: true })) as Buffer;
    expect(cut.length).toBe(64);
  });
});

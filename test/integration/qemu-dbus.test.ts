// The QEMU D-Bus layer against the REAL QEMU guest on a private dbus-daemon, once per QEMU of the
// matrix (7.2 and 10.0, test/harness/qemu-targets.ts): discovery, capabilities and console size,
// display and audio-out listeners, two listeners in turn, the cursor state a late listener gets at
// registration, and kill + restart of QEMU under the same name -> automatic re-attach.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX } from '../harness/qemu-targets';
import { discoverVms, openBus, QemuVm, type VmInfo } from '../../src/qemu';
import { RecordingAudioOutHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';
import type { CursorImage } from '../../src/qemu';
import { CameraConsoleListener } from '../../src/camera/listener';
import { silentLogger } from '../../src/log';

describe.each(QEMU_MATRIX)('QEMU %s over a private bus', (_version, qemu) => {
  const v10 = qemu.version !== '7.2';
  let bus: DbusDaemon;
  let guest: Guest;
  let vm: QemuVm;
  let watcher: QemuVm;
  const early = new RecordingConsoleHandler();
  const name = `qdb-it-${process.pid}-${qemu.version}`;
  const uuid = v10 ? '5a3e1c2d-0000-4000-8000-00000000a010' : '5a3e1c2d-0000-4000-8000-00000000a001';

  beforeAll(async () => {
    bus = await startDbusDaemon();
    // virtio-vga: the `cursor` scenario sets a hardware cursor through DRM (bochs has no cursor plane)
    guest = await startGuest({ qemu, scenario: ['cursor', 'tone'], vga: 'virtio', busAddress: bus.address, name, uuid, params: { tone_ms: 3000 } });
    // a listener from its own client, there before the guest defines its cursor
    watcher = await QemuVm.connect({ busAddress: bus.address, name });
    watcher.on('error', () => undefined);
    await watcher.addConsoleListener(early);
  });

  afterAll(async () => {
    await watcher?.close();
    await vm?.close();
    await guest?.stop();
    await bus?.stop();
  });

  it(`lists the VM by name and UUID on the bus, reads its capabilities (${qemu.banner}) and console size`, async () => {
    const conn = await openBus(bus.address);
    try {
      const found = await discoverVms(conn.bus);
      expect(found.vms.map((v) => v.name)).toEqual([name]);
      expect(found.vms[0].uuid).toBe(uuid);
      expect(found.vms[0].uniqueName).toMatch(/^:\d+\.\d+$/);
    } finally {
      await conn.close();
    }
    vm = await QemuVm.connect({ busAddress: bus.address, name });
    vm.on('error', () => undefined);
    expect(vm.info.name).toBe(name);
    expect(vm.info.consoleIds).toEqual([0]);
    expect(vm.capabilities.audio).toBe(true);
    // 7.2 has neither; 10.0 exports Interfaces (8.1+), the MultiTouch object (8.1+), NSamples (10.0)
    expect(vm.capabilities.multiTouch).toBe(v10);
    expect(vm.capabilities.interfacesProperty).toBe(v10);
    expect(vm.capabilities.unixMap).toBe(v10);
    expect(vm.capabilities.audioNSamples).toBe(v10 ? 480 : null);
    console.log(`[qemu-dbus] QEMU ${qemu.version}: ${JSON.stringify({ ...vm.capabilities, objects: undefined })}`);
    const size = await vm.console().size();
    expect(size.width).toBeGreaterThan(0);
    expect(size.height).toBeGreaterThan(0);
  });

  it('display listener receives a Scanout at once and Updates as the guest boots', async () => {
    const display = new RecordingConsoleHandler();
    const handle = await vm.addConsoleListener(display);
    await waitFor('a Scanout', 30_000, () => display.scanouts.length > 0);
    const s = display.scanouts[0];
    expect(s.format).toBe(0x20020888);
    expect(s.bytes).toBe(s.stride * s.height);
    await waitFor('an Update', 60_000, () => display.updates.length > 0);
    expect(handle.active).toBe(true);
    expect(handle.stats!.rejected).toBe(0);
    await handle.remove();
  });

  it('audio-out listener receives Init and the guest tone as Writes', async () => {
    const audio = new RecordingAudioOutHandler();
    const handle = await vm.addAudioOutListener(audio);
    await waitFor('Init', 20_000, () => audio.inits.length > 0);
    expect(audio.inits[0].format).toMatchObject({ bits: 16, isSigned: true, isFloat: false, freq: 44100, nchannels: 2, bytesPerFrame: 4 });
    await guest.waitForSerial(/MARK play-start/, 120_000);
    await waitFor('tone Writes with signal', 60_000, () => audio.writes >= 10 && audio.nonZeroBytes > 0);
    expect(audio.bytes % (v10 ? 480 * 4 : 4096)).toBe(0); // 7.2: 1024 frames per Write; 10.0: Audio.NSamples = 480
    await handle.remove();
  });

  it('serves two display listeners in turn from the same bus connection', async () => {
    for (let i = 0; i < 2; i++) {
      const display = new RecordingConsoleHandler();
      const handle = await vm.addConsoleListener(display);
      await waitFor(`Scanout for listener ${i + 1}`, 30_000, () => display.scanouts.length > 0);
      await handle.remove();
      expect(handle.active).toBe(false);
    }
  });

  // 7.2 refuses a second listener from the same bus connection ("already registered"); 9.2+ keeps several.
  if (v10)
    it('two display listeners at once on one console both get the frames (9.2+: several listeners per console)', async () => {
      const a = new RecordingConsoleHandler();
      const b = new RecordingConsoleHandler();
      const ha = await vm.addConsoleListener(a);
      const hb = await vm.addConsoleListener(b);
      await waitFor('a Scanout on both', 30_000, () => a.scanouts.length > 0 && b.scanouts.length > 0);
      expect(ha.active && hb.active).toBe(true);
      await hb.remove();
      expect(ha.active).toBe(true); // removing one leaves the other registered
      await ha.remove();
    });

  // The guest's hardware cursor (guest/drm-cursor.c): 64x64, hot spot (4, 6), a magenta 32x32
  // square at the top left, placed at (100, 50). 8.0+ hands a newly registered listener the
  // console's current cursor (CursorDefine, then MouseSet) so a late client starts right; 7.2
  // sends neither until the guest changes its cursor, only listeners already there got it.
  it(`a listener registered after the guest showed its cursor gets it at registration, and so does the camera's cursor(): ${v10 ? 'CursorDefine + MouseSet (8.0+)' : 'nothing, only the listener already there has it (7.2)'}`, async () => {
    const shown = await guest.waitForSerial(/MARK cursor-shown crtc=\d+ w=(\d+) h=(\d+) hot_x=(\d+) hot_y=(\d+) x=(\d+) y=(\d+)/, 180_000);
    const [w, h, hx, hy, x, y] = shown.slice(1, 7).map(Number);
    const sane = (c: CursorImage) => {
      expect([c.width, c.height, c.hotX, c.hotY]).toEqual([w, h, hx, hy]);
      expect(c.data.byteLength).toBe(w * h * 4);
      expect([...c.data.subarray(0, 4)]).toEqual([0xff, 0x00, 0xff, 0xff]); // B,G,R,A: opaque magenta
      expect([...c.data.subarray(w * 4 - 4, w * 4)]).toEqual([0, 0, 0, 0]); // transparent right half
    };
    await waitFor('the cursor on the listener that was there', 30_000, () => early.cursors.length > 0);
    sane(early.cursors[early.cursors.length - 1]);
    await waitFor('the pointer position on the listener that was there', 30_000, () => early.mouse.some(([mx, my, on]) => mx === x && my === y && on));
    const earlyMouse = early.mouse.length;
    const earlyCursors = early.cursors.length;
    const other = await QemuVm.connect({ busAddress: bus.address, name });
    other.on('error', () => undefined);
    try {
      const late = new RecordingConsoleHandler();
      const lh = await other.addConsoleListener(late);
      try {
        await waitFor('Scanout on the late listener', 30_000, () => late.scanouts.length > 0);
        // QEMU queues the registration's Scanout, CursorDefine and MouseSet in one main-loop turn
        // on one socket: once the Scanout is in, the rest has been sent; 1 s is margin for our side.
        await new Promise((r) => setTimeout(r, 1000));
        console.log(`[qemu-dbus] QEMU ${qemu.version} late listener: CursorDefine x${late.cursors.length}, MouseSet ${JSON.stringify(late.mouse)}; the listener already there: MouseSet ${JSON.stringify(early.mouse)}`);
        if (v10) {
          expect(late.cursors).toHaveLength(1);
          sane(late.cursors[0]);
          expect(late.mouse).toEqual([[x, y, true]]); // where the guest put it, shown
        } else {
          expect(late.cursors).toEqual([]);
          expect(late.mouse).toEqual([]);
        }
        // only the new listener is told
        expect([early.cursors.length, early.mouse.length]).toEqual([earlyCursors, earlyMouse]);
      } finally {
        await lh.remove();
      }
      // The camera's listener, registered late in the same way: what the pipeline composes into
      // the picture is its cursor(), the image placed at the pointer minus the hot spot.
      const cam = new CameraConsoleListener({ log: silentLogger });
      const ch = await other.addConsoleListener(cam);
      try {
        await waitFor('a picture on the camera listener', 30_000, () => cam.picture() !== null);
        await new Promise((r) => setTimeout(r, 1000));
        const c = cam.cursor();
        if (v10) expect(c && { width: c.width, height: c.height, x: c.x, y: c.y }).toEqual({ width: w, height: h, x: x - hx, y: y - hy });
        else expect(c).toBeNull();
      } finally {
        await ch.remove();
        cam.close();
      }
    } finally {
      await other.close();
    }
  });

  it('re-attaches and re-registers every listener when QEMU is killed and started again with the same name', async () => {
    const display = new RecordingConsoleHandler();
    const audio = new RecordingAudioOutHandler();
    const dh = await vm.addConsoleListener(display);
    await waitFor('first Scanout', 30_000, () => display.scanouts.length > 0);
    const ah = await vm.addAudioOutListener(audio);
    // addAudioOutListener resolves once the peer handshake is done, but 7.2 sends Init only after
    // its Properties.GetAll on the new connection returned, which we answer in a later event-loop
    // turn: a kill right away leaves this registration with no Init at all (seen under load when
    // the Scanout was in before the audio handshake). The Scanout is awaited first so that window
    // is open in every run; wait for Init before the kill, and count the re-registration's Inits
    // from here.
    await waitFor('Init on the first audio registration', 30_000, () => audio.inits.length > 0);
    const initsBeforeKill = audio.inits.length;
    const gone = new Promise<string>((resolve) => vm.once('vm-gone', (_i: VmInfo, reason: string) => resolve(reason)));
    const firstUnique = vm.info.uniqueName;
    guest.kill('SIGKILL');
    const reason = await gone;
    expect(reason).toMatch(/vanished|closed|answer/);
    expect(vm.attached).toBe(false);
    expect(dh.active).toBe(false);
    expect(display.disables).toBeGreaterThan(0);
    expect(ah.active).toBe(false);
    expect(audio.finis).toContain(audio.inits[0].id); // the vanished voice is finished for the handler
    await guest.exited;

    const reattached = new Promise<number>((resolve) => vm.once('reattached', () => resolve(Date.now())));
    const scanoutsBefore = display.scanouts.length;
    const launched = Date.now();
    guest = await startGuest({ qemu, scenario: 'idle', busAddress: bus.address, name, uuid });
    const at = await Promise.race([reattached, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no reattach in 30 s')), 30_000))]);
    console.log(`[qemu-dbus] re-attached ${at - launched} ms after the new QEMU was launched`);
    expect(vm.attached).toBe(true);
    expect(vm.info.uniqueName).not.toBe(firstUnique);
    expect(dh.registrations).toBe(2);
    expect(ah.registrations).toBe(2);
    await waitFor('Scanout on the re-registered listener', 30_000, () => display.scanouts.length > scanoutsBefore);
    // QEMU replays Init for its existing voice to every new audio listener. On a timeout, say
    // what the listener did get: whether nothing arrived on the new connection or only Init.
    try {
      await waitFor('Init on the re-registered audio listener', 30_000, () => audio.inits.length > initsBeforeKill);
    } catch (e) {
      const seen = { inits: audio.inits.length, enabled: audio.enabled.length, writes: audio.writes, active: ah.active, stats: ah.stats, registrations: ah.registrations, attached: vm.attached };
      throw new Error(`${(e as Error).message}; audio listener saw ${JSON.stringify(seen, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`, { cause: e });
    }
  });
});

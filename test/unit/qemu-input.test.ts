// Keyboard/Mouse proxies against a fake peer: what reaches QEMU, and what is refused before it
// could (a mouse button outside 0..6 would abort a real QEMU). Plus: the generated proxies match
// their XML.
import { execFileSync } from 'child_process';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { audioInInterfaces, audioOutInterfaces, checkMouseButton, consoleListenerInterfaces, display1, MouseButton, QemuVm } from '../../src/qemu';
import { RecordingAudioInHandler, RecordingAudioOutHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';
import { FakeQemuPeer } from '../fakes/qemu-peer';

describe('input proxies (fake peer)', () => {
  let bus: DbusDaemon;
  let fake: FakeQemuPeer;
  let vm: QemuVm;

  beforeAll(async () => {
    bus = await startDbusDaemon();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: 'typist' });
    vm = await QemuVm.connect({ busAddress: bus.address, livenessIntervalMs: 0 });
  });
  afterAll(async () => {
    await vm?.close();
    await fake?.stop();
    await bus?.stop();
  });

  it('Keyboard.Press/Release send qnum values; out-of-range values are refused', async () => {
    const kb = vm.console().keyboard;
    await kb.press(0x1e);
    await kb.release(0x1e);
    await kb.press(0xc8); // E0 48 (Up) as 0x80|0x48
    expect(fake.keys).toEqual([
      ['press', 0x1e],
      ['release', 0x1e],
      ['press', 0xc8],
    ]);
    for (const bad of [0, 256, -1, 1.5, Number.NaN]) expect(() => kb.press(bad)).toThrow(expect.objectContaining({ code: 'EBAD_ARGUMENT' }));
    expect(fake.keys).toHaveLength(3);
  });

  it('Mouse buttons 0..6 go through; anything else never leaves the process', async () => {
    const mouse = vm.console().mouse;
    for (const b of Object.values(MouseButton)) {
      await mouse.press(b);
      await mouse.release(b);
    }
    await mouse.wheel(true);
    expect(fake.buttons).toHaveLength(16);
    for (const bad of [7, 8, 9, 10, 255, -1, 2.5, 2 ** 32]) {
      expect(() => mouse.press(bad)).toThrow(expect.objectContaining({ code: 'EBAD_ARGUMENT' }));
      expect(() => mouse.release(bad)).toThrow(expect.objectContaining({ code: 'EBAD_ARGUMENT' }));
      expect(() => checkMouseButton(bad)).toThrow(/0\.\.6/);
    }
    expect(fake.buttons).toHaveLength(16);
    expect(fake.aborted).toBeUndefined();
    expect(await mouse.isAbsolute()).toBe(true);
  });

  it('QEMU\'s Error.Invalid from the mouse becomes the code of its cause (by name and the console size, never the text)', async () => {
    const mouse = vm.console().mouse;
    const codeOf = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'accepted', (e: { code?: string; dbusName?: string }) => [e.code, e.dbusName]);
    const invalid = 'org.qemu.Display1.Error.Invalid';
    expect(await codeOf(mouse.setAbsPosition(639, 479))).toBe('accepted');
    expect(await codeOf(mouse.setAbsPosition(640, 10))).toEqual(['EMOUSE_POSITION', invalid]);
    expect(await codeOf(mouse.relMotion(1, 1))).toEqual(['EMOUSE_NOT_RELATIVE', invalid]);
    fake.mouseAbsolute = false;
    try {
      expect(await codeOf(mouse.setAbsPosition(10, 10))).toEqual(['EMOUSE_NOT_ABSOLUTE', invalid]);
      expect(await codeOf(mouse.relMotion(1, -1))).toBe('accepted');
    } finally {
      fake.mouseAbsolute = true;
    }
    expect(fake.absPositions).toEqual([[639, 479]]);
    expect(fake.relMotions).toEqual([[1, -1]]);
  });

  it('console size and properties come through the generated proxy', async () => {
    expect(await vm.console().size()).toEqual({ width: 640, height: 480 });
    const p = await vm.console().properties();
    expect(p).toMatchObject({ Label: 'VGA', Type: 'Graphic', Head: 0 });
  });
});

describe('generated Display1 proxies', () => {
  it('are up to date with src/qemu/generated/display1.xml', () => {
    const root = path.join(__dirname, '..', '..');
    execFileSync('node', [path.join(root, 'scripts', 'gen-display1.js'), '--check'], { stdio: 'pipe' });
  });

  it('carry QEMU 7.2 signatures and mark later additions with their release', () => {
    const t = display1.DISPLAY1;
    expect(t['org.qemu.Display1.Console'].methods.RegisterListener).toEqual({ in: 'h', out: '' });
    expect(t['org.qemu.Display1.Listener'].methods.Update.in).toBe('iiiiuuay');
    expect(t['org.qemu.Display1.AudioInListener'].methods.Read).toEqual({ in: 'tt', out: 'ay' });
    expect(t['org.qemu.Display1.MultiTouch'].since).toBe('8.1');
    expect(t['org.qemu.Display1.Listener.Unix.Map'].since).toBe('9.2');
    expect(t['org.qemu.Display1.Audio'].properties.NSamples).toEqual({ type: 'u', since: '10.0' });
  });

  it('the listener objects we serve implement the client-side interfaces of the XML with the same signatures', () => {
    const served = [
      ...consoleListenerInterfaces(new RecordingConsoleHandler(true), true),
      ...audioOutInterfaces(new RecordingAudioOutHandler()),
      ...audioInInterfaces(new RecordingAudioInHandler()),
    ];
    const clientSide = Object.entries(display1.DISPLAY1).filter(([, i]) => i.side === 'client');
    for (const [name, info] of clientSide) {
      if (name === 'org.qemu.Display1.Listener.Unix.ScanoutDMABUF2') continue; // GL only: never offered
      const ours = served.find((i) => i.name === name);
      expect(ours, name).toBeDefined();
      for (const [member, m] of Object.entries(info.methods)) {
        expect({ member, in: ours!.methods[member]?.in, out: ours!.methods[member]?.out }).toEqual({ member, in: m.in, out: m.out });
      }
      for (const [prop, p] of Object.entries(info.properties)) expect(ours!.properties?.[prop]?.[0], `${name}.${prop}`).toBe(p.type);
    }
  });
});

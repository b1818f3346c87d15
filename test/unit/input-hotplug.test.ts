// Hot-plug with a fake /dev/input: a temp directory watched with the real fs.watch, and FIFOs
// standing in for device nodes (created = plugged in, unlinked = unplugged).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputBridge } from '../../src/input/bridge';
import { InputDeviceInfo, StreamSource } from '../../src/input/device';
import { RecordingVmInput, sentAfterAttach } from '../fakes/input';
import { EventScript } from '../../src/input/replay-writer';
import { parseInputRule, ruleMatches } from '../../src/input/selection';
import { tempDir, waitFor } from '../harness/procs';
import { lineLogger } from '../fakes/logger';

let dir: string;
let bridge: InputBridge | undefined;
beforeEach(() => {
  dir = tempDir('hotplug');
});
afterEach(async () => {
  await bridge?.stop();
  bridge = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const mkfifo = (p: string) => execFileSync('mkfifo', [p]);
const write = (p: string, s: EventScript) => fs.writeFileSync(p, s.encode());

function info(over: Partial<InputDeviceInfo>): InputDeviceInfo {
  return {
    name: 'dev',
    phys: '',
    uniq: '',
    bustype: 3,
    vendor: 0,
    product: 0,
    version: 1,
    keyboard: false,
    mouse: false,
    absolutePointer: false,
    hiResWheel: false,
    hasLeds: false,
    ...over,
  };
}

describe('selection rules', () => {
  it('parses paths, name regexes, vendor:product and the "all" rules; rejects the rest clearly', () => {
    expect(parseInputRule('/dev/input/by-id/usb-kbd-event-kbd')).toEqual({ kind: 'path', path: '/dev/input/by-id/usb-kbd-event-kbd' });
    expect(parseInputRule('all-keyboards')).toEqual({ kind: 'all-keyboards' });
    expect(parseInputRule('all mice')).toEqual({ kind: 'all-mice' });
    expect(parseInputRule('id:046d:C52B')).toEqual({ kind: 'id', vendor: 0x046d, product: 0xc52b });
    expect(parseInputRule('046d:c52b')).toEqual({ kind: 'id', vendor: 0x046d, product: 0xc52b });
    const r = parseInputRule('name:^Logitech.*Mouse$');
    expect(r.kind === 'name' && r.pattern.test('Logitech USB Mouse')).toBe(true);
    expect(() => parseInputRule('name:(')).toThrow(/bad regular expression/);
    expect(() => parseInputRule('event3')).toThrow(expect.objectContaining({ code: 'EINVALIDINPUT', message: expect.stringMatching(/all-keyboards or all-mice/) }));
  });

  it('matches devices by what they are', () => {
    const kbd = info({ name: 'AT Translated Set 2 keyboard', keyboard: true, vendor: 1, product: 1 });
    const tablet = info({ name: 'Wacom Tablet', absolutePointer: true });
    expect(ruleMatches(parseInputRule('all-keyboards'), '/x', kbd)).toBe(true);
    expect(ruleMatches(parseInputRule('all-keyboards'), '/x', tablet)).toBe(false);
    expect(ruleMatches(parseInputRule('all-mice'), '/x', tablet)).toBe(true);
    expect(ruleMatches(parseInputRule('name:AT Translated'), '/x', kbd)).toBe(true);
    expect(ruleMatches(parseInputRule('0001:0001'), '/x', kbd)).toBe(true);
    expect(ruleMatches(parseInputRule('all-keyboards'), '/x', null)).toBe(false); // plain streams: paths only
  });
});

describe('hot-plug (fs.watch on a fake input directory, FIFOs as devices)', () => {
  it('--input PATH: opened when it appears, closed with its keys released when it goes, picked up again', async () => {
    const byId = path.join(dir, 'by-id');
    fs.mkdirSync(byId);
    const node = path.join(byId, 'usb-Fake_Keyboard-event-kbd');
    const vm = new RecordingVmInput();
    const logs: string[] = [];
    bridge = new InputBridge({ inputs: [node], grabToggle: 'none', log: lineLogger((m) => logs.push(m), 'input') });
    bridge.setVm(vm);
    bridge.start();
    expect(bridge.sources()).toEqual([]); // not there yet

    mkfifo(node);
    await waitFor('device opened', 10_000, () => bridge!.sources().length === 1);
    write(node, new EventScript().key(42, 1).tap(30)); // Shift held, 'A' typed
    await waitFor('3 calls', 10_000, () => sentAfterAttach(vm).length >= 3);

    fs.unlinkSync(node); // unplugged with Shift down
    await waitFor('device closed', 10_000, () => bridge!.sources().length === 0);
    await waitFor('shift released', 10_000, () => vm.stuck().keys.length === 0);
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'keyPress', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x2a },
    ]);

    mkfifo(node); // plugged back in
    await waitFor('device re-opened', 10_000, () => bridge!.sources().length === 1);
    write(node, new EventScript().tap(48));
    await waitFor('B typed', 10_000, () => sentAfterAttach(vm).length >= 6);
    expect(sentAfterAttach(vm).slice(4)).toEqual([
      { op: 'keyPress', qnum: 0x30 },
      { op: 'keyRelease', qnum: 0x30 },
    ]);
    expect(logs.filter((l) => l.startsWith(`input: using ${node}`)).length).toBe(2);
  });

  it('match rules: only matching eventN nodes are opened, including ones that appear later', async () => {
    const infos: Record<string, InputDeviceInfo> = {
      event2: info({ name: 'Power Button' }),
      event3: info({ name: 'Fake Keyboard', keyboard: true }),
      event5: info({ name: 'Fake Mouse', mouse: true }),
      event9: info({ name: 'Second Keyboard', keyboard: true }),
    };
    for (const n of ['event2', 'event3', 'event5']) mkfifo(path.join(dir, n));
    fs.writeFileSync(path.join(dir, 'mice'), ''); // not an eventN node: ignored
    const vm = new RecordingVmInput();
    const opened: string[] = [];
    bridge = new InputBridge({
      inputs: ['all-keyboards'],
      grabToggle: 'none',
      watcher: {
        inputDir: dir,
        open: (p) => {
          opened.push(path.basename(p));
          return new StreamSource(p, infos[path.basename(p)] ?? null);
        },
      },
    });
    bridge.setVm(vm);
    bridge.start();
    expect(bridge.sources().map((s) => path.basename(s.path))).toEqual(['event3']);
    expect(opened).toEqual(['event2', 'event3', 'event5']); // probed, non-matching closed again

    mkfifo(path.join(dir, 'event9'));
    await waitFor('second keyboard', 10_000, () => bridge!.sources().length === 2);
    write(path.join(dir, 'event9'), new EventScript().tap(30));
    // the mouse was probed and closed again: nobody reads it (a non-blocking open proves it)
    expect(() => fs.openSync(path.join(dir, 'event5'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)).toThrow(expect.objectContaining({ code: 'ENXIO' }));
    await waitFor('A from the new keyboard', 10_000, () => sentAfterAttach(vm).length >= 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
  });

  it('retries a node that is not accessible yet (udev sets permissions after creation)', async () => {
    const node = path.join(dir, 'kbd');
    let attempts = 0;
    const vm = new RecordingVmInput();
    bridge = new InputBridge({
      inputs: [node],
      grabToggle: 'none',
      watcher: {
        retryDelayMs: 20,
        open: (p) => {
          if (++attempts < 3) throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
          return new StreamSource(p);
        },
      },
    });
    bridge.setVm(vm);
    mkfifo(node);
    bridge.start();
    await waitFor('opened after retries', 10_000, () => bridge!.sources().length === 1);
    expect(attempts).toBe(3);
  });
});

describe('hot-plug when the input directory does not exist yet', () => {
  it('waits for the directory through its parent, then picks the device up', async () => {
    const byId = path.join(dir, 'by-id'); // not created yet: no device ever plugged in
    const node = path.join(byId, 'usb-Late_Keyboard-event-kbd');
    const vm = new RecordingVmInput();
    bridge = new InputBridge({ inputs: [node], grabToggle: 'none' });
    bridge.setVm(vm);
    bridge.start();
    fs.mkdirSync(byId);
    await new Promise((r) => setTimeout(r, 100));
    mkfifo(node);
    await waitFor('device opened', 10_000, () => bridge!.sources().length === 1);
    write(node, new EventScript().tap(30));
    await waitFor('A typed', 10_000, () => sentAfterAttach(vm).length >= 2);
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
  });
});

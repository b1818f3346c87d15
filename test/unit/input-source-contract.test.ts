// One contract suite for every InputEventSource we can run here: the in-memory fake, the real
// plain-stream reader on a FIFO (what --input-replay and ENOTTY fallbacks use), and EvdevSource's
// TypeScript side over a fake native device. EvdevSource over the real addon needs a /dev/input
// node, which this machine class does not have (see src/input/README.md).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { EvdevSource, InputEventSource, openInputSource } from '../../src/input/device';
import { EV_REL, EV_SYN, InputEvent, encodeEvents } from '../../src/input/events';
import { FakeEventSource, FakeNativeDevice, RecordingVmInput, fakeEvdevNative, sentAfterAttach } from '../../src/input/fakes';
import { InputBridge } from '../../src/input/bridge';
import { EventScript } from '../../src/input/replay-writer';
import { tempDir, waitFor } from '../harness/procs';
import { lineLogger } from '../fakes/logger';

interface Driver {
  source: InputEventSource;
  feed(events: InputEvent[]): void;
  cleanup(): void;
}

const drivers: Record<string, () => Driver> = {
  fake: () => {
    const source = new FakeEventSource('/fake/event0');
    return { source, feed: (e) => source.push(e), cleanup: () => undefined };
  },
  'evdev source (fake native device)': () => {
    const source = new EvdevSource('/dev/input/event7', fakeEvdevNative({ name: 'Fake', phys: '', uniq: '', bustype: 3, vendor: 1, product: 2, version: 1, driverVersion: 1, events: {}, abs: {} }));
    const dev = FakeNativeDevice.last;
    return { source, feed: (e) => dev.emit(e), cleanup: () => undefined };
  },
  'fifo stream': () => {
    const dir = tempDir('contract');
    const fifo = path.join(dir, 'event0');
    execFileSync('mkfifo', [fifo]);
    const source = openInputSource(fifo);
    return {
      source,
      feed: (e) => fs.writeFileSync(fifo, encodeEvents(e)),
      cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  },
};

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function make(name: string): Driver {
  const d = drivers[name]();
  cleanups.push(() => {
    d.source.close();
    d.cleanup();
  });
  return d;
}

const sample = (n: number, base = 0): InputEvent[] =>
  Array.from({ length: n }, (_, i) => ({ type: i % 3 === 2 ? EV_SYN : EV_REL, code: i % 2, value: base + i - 7, timeUs: 1_000_000 * (base + 1) + i }));

describe.each(Object.keys(drivers))('InputEventSource contract: %s', (name) => {
  it('delivers every event fed to it, whole and in order', async () => {
    const d = make(name);
    const got: InputEvent[] = [];
    d.source.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
    d.feed(sample(50));
    d.feed(sample(1000, 50));
    await waitFor('1050 events', 10_000, () => got.length >= 1050);
    expect(got).toEqual([...sample(50), ...sample(1000, 50)]);
  });

  it('grab and LED calls are safe whatever the source can do, and say whether grabbing is possible', () => {
    const d = make(name);
    d.source.start({ onEvents: () => undefined, onEnd: () => undefined });
    expect(typeof d.source.canGrab).toBe('boolean');
    expect(() => d.source.grab(true)).not.toThrow();
    expect(() => d.source.setLeds(7)).not.toThrow();
    expect(() => d.source.grab(false)).not.toThrow();
  });

  it('after close nothing more is delivered, and close is idempotent', async () => {
    const d = make(name);
    const got: InputEvent[] = [];
    d.source.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
    d.feed(sample(3));
    await waitFor('3 events', 10_000, () => got.length >= 3);
    d.source.close();
    d.source.close();
    if (name === 'fake') expect(() => d.feed(sample(3))).toThrow();
    await new Promise((r) => setTimeout(r, 100));
    expect(got.length).toBe(3);
  });

  it('drives the bridge to exactly the VM calls of the same script', async () => {
    const d = make(name);
    const vm = new RecordingVmInput();
    // attached as a replay input, the path --input-replay takes
    const bridge = new InputBridge({ replay: [d.source.path], grabToggle: 'none', watcher: { open: () => d.source } });
    bridge.setVm(vm);
    bridge.start();
    const script = new EventScript().typeText('Ok 1').move(3, -4).click(0x110).wheel(-1);
    d.feed(script.events.map((e) => ({ timeUs: 0, ...e })));
    await waitFor('all VM calls', 10_000, () => sentAfterAttach(vm).length >= 15);
    await bridge.stop();
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'keyPress', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x18 },
      { op: 'keyRelease', qnum: 0x18 },
      { op: 'keyRelease', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x25 },
      { op: 'keyRelease', qnum: 0x25 },
      { op: 'keyPress', qnum: 0x39 },
      { op: 'keyRelease', qnum: 0x39 },
      { op: 'keyPress', qnum: 0x02 },
      { op: 'keyRelease', qnum: 0x02 },
      { op: 'rel', dx: 3, dy: -4 },
      { op: 'mousePress', button: 0 },
      { op: 'mouseRelease', button: 0 },
      { op: 'mousePress', button: 4 },
      { op: 'mouseRelease', button: 4 },
    ]);
  });
});

describe('replay from a regular file', () => {
  it('plays the file through to EOF, then releases whatever the file left held', async () => {
    const dir = tempDir('replay');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'session.bin');
    // Shift+A pressed, never released in the recording
    fs.writeFileSync(file, encodeEvents([...new EventScript().key(42, 1).key(30, 1).events]));
    const vm = new RecordingVmInput();
    const logs: string[] = [];
    const bridge = new InputBridge({ replay: [file], grabToggle: 'none', log: lineLogger((m) => logs.push(m), 'input') });
    bridge.setVm(vm);
    bridge.start();
    await waitFor('presses and their releases', 10_000, () => sentAfterAttach(vm).length >= 4);
    await bridge.settled();
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'keyPress', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x2a },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
    expect(logs.filter((l) => /not an evdev device \(ENOTTY\)/.test(l)).length).toBe(1);
    expect(bridge.sources()).toEqual([]);
    await bridge.stop();
  });

  it('EV_KEY codes in a replay drive the mouse too (one stream may mix devices)', async () => {
    const dir = tempDir('replay');
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'mixed.bin');
    fs.writeFileSync(file, new EventScript().key(0x111, 1).key(0x111, 0).encode());
    const vm = new RecordingVmInput();
    const bridge = new InputBridge({ replay: [file], grabToggle: 'none' });
    bridge.setVm(vm);
    bridge.start();
    await waitFor('right click', 10_000, () => sentAfterAttach(vm).length >= 2);
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'mousePress', button: 2 },
      { op: 'mouseRelease', button: 2 },
    ]);
    await bridge.stop();
  });
});

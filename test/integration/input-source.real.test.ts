// The input source contract (test/contracts/input-source.contract.ts) against the real
// plain-stream reader on a FIFO (what --input-replay and the ENOTTY fallback of openInputSource
// use), and replay through the bridge from a regular file. The fakes run the contract in
// test/unit/input-source.fake.test.ts.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { openInputSource } from '../../src/input/device';
import { encodeEvents } from '../../src/input/events';
import { InputBridge } from '../../src/input/bridge';
import { EventScript } from '../../src/input/replay-writer';
import { inputSourceContract } from '../contracts/input-source.contract';
import { RecordingVmInput, sentAfterAttach } from '../fakes/input';
import { lineLogger } from '../fakes/logger';
import { tempDir, waitFor } from '../harness/procs';

inputSourceContract('FIFO stream (openInputSource falls back from evdev)', () => {
  const dir = tempDir('contract');
  const fifo = path.join(dir, 'event0');
  execFileSync('mkfifo', [fifo]);
  const source = openInputSource(fifo);
  return {
    source,
    canGrab: false,
    feed: (e) => fs.writeFileSync(fifo, encodeEvents(e)),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
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

// The evdev part of the addon against the real kernel ABI: struct input_event as laid out by the
// kernel header, real ioctls failing with ENOTTY on FIFOs and plain files, and kernel-layout
// records travelling through a real FIFO into the TypeScript reader.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native';
import { EvdevSource, StreamSource, openInputSource } from '../../src/input/device';
import { EV_KEY, EV_REL, EV_SYN, INPUT_EVENT_SIZE, InputEvent, InputEventDecoder, decodeEvent, encodeEvents } from '../../src/input/events';
import { tempDir, waitFor } from '../harness/procs';
import { lineLogger } from '../fakes/logger';

let dir: string;
beforeEach(() => {
  dir = tempDir('evdev');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
}

describe('struct input_event codec', () => {
  it('matches the kernel header layout (x86_64: 24 bytes, type at 16, code 18, value 20)', () => {
    expect(native.evdevEventLayout).toBeTypeOf('function');
    expect(native.evdevEventLayout!()).toEqual({ size: INPUT_EVENT_SIZE, sec: 0, usec: 8, type: 16, code: 18, value: 20 });
  });

  it('encodes byte-for-byte what C code packs with the kernel struct, and decodes it back', () => {
    const cases: Array<[number, number, number, number, number]> = [
      [EV_KEY, 30, 1, 1_700_000_000, 123_456],
      [EV_REL, 0, -5, 0, 999_999],
      [EV_SYN, 0, 0, 2_000_000_000, 0],
      [0xffff, 0xffff, -2147483648, 1, 1],
      [3, 1, 2147483647, 42, 7],
    ];
    for (const [type, code, value, sec, usec] of cases) {
      const c = native.evdevPackEvent!(type, code, value, sec, usec);
      const ts = encodeEvents([{ type, code, value, timeUs: sec * 1e6 + usec }]);
      expect(ts.equals(c)).toBe(true);
      expect(decodeEvent(c, 0)).toEqual({ type, code, value, timeUs: sec * 1e6 + usec });
    }
  });

  it('the decoder reassembles records split at any byte', () => {
    const evs: InputEvent[] = Array.from({ length: 5 }, (_, i) => ({ type: EV_KEY, code: 30 + i, value: i % 2, timeUs: 1e6 * i + i }));
    const bytes = encodeEvents(evs);
    for (const cut of [1, 7, 23, 24, 25, 47, 100]) {
      const d = new InputEventDecoder();
      const out = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      expect(out).toEqual(evs);
      expect(d.pendingBytes).toBe(0);
    }
  });
});

describe('real ioctls on things that are not evdev nodes', () => {
  it('EvdevDevice on a FIFO fails with ENOTTY from libevdev_new_from_fd', () => {
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    expect(() => new native.EvdevDevice!(fifo, new Float64Array(16), () => undefined)).toThrow(
      expect.objectContaining({ code: 'ENOTTY', message: expect.stringContaining(`libevdev_new_from_fd(${fifo})`) }),
    );
  });

  it('EvdevDevice on a regular file and on /dev/null fails with ENOTTY; on a missing path with ENOENT', () => {
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, Buffer.alloc(48));
    expect(() => new EvdevSource(file)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
    expect(() => new EvdevSource('/dev/null')).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
    expect(() => new EvdevSource(path.join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('bare EVIOCGRAB on a FIFO fd and a file fd: ENOTTY; on a closed fd: EBADF', () => {
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    const fifoFd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, '');
    const fileFd = fs.openSync(file, 'r');
    try {
      expect(() => native.evdevGrabFd!(fifoFd, true)).toThrow(expect.objectContaining({ code: 'ENOTTY', message: expect.stringMatching(/^EVIOCGRAB: /) }));
      expect(() => native.evdevGrabFd!(fileFd, false)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
    } finally {
      fs.closeSync(fifoFd);
      fs.closeSync(fileFd);
    }
    expect(() => native.evdevGrabFd!(fileFd, true)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('rejects garbage arguments with code EINVAL instead of crashing', () => {
    const einval = expect.objectContaining({ code: 'EINVAL' }) as Error;
    const Ctor = native.EvdevDevice as unknown as new (...a: unknown[]) => unknown;
    expect(() => new Ctor()).toThrow(einval);
    expect(() => new Ctor('/dev/null', new Int32Array(8), () => 0)).toThrow(einval);
    expect(() => new Ctor('/dev/null', new Float64Array(2), () => 0)).toThrow(einval);
    expect(() => new Ctor(42, new Float64Array(8), () => 0)).toThrow(einval);
    expect(() => (native.evdevGrabFd as unknown as (x: unknown) => void)('x')).toThrow(einval);
    expect(() => (native.evdevPackEvent as unknown as (...x: unknown[]) => void)(1, 2)).toThrow(einval);
  });

  it('openInputSource falls back to a plain stream on ENOTTY and says so once', () => {
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    const logs: string[] = [];
    const src = openInputSource(fifo, { log: lineLogger((m) => logs.push(m), 'input') });
    expect(src).toBeInstanceOf(StreamSource);
    expect(src.canGrab).toBe(false);
    expect(src.info).toBeNull();
    expect(logs).toEqual([expect.stringMatching(/is not an evdev device \(ENOTTY\): reading it as a plain struct input_event stream/)]);
    src.close();
  });

  it('openInputSource explains a missing device', () => {
    expect(() => openInputSource(path.join(dir, 'nope'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', problem: expect.stringMatching(/nope does not exist$/), fix: expect.stringMatching(/^check the path/) }),
    );
  });
});

describe('kernel-layout records through a real FIFO', () => {
  it('arrive intact and in order in the TypeScript reader, across several writers', async () => {
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    const src = openInputSource(fifo);
    const got: InputEvent[] = [];
    const ends: string[] = [];
    src.start({ onEvents: (e) => got.push(...e), onEnd: (r) => ends.push(r) });
    const expected: InputEvent[] = [];
    for (let w = 0; w < 3; w++) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < 100; i++) {
        const ev = { type: EV_REL, code: i % 2, value: w * 1000 + i - 50, timeUs: (1_700_000_000 + w) * 1e6 + i };
        expected.push(ev);
        chunks.push(native.evdevPackEvent!(ev.type, ev.code, ev.value, 1_700_000_000 + w, i));
      }
      fs.writeFileSync(fifo, Buffer.concat(chunks)); // opens, writes, closes: a writer comes and goes
    }
    await waitFor('300 events from the FIFO', 10_000, () => got.length >= 300);
    expect(got).toEqual(expected);
    expect(ends).toEqual([]); // writers closing is not the end of the "device"
    src.close();
  });
});

describe('replay writer helpers', () => {
  it('frames() cuts at SYN_REPORT and writePaced writes the same bytes as encode()', async () => {
    const { EventScript, writePaced, keystrokesFor } = await import('../../src/input/replay-writer');
    const s = new EventScript().typeText('A b').move(1, 2);
    expect(s.frames().length).toBe(s.events.filter((e) => e.type === EV_SYN).length);
    expect(s.frames().every((f) => f[f.length - 1].type === EV_SYN)).toBe(true);
    const file = path.join(dir, 'paced.bin');
    await writePaced(file, s, 1);
    expect(fs.readFileSync(file).equals(s.encode())).toBe(true);
    expect(keystrokesFor('A~\n')).toEqual([
      [30, true],
      [41, true],
      [28, false],
    ]);
    expect(() => keystrokesFor('é')).toThrow(/no US-layout key/);
  });
});

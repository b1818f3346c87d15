// Kernel tier, input group (runs INSIDE the guest, as root; test/kernel/input.test.ts boots it):
// the input source contract (test/contracts/input-source.contract.ts) against EvdevSource over the
// real backend (evdevBackend: the addon's libevdev reader) on a uinput device with keys, buttons,
// a wheel and LEDs. What the fake EvdevBackend claims in test/unit/input-source.fake.test.ts holds
// on the kernel's evdev.
import { afterAll, beforeAll } from 'vitest';
import { EvdevSource } from '../../../src/input/device';
import { EV_KEY, EV_LED, EV_SYN, SYN_REPORT, type InputEvent } from '../../../src/input/events';
import { inputSourceContract } from '../../contracts/input-source.contract';
import { UinputFactory } from './tools';

const KEYS = [30, 48, 46, 32, 18]; // A B C D E

/** n events (n a multiple of 4): press/release frames of KEYS in turn, every key released at the end. */
function keySample(n: number, base: number): InputEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const j = base + i;
    const frame = j >> 1;
    if (j % 2 === 1) return { type: EV_SYN, code: SYN_REPORT, value: 0, timeUs: 0 };
    return { type: EV_KEY, code: KEYS[(frame >> 1) % KEYS.length], value: frame % 2 === 0 ? 1 : 0, timeUs: 0 };
  });
}

/**
 * Type, code and value of the frames we fed: the kernel stamps its own times, and every reader
 * also sees the LED changes written to the device (by the source itself, by the console keyboard
 * handler when EVIOCGRAB is released), each with its own SYN_REPORT. The bridge ignores EV_LED.
 */
function fedFrames(events: InputEvent[]): unknown[] {
  const out: unknown[] = [];
  let frame: unknown[] = [];
  for (const { type, code, value } of events) {
    if (type === EV_LED) continue;
    if (type === EV_SYN && code === SYN_REPORT) {
      if (frame.length) out.push(...frame, { type, code, value });
      frame = [];
    } else frame.push({ type, code, value });
  }
  return out;
}

let uinput: UinputFactory;
let node: string;

beforeAll(async () => {
  uinput = await UinputFactory.start();
  node = await uinput.create('contract', 'combo', 'kdev contract device', 0x1d6b, 0x0401);
});

afterAll(async () => {
  await uinput?.stop();
});

inputSourceContract('evdev over the real backend (uinput device)', () => {
  const source = new EvdevSource(node);
  // frames go to the factory in order, one command each (it adds the SYN_REPORT)
  let chain: Promise<void> = Promise.resolve();
  const feed = (events: InputEvent[]): void => {
    let frame: [number, number, number][] = [];
    for (const e of events) {
      if (e.type === EV_SYN && e.code === SYN_REPORT) {
        const f = frame;
        chain = chain.then(() => uinput.frame('contract', ...f));
        frame = [];
      } else frame.push([e.type, e.code, e.value]);
    }
    if (frame.length) throw new Error('evdev contract driver: feed whole frames (ending in SYN_REPORT)');
  };
  return { source, canGrab: true, feed, feedAfterClose: feed, sample: keySample, project: fedFrames, burst: 200, cleanup: () => undefined };
});

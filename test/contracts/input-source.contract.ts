// The input source boundary: what the bridge relies on from every InputEventSource. Run against
// the fakes (test/unit/input-source.fake.test.ts: the in-memory source, EvdevSource over the fake
// EvdevBackend) and the real plain-stream reader on a FIFO (test/integration/input-source.real.test.ts,
// what --input-replay and the ENOTTY fallback use). EvdevSource over the real backend needs a
// /dev/input node, which only the kernel tier's guest has (test/kernel/guest/input.guest.ts
// exercises it through the bridge's CLI; see src/input/README.md).
import { describe, expect, it } from 'vitest';
import type { InputEventSource } from '../../src/input/device';
import { EV_REL, EV_SYN, InputEvent } from '../../src/input/events';
import { InputBridge } from '../../src/input/bridge';
import { EventScript } from '../../src/input/replay-writer';
import { RecordingVmInput, sentAfterAttach } from '../fakes/input';
import { waitFor } from '../harness/procs';

export interface SourceUnderTest {
  source: InputEventSource;
  /** what the source can do about EVIOCGRAB (plain streams: nothing) */
  canGrab: boolean;
  /** makes the "device" produce these events (whole frames, each ending in an EV_SYN) */
  feed(events: InputEvent[]): void;
  /** feeds after close() where the driver can do that without blocking (a FIFO without reader would) */
  feedAfterClose?: (events: InputEvent[]) => void;
  /** events this device can produce: n of them (n a multiple of 4), every key released at the end; default REL/SYN records */
  sample?: (n: number, base: number) => InputEvent[];
  /**
   * What of the delivered events the contract compares; default all of them, exactly. A kernel
   * evdev node stamps its own times and also reports the LED changes its readers write (EV_LED).
   */
  project?: (events: InputEvent[]) => unknown[];
  /** size of the delivery test's second burst; default 1000 */
  burst?: number;
  cleanup(): void;
}

/** n records of REL and SYN with distinct values and times: what a stream or a fake carries through. */
const relSample = (n: number, base = 0): InputEvent[] =>
  Array.from({ length: n }, (_, i) => ({ type: i % 3 === 2 ? EV_SYN : EV_REL, code: i % 2, value: base + i - 7, timeUs: 1_000_000 * (base + 1) + i }));

export function inputSourceContract(name: string, start: () => SourceUnderTest): void {
  /** Runs `fn` on a freshly started driver, then closes the source and cleans up. No per-test
   * hooks: the kernel tier's runner has describe/it/beforeAll/afterAll only. */
  const withSource = async (fn: (d: SourceUnderTest, sample: (n: number, base?: number) => InputEvent[], seen: (e: InputEvent[]) => unknown[]) => Promise<void>): Promise<void> => {
    const d = start();
    const sample = (n: number, base = 0): InputEvent[] => (d.sample ?? relSample)(n, base);
    const seen = (e: InputEvent[]): unknown[] => (d.project ? d.project(e) : e);
    try {
      await fn(d, sample, seen);
    } finally {
      d.source.close();
      d.cleanup();
    }
  };

  describe(`InputEventSource contract: ${name}`, () => {
    it('delivers every event fed to it, whole and in order', () =>
      withSource(async (d, sample, seen) => {
        const got: InputEvent[] = [];
        d.source.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
        const burst = d.burst ?? 1000;
        d.feed(sample(48));
        d.feed(sample(burst, 48));
        const want = seen([...sample(48), ...sample(burst, 48)]);
        await waitFor(`${want.length} events`, 30_000, () => seen(got).length >= want.length);
        expect(seen(got)).toEqual(want);
      }));

    it('says whether it can grab; grab, LEDs and ungrab neither end it nor stop its events', () =>
      withSource(async (d, sample, seen) => {
        const got: InputEvent[] = [];
        const ends: string[] = [];
        d.source.start({ onEvents: (e) => got.push(...e), onEnd: (r) => ends.push(r) });
        expect(d.source.canGrab).toBe(d.canGrab);
        d.source.grab(true);
        d.source.setLeds(7);
        d.feed(sample(4));
        await waitFor('4 events while grabbed', 10_000, () => seen(got).length >= seen(sample(4)).length);
        d.source.grab(false);
        d.feed(sample(4, 4));
        const want = seen([...sample(4), ...sample(4, 4)]);
        await waitFor('4 more after the ungrab', 10_000, () => seen(got).length >= want.length);
        expect(seen(got)).toEqual(want);
        expect(ends).toEqual([]);
      }));

    it('after close nothing more is delivered, and close is idempotent', () =>
      withSource(async (d, sample, seen) => {
        const got: InputEvent[] = [];
        d.source.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
        d.feed(sample(4));
        const want = seen(sample(4));
        await waitFor('4 events', 10_000, () => seen(got).length >= want.length);
        d.source.close();
        d.source.close();
        const before = got.length;
        d.feedAfterClose?.(sample(4, 4));
        await new Promise((r) => setTimeout(r, 300));
        expect(got.length).toBe(before);
        expect(seen(got)).toEqual(want);
      }));

    it('drives the bridge to exactly the VM calls of the same script', () =>
      withSource(async (d) => {
        const vm = new RecordingVmInput();
        // attached as a replay input, the path --input-replay takes
        const bridge = new InputBridge({ replay: [d.source.path], grabToggle: 'none', watcher: { open: () => d.source } });
        bridge.setVm(vm);
        bridge.start();
        const script = new EventScript().typeText('Ok 1').move(3, -4).click(0x110).wheel(-1);
        d.feed(script.events.map((e) => ({ timeUs: 0, ...e })));
        await waitFor('all VM calls', 30_000, () => sentAfterAttach(vm).length >= 15);
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
      }));
  });
}

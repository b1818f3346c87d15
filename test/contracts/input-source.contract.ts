// The input source boundary: what the bridge relies on from every InputEventSource. Run against
// the fakes (test/unit/input-source.fake.test.ts: the in-memory source, EvdevSource over the fake
// EvdevBackend) and the real plain-stream reader on a FIFO (test/integration/input-source.real.test.ts,
// what --input-replay and the ENOTTY fallback use). EvdevSource over the real backend needs a
// /dev/input node, which only the kernel tier's guest has (test/kernel/guest/input.guest.ts
// exercises it through the bridge's CLI; see src/input/README.md).
import { afterEach, describe, expect, it } from 'vitest';
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
  /** makes the "device" produce these events */
  feed(events: InputEvent[]): void;
  /** feeds after close() where the driver can do that without blocking (a FIFO without reader would) */
  feedAfterClose?: (events: InputEvent[]) => void;
  cleanup(): void;
}

const sample = (n: number, base = 0): InputEvent[] =>
  Array.from({ length: n }, (_, i) => ({ type: i % 3 === 2 ? EV_SYN : EV_REL, code: i % 2, value: base + i - 7, timeUs: 1_000_000 * (base + 1) + i }));

export function inputSourceContract(name: string, start: () => SourceUnderTest): void {
  describe(`InputEventSource contract: ${name}`, () => {
    const cleanups: Array<() => void> = [];
    afterEach(() => {
      while (cleanups.length) cleanups.pop()!();
    });
    const make = (): SourceUnderTest => {
      const d = start();
      cleanups.push(() => {
        d.source.close();
        d.cleanup();
      });
      return d;
    };

    it('delivers every event fed to it, whole and in order', async () => {
      const d = make();
      const got: InputEvent[] = [];
      d.source.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
      d.feed(sample(50));
      d.feed(sample(1000, 50));
      await waitFor('1050 events', 10_000, () => got.length >= 1050);
      expect(got).toEqual([...sample(50), ...sample(1000, 50)]);
    });

    it('says whether it can grab; grab, LEDs and ungrab neither end it nor stop its events', async () => {
      const d = make();
      const got: InputEvent[] = [];
      const ends: string[] = [];
      d.source.start({ onEvents: (e) => got.push(...e), onEnd: (r) => ends.push(r) });
      expect(d.source.canGrab).toBe(d.canGrab);
      d.source.grab(true);
      d.source.setLeds(7);
      d.feed(sample(3));
      await waitFor('3 events while grabbed', 10_000, () => got.length >= 3);
      d.source.grab(false);
      d.feed(sample(3, 3));
      await waitFor('3 more after the ungrab', 10_000, () => got.length >= 6);
      expect(got).toEqual([...sample(3), ...sample(3, 3)]);
      expect(ends).toEqual([]);
    });

    it('after close nothing more is delivered, and close is idempotent', async () => {
      const d = make();
      const got: InputEvent[] = [];
      d.source.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
      d.feed(sample(3));
      await waitFor('3 events', 10_000, () => got.length >= 3);
      d.source.close();
      d.source.close();
      d.feedAfterClose?.(sample(3));
      await new Promise((r) => setTimeout(r, 100));
      expect(got.length).toBe(3);
    });

    it('drives the bridge to exactly the VM calls of the same script', async () => {
      const d = make();
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
}

// Seeded hostile input_event streams for the input hostility test: random and extreme records a
// broken device, a fuzzer or a malicious replay file could send. Same seed, same records.
import { ABS_X, ABS_Y, EV_ABS, EV_KEY, EV_REL, EV_SYN, REL_HWHEEL, REL_WHEEL, REL_WHEEL_HI_RES, REL_X, REL_Y, SYN_DROPPED, SYN_REPORT } from '../../src/input/events';

export interface Rec {
  type: number;
  code: number;
  value: number;
}

/** mulberry32: small, fast, good enough to pick test cases; reproducible from one 32-bit seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Keys the stream presses and releases at random, and that the test probes afterwards. No SysRq
 * (84, 99: Alt+SysRq+B would reboot the guest), no Delete (Ctrl+Alt+Del), no power/sleep keys.
 */
export const PROBE_KEYS: readonly number[] = [
  1, 14, 15, 16, 17, 18, 28, 29, 30, 31, 32, 42, 44, 54, 56, 57, 58, 59, 97, 100, 103, 105, 108, 125,
];
/** BTN_LEFT, RIGHT, MIDDLE, SIDE, EXTRA: every button the bridge forwards. */
export const PROBE_BUTTONS: readonly number[] = [0x110, 0x111, 0x112, 0x113, 0x114];
/** Buttons the bridge must drop (QEMU 7.2 aborts on a button number it does not know). */
const OTHER_BUTTONS = [0x115, 0x116, 0x117, 0x118, 0x120, 0x130, 0x140, 0x14a, 0x14b];

const INT32_EXTREMES = [0x7fffffff, -0x80000000, 1_000_000, -1_000_000, 100_000, -100_000, 0x7ffffffe, -1, 0];

export class HostileStream {
  readonly rand: () => number;
  /** counts of what was generated, for the test's log line */
  readonly counts = { records: 0, noSynRuns: 0, longestNoSyn: 0, synDroppedStorms: 0, synDropped: 0, hugeWheels: 0, unknownTypes: 0 };

  constructor(readonly seed: number) {
    this.rand = seededRandom(seed);
  }

  private int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  private int32(): number {
    return this.rand() < 0.5 ? this.pick(INT32_EXTREMES) : (this.int(0x100000000) | 0);
  }
  private keyValue(): number {
    return this.rand() < 0.9 ? this.pick([0, 1, 1, 2]) : this.int32();
  }

  /** One random record that is not EV_SYN/SYN_REPORT. */
  private junk(): Rec {
    switch (this.int(6)) {
      case 0:
        return { type: EV_KEY, code: this.pick(PROBE_KEYS), value: this.keyValue() };
      case 1:
        return { type: EV_KEY, code: this.pick([...PROBE_BUTTONS, ...OTHER_BUTTONS]), value: this.keyValue() };
      case 2:
        return { type: EV_KEY, code: 0x300 + this.int(0x10000 - 0x300), value: this.keyValue() }; // past KEY_MAX
      case 3:
        return { type: EV_REL, code: this.pick([REL_X, REL_Y, REL_HWHEEL, REL_WHEEL, REL_WHEEL_HI_RES, 0x0f, this.int(0x10000)]), value: this.int32() };
      case 4:
        return { type: EV_ABS, code: this.pick([ABS_X, ABS_Y, 0x2f, 0x35, this.int(0x10000)]), value: this.int32() };
      default:
        this.counts.unknownTypes++;
        return { type: this.pick([0x05, 0x06, 0x15, 0x16, 0x1f, 0x20 + this.int(0xffdf)]), code: this.int(0x10000), value: this.int32() };
    }
  }

  /** The next group of records (a frame, a storm, a run without SYN...). */
  next(): Rec[] {
    const syn: Rec = { type: EV_SYN, code: SYN_REPORT, value: 0 };
    const r = this.rand();
    let out: Rec[];
    if (r < 0.25) {
      out = [{ type: EV_KEY, code: this.pick(PROBE_KEYS), value: this.pick([0, 1]) }, syn];
    } else if (r < 0.35) {
      out = [{ type: EV_KEY, code: this.pick([...PROBE_BUTTONS, ...OTHER_BUTTONS]), value: this.pick([0, 1]) }, syn];
    } else if (r < 0.45) {
      this.counts.hugeWheels++;
      out = [{ type: EV_REL, code: this.pick([REL_WHEEL, REL_WHEEL_HI_RES]), value: this.pick(INT32_EXTREMES) }, syn];
    } else if (r < 0.7) {
      out = Array.from({ length: 1 + this.int(8) }, () => this.junk());
      out.push(this.rand() < 0.8 ? syn : { type: EV_SYN, code: this.int(0x10000), value: this.int32() });
    } else if (r < 0.72) {
      out = this.noSynRun(1000 + this.int(4000));
    } else if (r < 0.74) {
      out = this.synDroppedStorm(50 + this.int(500));
    } else {
      out = [this.junk(), syn];
    }
    this.counts.records += out.length;
    return out;
  }

  /** Thousands of events and no SYN_REPORT: press/release of the probe keys among the junk. */
  noSynRun(n: number): Rec[] {
    this.counts.noSynRuns++;
    this.counts.longestNoSyn = Math.max(this.counts.longestNoSyn, n);
    return Array.from({ length: n }, () => this.junk());
  }

  /** SYN_DROPPED again and again, with key events in between. */
  synDroppedStorm(n: number): Rec[] {
    this.counts.synDroppedStorms++;
    const out: Rec[] = [];
    for (let i = 0; i < n; i++) {
      if (this.rand() < 0.6) {
        out.push({ type: EV_SYN, code: SYN_DROPPED, value: 0 });
        this.counts.synDropped++;
      } else out.push(this.rand() < 0.5 ? this.junk() : { type: EV_SYN, code: SYN_REPORT, value: 0 });
    }
    return out;
  }
}

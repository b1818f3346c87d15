// Writing replay streams: raw struct input_event records as the kernel would deliver them, and a
// "type this sentence" helper (US layout, ASCII) for tests, the bench and demos.
import * as fs from 'fs';
import {
  ABS_MT_POSITION_X,
  ABS_MT_POSITION_Y,
  ABS_MT_SLOT,
  ABS_MT_TRACKING_ID,
  ABS_X,
  ABS_Y,
  EV_ABS,
  EV_KEY,
  EV_REL,
  EV_SYN,
  InputEvent,
  REL_WHEEL,
  REL_X,
  REL_Y,
  SYN_REPORT,
  encodeEvents,
} from './events';

const KEY_LEFTSHIFT = 42;

// ASCII -> [KEY_* code, shifted] for a US keyboard.
const US_LAYOUT: Record<string, [number, boolean]> = (() => {
  const m: Record<string, [number, boolean]> = {};
  const row = (chars: string, shifted: string, codes: number[]) =>
    codes.forEach((c, i) => {
      m[chars[i]] = [c, false];
      if (shifted[i] !== ' ') m[shifted[i]] = [c, true];
    });
  row('1234567890-=', '!@#$%^&*()_+', [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  row('qwertyuiop[]', 'QWERTYUIOP{}', [16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27]);
  row("asdfghjkl;'`", 'ASDFGHJKL:"~', [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41]);
  row('\\zxcvbnm,./', '|ZXCVBNM<>?', [43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53]);
  m[' '] = [57, false];
  m['\n'] = [28, false];
  m['\t'] = [15, false];
  return m;
})();

/** The key strokes that type `text` on a US layout: [code, needsShift] per character. */
export function keystrokesFor(text: string): Array<[number, boolean]> {
  return [...text].map((ch) => {
    const k = US_LAYOUT[ch];
    if (!k) throw new Error(`typeText: no US-layout key for ${JSON.stringify(ch)}`);
    return k;
  });
}

type Ev = Pick<InputEvent, 'type' | 'code' | 'value'> & { timeUs?: number };

/** Builds event sequences; every helper closes its frame with SYN_REPORT like the kernel does. */
export class EventScript {
  readonly events: Ev[] = [];

  private syn(): this {
    this.events.push({ type: EV_SYN, code: SYN_REPORT, value: 0 });
    return this;
  }

  key(code: number, value: 0 | 1 | 2): this {
    this.events.push({ type: EV_KEY, code, value });
    return this.syn();
  }

  tap(code: number): this {
    return this.key(code, 1).key(code, 0);
  }

  /** Types ASCII text: Shift is pressed around shifted characters only. */
  typeText(text: string): this {
    for (const [code, shift] of keystrokesFor(text)) {
      if (shift) this.key(KEY_LEFTSHIFT, 1);
      this.tap(code);
      if (shift) this.key(KEY_LEFTSHIFT, 0);
    }
    return this;
  }

  move(dx: number, dy: number): this {
    if (dx) this.events.push({ type: EV_REL, code: REL_X, value: dx });
    if (dy) this.events.push({ type: EV_REL, code: REL_Y, value: dy });
    return this.syn();
  }

  moveAbs(x: number, y: number): this {
    this.events.push({ type: EV_ABS, code: ABS_X, value: x }, { type: EV_ABS, code: ABS_Y, value: y });
    return this.syn();
  }

  wheel(notches: number): this {
    this.events.push({ type: EV_REL, code: REL_WHEEL, value: notches });
    return this.syn();
  }

  /**
   * One multi-touch protocol B frame: per contact ABS_MT_SLOT, then ABS_MT_TRACKING_ID when `id`
   * is given (-1 lifts), then the position axes given.
   */
  touchFrame(contacts: ReadonlyArray<{ slot: number; id?: number; x?: number; y?: number }>): this {
    for (const c of contacts) {
      this.events.push({ type: EV_ABS, code: ABS_MT_SLOT, value: c.slot });
      if (c.id !== undefined) this.events.push({ type: EV_ABS, code: ABS_MT_TRACKING_ID, value: c.id });
      if (c.x !== undefined) this.events.push({ type: EV_ABS, code: ABS_MT_POSITION_X, value: c.x });
      if (c.y !== undefined) this.events.push({ type: EV_ABS, code: ABS_MT_POSITION_Y, value: c.y });
    }
    return this.syn();
  }

  click(button: number): this {
    return this.key(button, 1).key(button, 0);
  }

  raw(type: number, code: number, value: number): this {
    this.events.push({ type, code, value });
    return this;
  }

  encode(): Buffer {
    return encodeEvents(this.events);
  }

  /** The script cut into frames (each ending with its SYN_REPORT), as a device reports them. */
  frames(): Ev[][] {
    const out: Ev[][] = [];
    let cur: Ev[] = [];
    for (const e of this.events) {
      cur.push(e);
      if (e.type === EV_SYN && e.code === SYN_REPORT) {
        out.push(cur);
        cur = [];
      }
    }
    if (cur.length) out.push(cur);
    return out;
  }
}

/**
 * Writes a script frame by frame with a pause between frames, like a person typing: a guest whose
 * event reader is slow (a TCG guest logging to a serial port) would otherwise overflow its evdev
 * buffer and see SYN_DROPPED.
 */
export async function writePaced(target: string, script: EventScript, msPerFrame: number): Promise<void> {
  const fd = fs.openSync(target, 'a');
  try {
    for (const frame of script.frames()) {
      fs.writeSync(fd, encodeEvents(frame));
      await new Promise((r) => setTimeout(r, msPerFrame));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes an EventScript (or raw events) to a file or FIFO path, appending. */
export function writeEvents(target: string | number, events: EventScript | Ev[]): void {
  const buf = encodeEvents(events instanceof EventScript ? events.events : events);
  if (typeof target === 'number') fs.writeSync(target, buf);
  else fs.appendFileSync(target, buf);
}

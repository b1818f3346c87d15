// Linux input events as TypeScript sees them, the 24-byte x86_64 `struct input_event` codec used
// by replay files/FIFOs, and the few event codes the bridge acts on (values from
// linux/input-event-codes.h).

export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_REL = 0x02;
export const EV_ABS = 0x03;
export const EV_MSC = 0x04;
export const EV_LED = 0x11;
export const EV_REP = 0x14;

export const SYN_REPORT = 0;
export const SYN_DROPPED = 3;

export const REL_X = 0x00;
export const REL_Y = 0x01;
export const REL_HWHEEL = 0x06;
export const REL_WHEEL = 0x08;
export const REL_WHEEL_HI_RES = 0x0b;
export const REL_HWHEEL_HI_RES = 0x0c;

export const ABS_X = 0x00;
export const ABS_Y = 0x01;
/** Multi-touch protocol B (Documentation/input/multi-touch-protocol.rst) */
export const ABS_MT_SLOT = 0x2f;
export const ABS_MT_POSITION_X = 0x35;
export const ABS_MT_POSITION_Y = 0x36;
export const ABS_MT_TRACKING_ID = 0x39;

/** INPUT_PROP_DIRECT: the device's coordinates are screen coordinates (touchscreens) */
export const INPUT_PROP_DIRECT = 0x01;

export const KEY_ENTER = 28;
export const KEY_A = 30;
export const KEY_Z = 44;

export const BTN_MISC = 0x100;
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;
export const BTN_SIDE = 0x113;
export const BTN_EXTRA = 0x114;
export const BTN_JOYSTICK = 0x120;
export const BTN_GAMEPAD = 0x130;
export const BTN_TOOL_PEN = 0x140;
export const BTN_TOUCH = 0x14a;
/** First code after the button block: from here on EV_KEY codes are keys again (KEY_OK...). */
export const KEY_OK = 0x160;

export const LED_NUML = 0x00;
export const LED_CAPSL = 0x01;
export const LED_SCROLLL = 0x02;

/** EV_KEY value meanings */
export const KEY_RELEASED = 0;
export const KEY_PRESSED = 1;
export const KEY_REPEAT = 2;

export interface InputEvent {
  type: number;
  code: number;
  value: number;
  /** event time in microseconds since the epoch (kernel timestamp; 0 when unknown) */
  timeUs: number;
}

/** True for EV_KEY codes that are keys (not mouse/joystick/digitizer buttons). */
export function isKeyboardKey(code: number): boolean {
  return code < BTN_MISC || code >= KEY_OK;
}

// x86_64 struct input_event: struct timeval { i64 tv_sec; i64 tv_usec; } u16 type; u16 code; s32 value
export const INPUT_EVENT_SIZE = 24;

export function encodeEvent(buf: Buffer, offset: number, ev: Pick<InputEvent, 'type' | 'code' | 'value'> & { timeUs?: number }): void {
  const t = ev.timeUs ?? 0;
  const sec = Math.floor(t / 1e6);
  buf.writeBigInt64LE(BigInt(sec), offset);
  buf.writeBigInt64LE(BigInt(Math.round(t - sec * 1e6)), offset + 8);
  buf.writeUInt16LE(ev.type, offset + 16);
  buf.writeUInt16LE(ev.code, offset + 18);
  buf.writeInt32LE(ev.value, offset + 20);
}

export function encodeEvents(events: ReadonlyArray<Pick<InputEvent, 'type' | 'code' | 'value'> & { timeUs?: number }>): Buffer {
  const buf = Buffer.alloc(events.length * INPUT_EVENT_SIZE);
  events.forEach((ev, i) => encodeEvent(buf, i * INPUT_EVENT_SIZE, ev));
  return buf;
}

export function decodeEvent(buf: Buffer, offset: number): InputEvent {
  // Number() of the 64-bit fields: exact for any real timestamp (< 2^53 µs).
  const sec = Number(buf.readBigInt64LE(offset));
  const usec = Number(buf.readBigInt64LE(offset + 8));
  return {
    type: buf.readUInt16LE(offset + 16),
    code: buf.readUInt16LE(offset + 18),
    value: buf.readInt32LE(offset + 20),
    timeUs: sec * 1e6 + usec,
  };
}

/** Turns a byte stream (chunks split anywhere) into whole events; keeps the partial tail. */
export class InputEventDecoder {
  private tail: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): InputEvent[] {
    const data = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const whole = data.length - (data.length % INPUT_EVENT_SIZE);
    const out: InputEvent[] = new Array<InputEvent>(whole / INPUT_EVENT_SIZE);
    for (let off = 0, i = 0; off < whole; off += INPUT_EVENT_SIZE, i++) out[i] = decodeEvent(data, off);
    this.tail = whole === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(whole));
    return out;
  }

  /** Bytes of an incomplete record waiting for the rest. */
  get pendingBytes(): number {
    return this.tail.length;
  }
}

// What the input forwarder needs from the VM: a small seam in front of the org.qemu.Display1
// Keyboard, Mouse and MultiTouch proxies (src/qemu/keyboard.ts, mouse.ts, multitouch.ts), so the
// forwarder is tested with a recording fake and adapted to the real proxies in one place (see dbus-vm-input.ts).
import { errorCode } from '../errors';
import type { DbusErrorCode } from '../qemu';

export interface ConsoleSize {
  width: number;
  height: number;
}

export interface VmInput {
  /** Keyboard.Press(qnum) */
  keyPress(qnum: number): Promise<void>;
  /** Keyboard.Release(qnum) */
  keyRelease(qnum: number): Promise<void>;
  /** Mouse.Press(button): button is an InputButton ordinal 0..6 (never anything else: QEMU aborts) */
  mousePress(button: number): Promise<void>;
  mouseRelease(button: number): Promise<void>;
  /**
   * Mouse.SetAbsPosition(x, y) in console pixels, x < width, y < height. Rejects with code
   * EMOUSE_NOT_ABSOLUTE (the guest pointer is relative) or EMOUSE_POSITION (outside the console).
   */
  setAbsPosition(x: number, y: number): Promise<void>;
  /** Mouse.RelMotion(dx, dy); rejects with code EMOUSE_NOT_RELATIVE when the guest pointer is absolute */
  relMotion(dx: number, dy: number): Promise<void>;
  /**
   * MultiTouch.MaxSlots (QEMU 8.1+), 0 when the console has no org.qemu.Display1.MultiTouch:
   * touch contacts are then not forwarded.
   */
  readonly touchSlots: number;
  /**
   * MultiTouch.SendEvent(kind, slot, x, y): slot < touchSlots, x/y in console pixels. QEMU lifts a
   * contact (ABS_MT_TRACKING_ID -1 in the guest) on 'end' only.
   */
  touchEvent(kind: TouchEventKind, slot: number, x: number, y: number): Promise<void>;
  /** Mouse.IsAbsolute as last reported (unreliable at start on 7.2: errors decide in the end) */
  readonly isAbsolute: boolean;
  /** Console Width/Height as last reported */
  readonly consoleSize: ConsoleSize;
  /** Keyboard.Modifiers: LED bits, bit0 Scroll, bit1 Num, bit2 Caps */
  readonly modifiers: number;
  /** Subscriptions return an unsubscribe function. */
  onModifiers(cb: (leds: number) => void): () => void;
  onAbsoluteChanged(cb: (absolute: boolean) => void): () => void;
}

export type TouchEventKind = 'begin' | 'update' | 'end' | 'cancel';

export const LED_BIT_SCROLL = 1;
export const LED_BIT_NUM = 2;
export const LED_BIT_CAPS = 4;

/** Mouse mode errors QEMU answers with org.qemu.Display1.Error.Invalid, by the code src/qemu gives them. */
export type MouseErrorKind = 'not-absolute' | 'not-relative' | 'bad-position';

const MOUSE_ERRORS: Partial<Record<string, MouseErrorKind>> = { EMOUSE_NOT_ABSOLUTE: 'not-absolute', EMOUSE_NOT_RELATIVE: 'not-relative', EMOUSE_POSITION: 'bad-position' } satisfies Partial<Record<DbusErrorCode, MouseErrorKind>>;

export function classifyMouseError(err: unknown): MouseErrorKind | undefined {
  const code = errorCode(err);
  return code === undefined ? undefined : MOUSE_ERRORS[code];
}

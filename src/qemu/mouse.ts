// org.qemu.Display1.Mouse on Console_N. QEMU does not range-check buttons: a value past its
// InputButton enum hits an assertion and aborts the whole VM, so only 0..6 ever leave here.
import { QemuDbusError } from './errors';
import { ConsoleProxy, MouseProxy } from './generated/display1';
import { RemoteCallError, type RemoteObject } from './remote-object';

export const MouseButton = {
  Left: 0,
  Middle: 1,
  Right: 2,
  WheelUp: 3,
  WheelDown: 4,
  Side: 5,
  Extra: 6,
} as const;
export type MouseButtonValue = (typeof MouseButton)[keyof typeof MouseButton];

export function checkMouseButton(button: number): asserts button is MouseButtonValue {
  if (!Number.isInteger(button) || button < 0 || button > 6) {
    throw new QemuDbusError('EBAD_ARGUMENT', `mouse button ${button} is not one of 0..6 (left, middle, right, wheel-up, wheel-down, side, extra)`, 'send only 0..6: QEMU aborts on other values');
  }
}

export class Mouse {
  readonly proxy: MouseProxy;
  /** the console the mouse belongs to (same object): its size decides what an Invalid meant */
  private readonly console: ConsoleProxy;
  constructor(object: RemoteObject) {
    this.proxy = new MouseProxy(object);
    this.console = new ConsoleProxy(object);
  }
  press(button: number): Promise<void> {
    checkMouseButton(button);
    return this.proxy.press(button);
  }
  release(button: number): Promise<void> {
    checkMouseButton(button);
    return this.proxy.release(button);
  }
  /** One wheel notch: Press + Release of 3 (up) or 4 (down). */
  async wheel(up: boolean): Promise<void> {
    const b = up ? MouseButton.WheelUp : MouseButton.WheelDown;
    await this.proxy.press(b);
    await this.proxy.release(b);
  }
  /**
   * Console pixels, 0 <= x < Width. Fails with code EMOUSE_NOT_ABSOLUTE when the guest pointer is
   * relative, EMOUSE_POSITION when (x, y) is outside the console's current size.
   */
  async setAbsPosition(x: number, y: number): Promise<void> {
    const px = Math.max(0, Math.trunc(x));
    const py = Math.max(0, Math.trunc(y));
    try {
      await this.proxy.setAbsPosition(px, py);
    } catch (e) {
      // QEMU answers both with Error.Invalid (dbus-errors.ts): tell them apart by the size it checks.
      if (e instanceof RemoteCallError && e.code === 'EMOUSE_NOT_ABSOLUTE' && (await this.outside(px, py))) throw e.withCode('EMOUSE_POSITION');
      throw e;
    }
  }
  /** Fails with code EMOUSE_NOT_RELATIVE when the guest pointer is absolute. */
  relMotion(dx: number, dy: number): Promise<void> {
    return this.proxy.relMotion(Math.round(dx), Math.round(dy));
  }
  /** Unreliable at start on 7.2 (not initialised): trust errors of the motion calls instead. */
  isAbsolute(): Promise<boolean> {
    return this.proxy.getIsAbsolute();
  }
  /** Is (x, y) outside the console's Width x Height right now? false when that cannot be read. */
  private async outside(x: number, y: number): Promise<boolean> {
    try {
      const { Width, Height } = await this.console.getAll();
      return x >= Width || y >= Height;
    } catch {
      return false;
    }
  }
  onIsAbsoluteChanged(cb: (absolute: boolean) => void): Promise<() => Promise<void>> {
    return this.proxy.onPropertiesChanged((c) => {
      if (typeof c.IsAbsolute === 'boolean') cb(c.IsAbsolute);
    });
  }
}

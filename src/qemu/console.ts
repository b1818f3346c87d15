// org.qemu.Display1.Console_N: the console object (size, label) and its input interfaces.
import { ConsoleProxy, type ConsoleProperties } from './generated/display1';
import { Keyboard } from './keyboard';
import { MAX_DISPLAY_SIDE, boundedConsoleSize } from './limits';
import { Mouse } from './mouse';
import { MultiTouch } from './multitouch';
import { RemoteObject, type QemuLink } from './remote-object';

export const consolePath = (id: number): string => `/org/qemu/Display1/Console_${id}`;

export class QemuConsole {
  readonly object: RemoteObject;
  readonly proxy: ConsoleProxy;
  readonly keyboard: Keyboard;
  readonly mouse: Mouse;
  /** present only when the console exports org.qemu.Display1.MultiTouch (8.1+) */
  readonly multiTouch: MultiTouch;

  constructor(
    link: QemuLink,
    readonly id: number,
  ) {
    this.object = new RemoteObject(link, consolePath(id));
    this.proxy = new ConsoleProxy(this.object);
    this.keyboard = new Keyboard(this.object);
    this.mouse = new Mouse(this.object);
    this.multiTouch = new MultiTouch(this.object);
  }

  properties(timeoutMs?: number): Promise<ConsoleProperties> {
    return this.proxy.getAll(timeoutMs);
  }

  /** Width/Height, each clamped into 0..MAX_DISPLAY_SIDE (QEMU may say 0 before the first surface). */
  async size(timeoutMs?: number): Promise<{ width: number; height: number }> {
    const p = await this.proxy.getAll(timeoutMs);
    const clamp = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? Math.min(v, MAX_DISPLAY_SIDE) : 0);
    return { width: clamp(p.Width), height: clamp(p.Height) };
  }

  /**
   * Width/Height PropertiesChanged (7.2 sends no Scanout for VGA text mode: size comes from here).
   * A size outside 1..MAX_DISPLAY_SIDE is dropped: nobody downstream allocates for it.
   */
  onSizeChanged(cb: (width: number, height: number) => void): Promise<() => Promise<void>> {
    let w: unknown = -1;
    let h: unknown = -1;
    return this.proxy.onPropertiesChanged((c) => {
      if (c.Width !== undefined) w = c.Width;
      if (c.Height !== undefined) h = c.Height;
      const size = boundedConsoleSize(w, h);
      if (size) cb(size.width, size.height);
    });
  }
}

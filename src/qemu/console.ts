// org.qemu.Display1.Console_N: the console object (size, label) and its input interfaces.
import { ConsoleProxy, type ConsoleProperties } from './generated/display1';
import { Keyboard } from './keyboard';
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

  async size(timeoutMs?: number): Promise<{ width: number; height: number }> {
    const p = await this.proxy.getAll(timeoutMs);
    return { width: p.Width, height: p.Height };
  }

  /** Width/Height PropertiesChanged (7.2 sends no Scanout for VGA text mode: size comes from here). */
  onSizeChanged(cb: (width: number, height: number) => void): Promise<() => Promise<void>> {
    let w = -1;
    let h = -1;
    return this.proxy.onPropertiesChanged((c) => {
      if (typeof c.Width === 'number') w = c.Width;
      if (typeof c.Height === 'number') h = c.Height;
      if (w >= 0 && h >= 0) cb(w, h);
    });
  }
}

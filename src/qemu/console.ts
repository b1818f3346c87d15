// org.qemu.Display1.Console_N: the console object (size, label) and its input interfaces, and
// the one description of a console that `list` shows and the console choice of the camera and
// input routes reads (ConsoleInfo, chooseConsole).
import { QemuDbusError } from './errors';
import { ConsoleProxy, type ConsoleProperties } from './generated/display1';
import { Keyboard } from './keyboard';
import { MAX_DISPLAY_SIDE, boundedConsoleSize } from './limits';
import { Mouse } from './mouse';
import { MultiTouch } from './multitouch';
import { RemoteObject, type QemuLink } from './remote-object';

export const consolePath = (id: number): string => `/org/qemu/Display1/Console_${id}`;

/** One console as QEMU describes it (Console properties Label, Head, Type, Width, Height). */
export interface ConsoleInfo {
  /** N of Console_N, the number --camera-console / --input-console take */
  id: number;
  /** QEMU's Type: 'Graphic' (a display device's head) or 'Text' (a text console such as a vc chardev) */
  type: string;
  /** the device (e.g. "VGA", "secondary-vga", "virtio-vga") */
  label: string;
  /** the head of that device (a multi-head device has one console per head) */
  head: number;
  /** current size in pixels, 0 before the first surface */
  width: number;
  height: number;
}

const clampSide = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? Math.min(v, MAX_DISPLAY_SIDE) : 0);

/** The properties as QEMU sent them (any of them missing or mistyped) -> a ConsoleInfo. */
export function consoleInfoOf(id: number, p: Partial<Record<keyof ConsoleProperties, unknown>>): ConsoleInfo {
  return {
    id,
    type: typeof p.Type === 'string' ? p.Type : '',
    label: typeof p.Label === 'string' ? p.Label : '',
    head: typeof p.Head === 'number' && Number.isInteger(p.Head) && p.Head >= 0 ? p.Head : 0,
    width: clampSide(p.Width),
    height: clampSide(p.Height),
  };
}

export const isGraphicConsole = (c: ConsoleInfo): boolean => c.type === 'Graphic';

/** `0 (Graphic "VGA" head 0, 1280x800)` — how errors and logs name a console. */
export function describeConsole(c: ConsoleInfo): string {
  return `${c.id} (${c.type || 'unknown type'}${c.label ? ` "${c.label}"` : ''} head ${c.head}, ${c.width}x${c.height})`;
}

/**
 * The console a route works on: `want` when given (ECONSOLE_UNKNOWN naming the consoles there are
 * when the VM has no such console), else the first graphic one, else the first there is. `flag`
 * is the option that chose it, for the fix.
 */
export function chooseConsole(consoles: readonly ConsoleInfo[], want: number | undefined, flag: string, vmName: string): ConsoleInfo {
  if (want !== undefined) {
    const hit = consoles.find((c) => c.id === want);
    if (hit) return hit;
    const there = consoles.length ? consoles.map(describeConsole).join(', ') : 'none';
    throw new QemuDbusError('ECONSOLE_UNKNOWN', `VM "${vmName}" has no console ${want}; its consoles: ${there}`, `pick one of its consoles with ${flag} (\`qemu-dbus-bridge list\` shows them), or add the display device to the VM`, {
      permanent: true,
    });
  }
  const first = consoles.find(isGraphicConsole) ?? consoles[0];
  if (first) return first;
  return consoleInfoOf(0, {});
}

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

  /** Label, Head, Type and Width/Height (each clamped into 0..MAX_DISPLAY_SIDE) in one read. */
  async info(timeoutMs?: number): Promise<ConsoleInfo> {
    return consoleInfoOf(this.id, await this.proxy.getAll(timeoutMs));
  }

  /** Width/Height, each clamped into 0..MAX_DISPLAY_SIDE (QEMU may say 0 before the first surface). */
  async size(timeoutMs?: number): Promise<{ width: number; height: number }> {
    const { width, height } = await this.info(timeoutMs);
    return { width, height };
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

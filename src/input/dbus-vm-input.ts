// VmInput over the real org.qemu.Display1 Keyboard/Mouse/MultiTouch proxies of one console. Keeps
// the properties the forwarder reads synchronously (IsAbsolute, Width/Height, Modifiers) current
// through PropertiesChanged.
import { EventEmitter } from 'events';
import { MULTITOUCH_MAX_SLOTS, TouchKind, type QemuConsole } from '../qemu';
import type { ConsoleSize, TouchEventKind, VmInput } from './vm-input';

const TOUCH_KIND = { begin: TouchKind.Begin, update: TouchKind.Update, end: TouchKind.End, cancel: TouchKind.Cancel } as const satisfies Record<TouchEventKind, number>;

export interface DbusVmInputOptions {
  /** the console exports org.qemu.Display1.MultiTouch (vm.capabilities.multiTouch, QEMU 8.1+) */
  multiTouch?: boolean;
}

export interface DbusVmInput extends VmInput {
  /** Drops the PropertiesChanged subscriptions. */
  close(): Promise<void>;
}

/** A synchronous throw (argument check) becomes a rejection, like every other failure. */
function call(fn: () => Promise<void>): Promise<void> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** MaxSlots as QEMU says, bounded to what SendEvent takes; 0 when unreadable. */
async function touchSlots(console: QemuConsole): Promise<number> {
  const n = await console.multiTouch.maxSlots().catch(() => 0);
  return Number.isInteger(n) && n > 0 ? Math.min(n, MULTITOUCH_MAX_SLOTS) : 0;
}

export async function createDbusVmInput(console: QemuConsole, opts: DbusVmInputOptions = {}): Promise<DbusVmInput> {
  const ev = new EventEmitter();
  const [size, isAbsolute, modifiers, slots] = await Promise.all([
    console.size(),
    console.mouse.isAbsolute(),
    console.keyboard.leds(),
    opts.multiTouch ? touchSlots(console) : 0,
  ]);
  const state = { size: { ...size } as ConsoleSize, isAbsolute, modifiers };
  const unsubs = await Promise.all([
    console.onSizeChanged((width, height) => {
      state.size = { width, height };
    }),
    console.mouse.onIsAbsoluteChanged((abs) => {
      state.isAbsolute = abs;
      ev.emit('absolute', abs);
    }),
    console.keyboard.onLedsChanged((leds) => {
      state.modifiers = leds;
      ev.emit('modifiers', leds);
    }),
  ]);
  const kb = console.keyboard;
  const mouse = console.mouse;
  return {
    keyPress: (q) => call(() => kb.press(q)),
    keyRelease: (q) => call(() => kb.release(q)),
    mousePress: (b) => call(() => mouse.press(b)),
    mouseRelease: (b) => call(() => mouse.release(b)),
    setAbsPosition: (x, y) => call(() => mouse.setAbsPosition(x, y)),
    relMotion: (dx, dy) => call(() => mouse.relMotion(dx, dy)),
    touchSlots: slots,
    touchEvent: (kind, slot, x, y) => call(() => console.multiTouch.sendEvent(TOUCH_KIND[kind], slot, x, y)),
    get isAbsolute() {
      return state.isAbsolute;
    },
    get consoleSize() {
      return state.size;
    },
    get modifiers() {
      return state.modifiers;
    },
    onModifiers(cb) {
      ev.on('modifiers', cb);
      return () => ev.off('modifiers', cb);
    },
    onAbsoluteChanged(cb) {
      ev.on('absolute', cb);
      return () => ev.off('absolute', cb);
    },
    async close() {
      ev.removeAllListeners();
      await Promise.all(unsubs.map((u) => u().catch(() => undefined)));
    },
  };
}

// Fakes for the input boundary, used by unit tests and the input source contract
// (test/contracts/input-source.contract.ts): a recording VmInput (what QEMU would have received),
// a scriptable event source, and the fake EvdevBackend whose devices stand in for the addon's.
import { EventEmitter } from 'events';
import { EV_KEY, EV_LED, EV_SYN, InputEvent } from '../../src/input/events';
import { GUEST_BUTTONS } from '../../src/input/forwarder';
import { EvdevBackend, InputDeviceInfo, InputEventSource, SourceHandlers } from '../../src/input/device';
import { ConsoleSize, TouchEventKind, VmInput } from '../../src/input/vm-input';
import { DBUS_ERR, type DbusErrorCode } from '../../src/qemu';
import type { EvdevDeviceHandle, EvdevRawInfo } from '../../src/native-api/evdev';

/**
 * What libevdev reports for an ordinary USB keyboard (keys 1..120, three LEDs): the device the
 * fake EvdevBackend opens in the unit tests.
 */
export const FAKE_KEYBOARD_INFO: EvdevRawInfo = {
  name: 'Fake Keyboard',
  phys: 'usb-0000:00:14.0-1/input0',
  uniq: '',
  bustype: 3,
  vendor: 0x046d,
  product: 0xc31c,
  version: 0x111,
  driverVersion: 0x10001,
  events: { [EV_SYN]: [0, 1, 4, 17, 20], [EV_KEY]: Array.from({ length: 120 }, (_, i) => i + 1), [EV_LED]: [0, 1, 2] },
  abs: {},
};

export type VmCall =
  | { op: 'keyPress' | 'keyRelease'; qnum: number }
  | { op: 'mousePress' | 'mouseRelease'; button: number }
  | { op: 'abs'; x: number; y: number }
  | { op: 'rel'; dx: number; dy: number }
  | { op: 'touch'; kind: TouchEventKind; slot: number; x: number; y: number };

/** Records every call like QEMU would receive it; can reject calls the way QEMU 7.2 does. */
export class RecordingVmInput implements VmInput {
  readonly calls: VmCall[] = [];
  consoleSize: ConsoleSize = { width: 1280, height: 800 };
  modifiers = 0;
  /** MultiTouch.MaxSlots; 0 (default): a console without MultiTouch, like QEMU 7.2 */
  readonly touchSlots: number;
  /** what the guest pointer really is; calls in the other mode fail like QEMU's Error.Invalid */
  guestAbsolute: boolean;
  private reported: boolean;
  private readonly ev = new EventEmitter();

  constructor(opts: { absolute?: boolean; reportedAbsolute?: boolean; touchSlots?: number } = {}) {
    this.touchSlots = opts.touchSlots ?? 0;
    this.guestAbsolute = opts.absolute ?? false;
    this.reported = opts.reportedAbsolute ?? this.guestAbsolute;
  }

  get isAbsolute(): boolean {
    return this.reported;
  }

  setReportedAbsolute(abs: boolean): void {
    this.reported = abs;
    this.ev.emit('absolute', abs);
  }

  setModifiers(leds: number): void {
    this.modifiers = leds;
    this.ev.emit('modifiers', leds);
  }

  onModifiers(cb: (leds: number) => void): () => void {
    this.ev.on('modifiers', cb);
    return () => this.ev.off('modifiers', cb);
  }

  onAbsoluteChanged(cb: (absolute: boolean) => void): () => void {
    this.ev.on('absolute', cb);
    return () => this.ev.off('absolute', cb);
  }

  /** QEMU's Error.Invalid with the code the qemu layer gives it (src/qemu/dbus-errors.ts). */
  private invalid(msg: string, code: DbusErrorCode): Promise<void> {
    return Promise.reject(Object.assign(new Error(msg), { name: DBUS_ERR.QEMU_INVALID, code }));
  }

  keyPress(qnum: number): Promise<void> {
    this.calls.push({ op: 'keyPress', qnum });
    return Promise.resolve();
  }
  keyRelease(qnum: number): Promise<void> {
    this.calls.push({ op: 'keyRelease', qnum });
    return Promise.resolve();
  }
  mousePress(button: number): Promise<void> {
    if (!Number.isInteger(button) || button < 0 || button > 8) throw new Error(`QEMU would abort: button ${button}`);
    this.calls.push({ op: 'mousePress', button });
    return Promise.resolve();
  }
  mouseRelease(button: number): Promise<void> {
    if (!Number.isInteger(button) || button < 0 || button > 8) throw new Error(`QEMU would abort: button ${button}`);
    this.calls.push({ op: 'mouseRelease', button });
    return Promise.resolve();
  }
  setAbsPosition(x: number, y: number): Promise<void> {
    if (!this.guestAbsolute) return this.invalid('Mouse is not absolute', 'EMOUSE_NOT_ABSOLUTE');
    if (x >= this.consoleSize.width || y >= this.consoleSize.height || x < 0 || y < 0) return this.invalid('Invalid mouse position', 'EMOUSE_POSITION');
    this.calls.push({ op: 'abs', x, y });
    return Promise.resolve();
  }
  relMotion(dx: number, dy: number): Promise<void> {
    if (this.guestAbsolute) return this.invalid('Mouse is not relative', 'EMOUSE_NOT_RELATIVE');
    this.calls.push({ op: 'rel', dx, dy });
    return Promise.resolve();
  }

  /** Like QEMU: a slot from MaxSlots on is an error (and a console without MultiTouch has none). */
  touchEvent(kind: TouchEventKind, slot: number, x: number, y: number): Promise<void> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.touchSlots) return this.invalid(`Unexpected touch slot number: ${slot}`, 'EINVALID');
    if (x >= this.consoleSize.width || y >= this.consoleSize.height || x < 0 || y < 0) return this.invalid('Invalid touch position', 'EINVALID');
    this.calls.push({ op: 'touch', kind, slot, x, y });
    return Promise.resolve();
  }

  /** Keys/buttons pressed and touch slots begun and not released/ended (what would be stuck in the guest). */
  stuck(): { keys: number[]; buttons: number[]; touches: number[] } {
    const keys = new Set<number>();
    const buttons = new Set<number>();
    const touches = new Set<number>();
    for (const c of this.calls) {
      if (c.op === 'keyPress') keys.add(c.qnum);
      else if (c.op === 'keyRelease') keys.delete(c.qnum);
      else if (c.op === 'mousePress') buttons.add(c.button);
      else if (c.op === 'mouseRelease') buttons.delete(c.button);
      else if (c.op === 'touch' && c.kind === 'begin') touches.add(c.slot);
      else if (c.op === 'touch' && c.kind === 'end') touches.delete(c.slot);
    }
    return { keys: [...keys], buttons: [...buttons], touches: [...touches] };
  }
}

/** The button releases every attach begins with (InputForwarder.releaseGuestButtons). */
export const ATTACH_RELEASES: readonly VmCall[] = GUEST_BUTTONS.map((button) => ({ op: 'mouseRelease' as const, button }));

/** What the bridge sent after the releases of the first attach: what most tests are about. */
export function sentAfterAttach(vm: RecordingVmInput): VmCall[] {
  const n = ATTACH_RELEASES.length;
  const head = vm.calls.slice(0, n);
  const isAttach = head.length === n && head.every((c, i) => c.op === 'mouseRelease' && c.button === GUEST_BUTTONS[i]);
  return isAttach ? vm.calls.slice(n) : vm.calls;
}

/**
 * An in-memory input device: tests push events; grab/LED calls are recorded. Like the kernel, it
 * tracks which keys are down (`held`: down before we opened it), and what the host sees: every
 * event pushed while it is not grabbed (`hostSaw`).
 */
export class FakeEventSource implements InputEventSource {
  /** it plays an evdev device: grab, LEDs, keys held */
  readonly kind = 'evdev';
  grabbed = false;
  leds: number | undefined;
  closed = false;
  readonly grabLog: boolean[] = [];
  readonly hostSaw: InputEvent[] = [];
  readonly down: Set<number>;
  private handlers: SourceHandlers | undefined;

  constructor(
    readonly path: string,
    readonly info: InputDeviceInfo | null = null,
    readonly canGrab = true,
    held: number[] = [],
  ) {
    this.down = new Set(held);
  }

  keysDown(): readonly number[] {
    return [...this.down];
  }

  start(handlers: SourceHandlers): void {
    this.handlers = handlers;
  }

  push(events: InputEvent[] | Array<Omit<InputEvent, 'timeUs'>>): void {
    if (this.closed) throw new Error('FakeEventSource: push after close');
    const evs = events.map((e) => ({ timeUs: 0, ...e }));
    for (const e of evs) {
      if (e.type === EV_KEY && e.value === 1) this.down.add(e.code);
      else if (e.type === EV_KEY && e.value === 0) this.down.delete(e.code);
      if (!this.grabbed) this.hostSaw.push(e);
    }
    this.handlers?.onEvents(evs);
  }

  /** Simulates an unplug (ENODEV) or end of stream. */
  disappear(reason = 'ENODEV'): void {
    this.handlers?.onEnd(reason);
  }

  grab(on: boolean): void {
    if (!this.canGrab) return;
    this.grabbed = on;
    this.grabLog.push(on);
  }

  setLeds(leds: number): void {
    if (this.canGrab) this.leds = leds;
  }

  close(): void {
    this.closed = true;
    this.grabbed = false;
  }
}

/** Stands in for the addon's EvdevDevice (no /dev/input here): drives EvdevSource's TS side. */
export class FakeNativeDevice implements EvdevDeviceHandle {
  readonly fd = 42;
  writable = true;
  grabbed = false;
  ledState: [boolean | null, boolean | null, boolean | null] = [true, false, false];
  readonly ledWrites: Array<[boolean, boolean, boolean]> = [];
  /** libevdev's key state: set it for keys held at open; emit() moves it on */
  readonly keyState = new Set<number>();
  /** events emitted while not grabbed: what the host (compositor) received */
  readonly hostSaw: Array<{ type: number; code: number; value: number }> = [];
  /** every grab(on) in order */
  readonly grabLog: boolean[] = [];
  /** what the kernel's console keyboard handler writes when EVIOCGRAB is released (kbd_start) */
  consoleLeds: [boolean, boolean, boolean] | undefined;
  closed = false;
  started = false;
  constructor(
    readonly path: string,
    readonly batch: Float64Array,
    readonly onEvents: (count: number, errorCode?: string) => void,
    readonly raw: EvdevRawInfo,
  ) {}
  info(): EvdevRawInfo {
    return this.raw;
  }
  grab(on: boolean): void {
    this.grabbed = on;
    this.grabLog.push(on);
    if (!on && this.consoleLeds) this.ledState = [...this.consoleLeds];
  }
  keysDown(): number[] {
    return [...this.keyState];
  }
  setLeds(num: boolean, caps: boolean, scroll: boolean): void {
    this.ledWrites.push([num, caps, scroll]);
    this.ledState = [num, caps, scroll];
  }
  leds(): [boolean | null, boolean | null, boolean | null] {
    return [...this.ledState];
  }
  start(): void {
    this.started = true;
  }
  close(): void {
    this.closed = true;
  }
  /** what the uv_poll callback does: fill the batch, call JS once per full batch */
  emit(events: Array<Omit<InputEvent, 'timeUs'> & { timeUs?: number }>, errorCode?: string): void {
    const cap = this.batch.length / 4;
    for (let i = 0; i < events.length; i += cap) {
      const chunk = events.slice(i, i + cap);
      chunk.forEach((e, j) => {
        this.batch.set([e.type, e.code, e.value, e.timeUs ?? 0], j * 4);
        if (e.type === EV_KEY) {
          if (e.value === 0) this.keyState.delete(e.code);
          else this.keyState.add(e.code);
        }
        if (!this.grabbed) this.hostSaw.push({ type: e.type, code: e.code, value: e.value });
      });
      this.onEvents(chunk.length, i + cap >= events.length ? errorCode : undefined);
    }
    if (events.length === 0) this.onEvents(0, errorCode);
  }
}

/** An EvdevBackend whose devices are FakeNativeDevices reporting `raw` as their info. */
export class FakeEvdevBackend implements EvdevBackend {
  /** the device opened last */
  last: FakeNativeDevice | undefined;
  /** every path opened, in order */
  readonly opened: string[] = [];
  constructor(readonly raw: EvdevRawInfo) {}

  open(path: string, batch: Float64Array, onEvents: (count: number, errorCode?: string) => void): FakeNativeDevice {
    this.opened.push(path);
    this.last = new FakeNativeDevice(path, batch, onEvents, this.raw);
    return this.last;
  }
}

// Input event sources: a real evdev node through libevdev (native/evdev.cc), or a plain stream
// of struct input_event records (replay file or FIFO) read in TypeScript. Both implement
// InputEventSource; one contract suite (test/contracts/input-source.contract.ts) runs against
// them and the unit tests' fake source. EvdevSource reaches the device through one backend seam,
// EvdevBackend: the addon here, test/fakes/input.ts's FakeEvdevBackend in unit tests.
import * as fs from 'fs';
import * as net from 'net';
import { native } from '../native';
import type { EvdevDeviceHandle, EvdevNativeApi } from '../native-api/evdev';
import { describeDevice } from './devices';
import { InputError } from './errors';
import { InputEvent, InputEventDecoder } from './events';
import type { AbsRange } from './forwarder';
import { LED_BIT_CAPS, LED_BIT_NUM, LED_BIT_SCROLL } from './vm-input';
import type { Logger } from '../log';

/** What we know about a device; plain event streams have none of it. */
export interface InputDeviceInfo {
  name: string;
  phys: string;
  uniq: string;
  bustype: number;
  vendor: number;
  product: number;
  version: number;
  keyboard: boolean;
  /** relative mouse (REL_X/REL_Y + BTN_LEFT) */
  mouse: boolean;
  /** absolute pointer: tablet, touchscreen in pointer mode */
  absolutePointer: boolean;
  absX?: AbsRange;
  absY?: AbsRange;
  hiResWheel: boolean;
  hasLeds: boolean;
  /**
   * A touchscreen (INPUT_PROP_DIRECT + ABS_MT_POSITION_X): its contacts go to the guest through
   * MultiTouch. Ranges of ABS_MT_POSITION_X/Y, slots = ABS_MT_SLOT maximum + 1 (1 without slots).
   */
  touchscreen?: { x?: AbsRange; y?: AbsRange; slots: number };
}

export interface SourceHandlers {
  onEvents(events: InputEvent[]): void;
  /** The source ended: ENODEV (unplugged), EOF (replay file done), or another errno name. */
  onEnd(reason: string): void;
}

export interface InputEventSource {
  readonly path: string;
  readonly kind: 'evdev' | 'stream';
  /** null for plain event streams (no ioctls) */
  readonly info: InputDeviceInfo | null;
  /** false where EVIOCGRAB is impossible (plain streams) */
  readonly canGrab: boolean;
  start(handlers: SourceHandlers): void;
  /** EVIOCGRAB on/off; a no-op for plain streams. Throws Error with `code` (EBUSY...) */
  grab(on: boolean): void;
  /**
   * EV_KEY codes held down on the device right now, as far as the events delivered so far tell
   * (evdev: libevdev's state, which includes keys held before we opened it); [] for streams.
   * The bridge takes the grab only when this is empty.
   */
  keysDown(): readonly number[];
  /** Keyboard.Modifiers bits (bit0 Scroll, bit1 Num, bit2 Caps) -> EV_LED; no-op without LEDs */
  setLeds(leds: number): void;
  close(): void;
}

/**
 * The input part's backend seam: opening an evdev node. The device handle reads through libevdev
 * (EVIOCGRAB, LEDs, the key state); failures throw an Error with the errno `code` (ENOTTY: not an
 * evdev node). The real one is evdevBackend (the addon); test/fakes/input.ts has the fake, and
 * the input source contract runs EvdevSource over both.
 */
export interface EvdevBackend {
  /** batch: Float64Array of 4 doubles per event (type, code, value, time in µs), reused every call. */
  open(path: string, batch: Float64Array, onEvents: (count: number, errorCode?: string) => void): EvdevDeviceHandle;
}

/** The backend over the addon's EvdevDevice (libevdev); ENATIVE from an addon built without it. */
export function nativeEvdevBackend(api: EvdevNativeApi): EvdevBackend {
  return {
    open(path, batch, onEvents) {
      const Ctor = api.EvdevDevice;
      if (!Ctor) throw new InputError('ENATIVE', 'this build of the native addon has no evdev support', 'rebuild it with: npm run setup');
      return new Ctor(path, batch, onEvents);
    },
  };
}

export const evdevBackend: EvdevBackend = nativeEvdevBackend(native);

export { describeDevice };

const BATCH_EVENTS = 256;

/** A real evdev node through libevdev. */
export class EvdevSource implements InputEventSource {
  readonly kind = 'evdev';
  readonly info: InputDeviceInfo;
  readonly canGrab = true;
  private readonly batch = new Float64Array(BATCH_EVENTS * 4);
  private readonly dev: EvdevDeviceHandle;
  private handlers: SourceHandlers | undefined;
  private savedLeds: [boolean | null, boolean | null, boolean | null] | undefined;
  private grabbed = false;
  private closed = false;

  /** Throws Error with an errno `code`: ENOTTY when `path` is not an evdev node. */
  constructor(
    readonly path: string,
    backend: EvdevBackend = evdevBackend,
  ) {
    this.dev = backend.open(path, this.batch, (count, errorCode) => this.onNative(count, errorCode));
    this.info = describeDevice(this.dev.info());
  }

  private onNative(count: number, errorCode?: string): void {
    if (this.closed) return;
    if (count > 0 && this.handlers) {
      const out = new Array<InputEvent>(count);
      const b = this.batch;
      for (let i = 0, o = 0; i < count; i++, o += 4) out[i] = { type: b[o], code: b[o + 1], value: b[o + 2], timeUs: b[o + 3] };
      this.handlers.onEvents(out);
    }
    if (errorCode && !this.closed) this.handlers?.onEnd(errorCode); // the handler may have closed us
  }

  start(handlers: SourceHandlers): void {
    this.handlers = handlers;
    this.dev.start();
  }

  keysDown(): readonly number[] {
    return this.closed ? [] : this.dev.keysDown();
  }

  grab(on: boolean): void {
    if (this.closed || on === this.grabbed) return;
    if (on) {
      this.dev.grab(true);
      this.grabbed = true;
      if (this.info.hasLeds) this.savedLeds = this.dev.leds();
    } else {
      // Release first, then restore: releasing EVIOCGRAB restarts the device's other handlers, and
      // the console keyboard handler writes its own LED state then (kbd_start), overwriting a
      // restore made before the release (seen on a real kernel: test/kernel/guest/input.guest.ts).
      this.dev.grab(false);
      this.grabbed = false;
      this.restoreLeds();
    }
  }

  setLeds(leds: number): void {
    if (this.closed || !this.info.hasLeds || !this.dev.writable) return;
    this.dev.setLeds((leds & LED_BIT_NUM) !== 0, (leds & LED_BIT_CAPS) !== 0, (leds & LED_BIT_SCROLL) !== 0);
  }

  /** The host's LED state from before the grab comes back when the guest lets go. */
  private restoreLeds(): void {
    const saved = this.savedLeds;
    this.savedLeds = undefined;
    if (!saved || !this.dev.writable) return;
    try {
      this.dev.setLeds(saved[0] ?? false, saved[1] ?? false, saved[2] ?? false);
    } catch {
      /* unplugged meanwhile: nothing to restore */
    }
  }

  close(): void {
    if (this.closed) return;
    if (this.grabbed) {
      try {
        this.grab(false);
      } catch {
        /* device already gone */
      }
    }
    this.closed = true;
    this.dev.close();
  }
}

/** Raw struct input_event records from a FIFO or a file (replay; hot-plug tests). */
export class StreamSource implements InputEventSource {
  readonly kind = 'stream';
  readonly canGrab = false;
  private readonly decoder = new InputEventDecoder();
  private stream: net.Socket | fs.ReadStream | undefined;
  private closed = false;

  /** `info`: what the stream stands in for, when the caller knows (tests: FIFOs posing as devices) */
  constructor(
    readonly path: string,
    readonly info: InputDeviceInfo | null = null,
  ) {}

  start(handlers: SourceHandlers): void {
    const st = fs.statSync(this.path);
    let stream: net.Socket | fs.ReadStream;
    if (st.isFIFO()) {
      // Read-write on purpose: holding a writer ourselves means writers may come and go without
      // an EOF; the FIFO "device" ends when it is closed or removed, like a real node.
      const fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      stream = new net.Socket({ fd, readable: true, writable: false });
    } else {
      stream = fs.createReadStream(this.path);
    }
    this.stream = stream;
    stream.on('data', (chunk: Buffer | string) => {
      if (this.closed) return;
      const events = this.decoder.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      if (events.length) handlers.onEvents(events);
    });
    stream.on('end', () => {
      if (!this.closed) handlers.onEnd('EOF');
    });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.closed) handlers.onEnd(err.code ?? 'EIO');
    });
  }

  grab(_on: boolean): void {}

  keysDown(): readonly number[] {
    return [];
  }

  setLeds(_leds: number): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream?.destroy();
  }
}

export interface OpenOptions {
  backend?: EvdevBackend;
  /** the fallback to a plain stream, as info */
  log?: Logger;
}

/**
 * Opens `path` as an evdev device; where the evdev ioctls fail with ENOTTY (a FIFO, a file) it
 * falls back to a plain event stream and says so once.
 */
export function openInputSource(path: string, opts: OpenOptions = {}): InputEventSource {
  try {
    return new EvdevSource(path, opts.backend);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTTY' || code === 'EINVAL') {
      opts.log?.info(`${path} is not an evdev device (${code}): reading it as a plain struct input_event stream (no grab, no LEDs, no device info)`);
      return new StreamSource(path);
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new InputError(code, `cannot open ${path} (${code})`, 'add your user to the "input" group or use a udev rule granting access');
    }
    if (code === 'ENOENT') throw new InputError(code, `input device ${path} does not exist`, 'check the path (ls -l /dev/input/by-id/)');
    throw err;
  }
}

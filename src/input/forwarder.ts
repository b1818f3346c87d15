// The input state machine: evdev event frames -> VM keyboard/mouse calls, plus the host<->guest
// toggle and the "no stuck keys, ever" bookkeeping. Pure logic over the VmInput seam: no devices,
// no D-Bus, one timer (the grab-next hold-back deadline below), so every rule here is unit-tested
// with a recording fake (and fake timers for that deadline).
//
// Rules (QEMU's D-Bus input semantics, QEMU 7.2 ui/dbus-console.c, ui/input.c and ui/kbd-state.c;
// checked against the test guest in test/integration/input-guest.test.ts):
// - Events are applied per frame (up to SYN_REPORT), motion first, then keys/buttons in order,
//   then the wheel, so a click lands where the pointer moved to in the same frame.
// - Keys go through the generated linux->qnum table; keys without a qnum are dropped.
// - Only BTN_LEFT/MIDDLE/RIGHT/SIDE/EXTRA (and BTN_TOUCH as left, for touchscreens in pointer
//   mode) become mouse buttons 0/1/2/5/6: QEMU 7.2 aborts on a button number it does not know.
// - REL_WHEEL (or REL_WHEEL_HI_RES in whole notches of 120, never both) -> Press+Release of 3/4.
// - Every press that reached the guest is remembered per device; release, unplug, toggle to host
//   and stop release exactly those, so nothing stays down in the guest.
// - The toggle hotkey arms when all its keys are held and fires once every key on every device is
//   up, so the guest sees the releases of the combination before forwarding stops.
// - Grab-next: a press of one of its keys (Ctrl of Ctrl+Alt+N) is held back while it may still
//   start the combination, so no key of it reaches a guest. It goes to the guest as soon as it
//   turns out not to be the combination: another key, a button, motion or its own release comes,
//   or no further key of the combination is pressed within HOLD_BACK_MS (a modifier held alone, as
//   a game's crouch or a Ctrl held before a click, reaches the guest that much later, not never).
// - Bounded work per frame, whatever a device or replay stream sends: at most
//   MAX_WHEEL_NOTCHES_PER_FRAME notches (2 VM calls each) and relative motion clamped to int32;
//   a frame longer than MAX_FRAME_EVENTS (a stream that never sends SYN_REPORT) is dropped like
//   SYN_DROPPED. Both SYN_DROPPED and an over-long frame mean "device state unknown": what that
//   device holds in the guest is released, so a lost release can never leave a key stuck.
// - Key, button and wheel PRESSES spend a call budget (a token bucket, DEFAULT_CALL_BUDGET);
//   a frame that would overspend it sends its releases only. Why: QEMU turns each call into
//   virtio-input events at once, and when they overflow the guest's queue (64 events) QEMU drops
//   whole packets, releases included (trace virtio_input_queue_full) - a flood of presses from a
//   replay stream could otherwise cost the release of a key held meanwhile. Motion is not
//   budgeted (a lost motion packet is harmless, and 8 kHz mice are legitimate).
// - Multi-touch (protocol B, src/input/touch.ts) goes to MultiTouch.SendEvent when the VM offers
//   it (QEMU 8.1+; vm.touchSlots > 0): each device's contacts get console slots from one shared
//   pool of touchSlots (QEMU keeps one slot table per console), positions scaled like the
//   absolute pointer. A device in touch mode sends no pointer emulation (ABS_X/Y, BTN_TOUCH).
//   Per frame at most one call per console slot per kind (end, begin, update); a begin spends a
//   press from the call budget, and a contact beyond the pool or the budget is not forwarded at
//   all (its updates and end neither). Whatever ends forwarding (host mode, unplug, lost frame,
//   stop) ends every contact that reached the guest, with 'end': QEMU lifts a contact only on
//   End (Cancel updates it). Without MultiTouch, touch is not forwarded and that is said once.
import {
  ABS_X,
  ABS_Y,
  BTN_EXTRA,
  BTN_LEFT,
  BTN_MIDDLE,
  BTN_RIGHT,
  BTN_SIDE,
  BTN_TOUCH,
  EV_ABS,
  EV_KEY,
  EV_REL,
  EV_SYN,
  InputEvent,
  KEY_PRESSED,
  KEY_RELEASED,
  KEY_REPEAT,
  REL_WHEEL,
  REL_WHEEL_HI_RES,
  REL_X,
  REL_Y,
  SYN_DROPPED,
  SYN_REPORT,
  isKeyboardKey,
} from './events';
import { Hotkey, hotkeyHeld, hotkeyIncludes } from './hotkey';
import { linuxToQnum } from './keymap';
import { TouchChange, TouchSlots } from './touch';
import { TouchEventKind, VmInput, classifyMouseError } from './vm-input';
import type { Logger } from '../log';

/**
 * InputButton ordinals QEMU accepts on D-Bus (QEMU's InputButton enum, qapi/ui.json). QEMU does not
 * range-check them: a value past the enum aborts QEMU in its input tracing, so only these are sent.
 */
export const MOUSE_BUTTON_LEFT = 0;
export const MOUSE_BUTTON_MIDDLE = 1;
export const MOUSE_BUTTON_RIGHT = 2;
export const MOUSE_WHEEL_UP = 3;
export const MOUSE_WHEEL_DOWN = 4;
export const MOUSE_BUTTON_SIDE = 5;
export const MOUSE_BUTTON_EXTRA = 6;

/** The buttons the forwarder ever presses (wheel 3/4 are press+release at once). */
export const GUEST_BUTTONS: readonly number[] = [MOUSE_BUTTON_LEFT, MOUSE_BUTTON_MIDDLE, MOUSE_BUTTON_RIGHT, MOUSE_BUTTON_SIDE, MOUSE_BUTTON_EXTRA];

const BUTTONS = new Map<number, number>([
  [BTN_LEFT, MOUSE_BUTTON_LEFT],
  [BTN_MIDDLE, MOUSE_BUTTON_MIDDLE],
  [BTN_RIGHT, MOUSE_BUTTON_RIGHT],
  [BTN_SIDE, MOUSE_BUTTON_SIDE],
  [BTN_EXTRA, MOUSE_BUTTON_EXTRA],
  [BTN_TOUCH, MOUSE_BUTTON_LEFT],
]);

/** Range of an absolute axis: [minimum, maximum]. Replay streams without ioctls get the default. */
export type AbsRange = readonly [number, number];
export const DEFAULT_ABS_RANGE: AbsRange = [0, 0x7fff];
export const WHEEL_HI_RES_PER_NOTCH = 120;
/** Notches applied per frame; more are dropped. A real wheel gives a few per report. */
export const MAX_WHEEL_NOTCHES_PER_FRAME = 8;

/** Press calls (key, button, 2 per wheel notch) allowed in a burst and refilled per second. */
export interface CallBudget {
  burst: number;
  perSecond: number;
}
/**
 * 16 presses at once (at most 3 virtio events each: inside a 64-event queue with room for the
 * releases), 500/s: far above typing, and 250 wheel notches/s. Measured: at 1000/s with bursts of
 * 24 a TCG guest still lost packets under a flood (test/integration/input-hostile.test.ts logs
 * QEMU's drops).
 */
export const DEFAULT_CALL_BUDGET: CallBudget = { burst: 16, perSecond: 500 };
/**
 * How long a grab-next key is held back waiting for the rest of the combination, counted from the
 * last key of it pressed. A chord typed on purpose completes well inside (key to key ~50-150 ms);
 * one slower than this still fires, the guest then sees the early keys pressed and released.
 */
export const HOLD_BACK_MS = 300;
/** Events in one frame before it counts as lost (a keyboard frame has ~3, a 10-finger touch ~70). */
export const MAX_FRAME_EVENTS = 512;
const INT32_MAX = 0x7fffffff;
const clampInt32 = (v: number): number => Math.max(-INT32_MAX - 1, Math.min(INT32_MAX, v));

export interface ForwarderDevice {
  /** ABS_X / ABS_Y ranges from EVIOCGABS (absent: DEFAULT_ABS_RANGE) */
  absX?: AbsRange;
  absY?: AbsRange;
  /** device announces REL_WHEEL_HI_RES (then plain REL_WHEEL is ignored from the start) */
  hiResWheel?: boolean;
  /**
   * A touchscreen (INPUT_PROP_DIRECT + ABS_MT_POSITION_X): ABS_MT_POSITION_X/Y ranges and slot
   * count (ABS_MT_SLOT maximum + 1). Absent: a device (a replay stream) turns touch on with its
   * first ABS_MT event, with DEFAULT_ABS_RANGE and MAX_DEVICE_TOUCH_SLOTS.
   */
  touch?: { x?: AbsRange; y?: AbsRange; slots?: number };
}

export type ForwardMode = 'guest' | 'host';

export interface ForwarderOptions {
  /** null: no toggle, forwarding stays on */
  hotkey: Hotkey | null;
  /** forward EV_KEY value 2 (autorepeat) as repeated presses; default false (the guest repeats itself) */
  autorepeat?: boolean;
  /**
   * The grab-next hotkey (hand-over to the next bridge): null or absent, none. It arms like the
   * toggle; the press that completes it is not forwarded, and once every key is up `onNext` is
   * called - the forwarder changes no mode itself (the status bus decides who takes the devices).
   */
  nextHotkey?: Hotkey | null;
  /** `stampUs`: the completing press's event time (the same on every bridge reading that device) */
  onNext?: (stampUs: number, forwarding: boolean) => void;
  /** called when forwarding switches (the bridge grabs/ungrabs devices there) */
  onModeChange?: (mode: ForwardMode) => void;
  /** mode flips as info, the first failure of a kind as a warning; never per event. Default: silent. */
  log?: Logger;
  /** null: no budget (tests of other rules); default DEFAULT_CALL_BUDGET */
  callBudget?: CallBudget | null;
  /** clock in ms for the budget (tests); default performance.now */
  now?: () => number;
}

export interface ForwarderStats {
  framesApplied: number;
  keysForwarded: number;
  buttonsForwarded: number;
  motions: number;
  wheelNotches: number;
  /** events dropped on purpose: unmapped keys, unknown buttons, host mode, autorepeat off */
  dropped: number;
  /** VM calls that failed (mode flips included) */
  callErrors: number;
  /** wheel notches beyond MAX_WHEEL_NOTCHES_PER_FRAME, not sent */
  wheelNotchesClamped: number;
  /** frames lost: SYN_DROPPED, or longer than MAX_FRAME_EVENTS */
  framesLost: number;
  /** frames whose presses overspent the call budget (their releases were sent) */
  framesThrottled: number;
  /** MultiTouch.SendEvent calls */
  touchEvents: number;
  /** contacts not forwarded: no MultiTouch, console slots all taken, over budget, host mode */
  touchesDropped: number;
}

interface Frame {
  dx: number;
  dy: number;
  absX: number | undefined;
  absY: number | undefined;
  wheel: number;
  wheelHiRes: number;
  keys: InputEvent[];
  /** events since the frame began (all types), against MAX_FRAME_EVENTS */
  events: number;
  /** after SYN_DROPPED: ignore everything up to and including the next SYN_REPORT */
  dropping: boolean;
}

interface DeviceState {
  readonly id: string;
  absX: AbsRange;
  absY: AbsRange;
  hiResWheel: boolean;
  hiResAccumulator: number;
  /** last absolute position (device units) seen, so a frame with only one axis keeps the other */
  lastAbsX: number | undefined;
  lastAbsY: number | undefined;
  /** EV_KEY codes physically down on this device (all modes) */
  readonly down: Set<number>;
  /** keys whose press reached the guest: code -> qnum */
  readonly sentKeys: Map<number, number>;
  /** buttons whose press reached the guest: code -> button */
  readonly sentButtons: Map<number, number>;
  readonly frame: Frame;
  /** multi-touch slot state; undefined until the device is known or seen to be a touch device */
  touch: TouchSlots | undefined;
  touchX: AbsRange;
  touchY: AbsRange;
  /** contacts that reached the guest: device slot -> console slot and last console position */
  readonly sentTouches: Map<number, SentTouch>;
}

interface SentTouch {
  guestSlot: number;
  x: number;
  y: number;
}

function emptyFrame(): Frame {
  return { dx: 0, dy: 0, absX: undefined, absY: undefined, wheel: 0, wheelHiRes: 0, keys: [], events: 0, dropping: false };
}

function clearFrame(f: Frame): void {
  f.dx = 0;
  f.dy = 0;
  f.absX = undefined;
  f.absY = undefined;
  f.wheel = 0;
  f.wheelHiRes = 0;
  f.keys.length = 0;
  f.events = 0;
}

/** Device units -> console pixel, clamped to [0, size-1] (QEMU rejects x >= Width). */
export function scaleAbs(value: number, range: AbsRange, size: number): number {
  const [min, max] = range;
  if (size <= 0) return 0;
  const span = max - min;
  const px = span > 0 ? Math.round(((value - min) * (size - 1)) / span) : 0;
  return Math.min(size - 1, Math.max(0, px));
}

export class InputForwarder {
  private readonly devices = new Map<string, DeviceState>();
  /** guest-side press counts, so two devices holding the same key give one release at the end */
  private readonly guestKeys = new Map<number, number>();
  private readonly guestButtons = new Map<number, number>();
  private modeValue: ForwardMode = 'guest';
  private togglePending = false;
  /** grab-next armed: the completing press's event time, until every key is up */
  private nextPending: number | undefined;
  /**
   * Presses of grab-next keys held back while forwarding (say Ctrl of Ctrl+Alt+N): sent once
   * something else happens (another key, a button, motion, the key's release), dropped when the
   * combination completes - so the hotkey never reaches a guest, and Ctrl+C still does.
   */
  private readonly heldBack: Array<{ dev: DeviceState; code: number }> = [];
  /** sends the held-back keys when the combination does not go on within HOLD_BACK_MS */
  private heldBackTimer: NodeJS.Timeout | undefined;
  private absolute: boolean;
  private cursorX = 0;
  private cursorY = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly logged = new Set<string>();
  private readonly unsubscribe: () => void;
  readonly stats: ForwarderStats = {
    framesApplied: 0,
    keysForwarded: 0,
    buttonsForwarded: 0,
    motions: 0,
    wheelNotches: 0,
    dropped: 0,
    callErrors: 0,
    wheelNotchesClamped: 0,
    framesLost: 0,
    framesThrottled: 0,
    touchEvents: 0,
    touchesDropped: 0,
  };
  /** console touch slots in use (true), shared by all devices; length vm.touchSlots */
  private readonly guestTouchSlots: boolean[];
  private tokens: number;
  private tokensAt: number;

  constructor(
    private readonly vm: VmInput,
    private readonly opts: ForwarderOptions,
  ) {
    this.absolute = vm.isAbsolute;
    this.guestTouchSlots = new Array<boolean>(vm.touchSlots).fill(false);
    this.tokens = (opts.callBudget === undefined ? DEFAULT_CALL_BUDGET : opts.callBudget)?.burst ?? 0;
    this.tokensAt = this.now();
    this.unsubscribe = vm.onAbsoluteChanged((abs) => {
      if (abs !== this.absolute) this.info(`guest pointer is now ${abs ? 'absolute' : 'relative'} (IsAbsolute changed)`);
      this.absolute = abs;
    });
  }

  get mode(): ForwardMode {
    return this.modeValue;
  }

  /** The mode the forwarder currently sends motion in (IsAbsolute, corrected by QEMU's errors). */
  get pointerAbsolute(): boolean {
    return this.absolute;
  }

  get toggleArmed(): boolean {
    return this.togglePending;
  }

  /** Keys/buttons currently held down in the guest (qnums / button numbers), for tests and status. */
  guestDown(): { keys: number[]; buttons: number[] } {
    return { keys: [...this.guestKeys.keys()].sort((a, b) => a - b), buttons: [...this.guestButtons.keys()].sort((a, b) => a - b) };
  }

  addDevice(id: string, dev: ForwarderDevice = {}): void {
    if (this.devices.has(id)) throw new Error(`input device ${id} added twice`);
    const state: DeviceState = {
      id,
      absX: dev.absX ?? DEFAULT_ABS_RANGE,
      absY: dev.absY ?? DEFAULT_ABS_RANGE,
      hiResWheel: dev.hiResWheel ?? false,
      hiResAccumulator: 0,
      lastAbsX: undefined,
      lastAbsY: undefined,
      down: new Set(),
      sentKeys: new Map(),
      sentButtons: new Map(),
      frame: emptyFrame(),
      touch: undefined,
      touchX: dev.touch?.x ?? DEFAULT_ABS_RANGE,
      touchY: dev.touch?.y ?? DEFAULT_ABS_RANGE,
      sentTouches: new Map(),
    };
    this.devices.set(id, state);
    if (dev.touch) this.touchOf(state, dev.touch.slots);
  }

  hasDevice(id: string): boolean {
    return this.devices.has(id);
  }

  /** Device gone (unplugged, closed): release what it holds in the guest, forget it. */
  removeDevice(id: string): Promise<void> {
    const dev = this.devices.get(id);
    if (!dev) return Promise.resolve();
    const done = this.releaseDevice(dev);
    this.devices.delete(id);
    this.maybeToggle();
    return done;
  }

  /** Feed events read from a device (any batch size; frames may span batches). */
  handleEvents(id: string, events: ReadonlyArray<InputEvent>): void {
    const dev = this.devices.get(id);
    if (!dev) return;
    const f = dev.frame;
    for (const ev of events) {
      if (ev.type === EV_SYN) {
        if (ev.code === SYN_REPORT) {
          if (f.dropping) {
            f.dropping = false;
            clearFrame(f);
          } else this.applyFrame(dev);
        } else if (ev.code === SYN_DROPPED) {
          // Kernel semantics: the frame in progress and everything up to the next SYN_REPORT are lost.
          this.frameLost(dev, 'SYN_DROPPED');
        }
        continue;
      }
      if (f.dropping) continue;
      if (++f.events > MAX_FRAME_EVENTS) {
        this.frameLost(dev, `more than ${MAX_FRAME_EVENTS} events without SYN_REPORT`);
        continue;
      }
      switch (ev.type) {
        case EV_KEY:
          f.keys.push(ev);
          break;
        case EV_REL:
          if (ev.code === REL_X) f.dx += ev.value;
          else if (ev.code === REL_Y) f.dy += ev.value;
          else if (ev.code === REL_WHEEL) f.wheel += ev.value;
          else if (ev.code === REL_WHEEL_HI_RES) f.wheelHiRes += ev.value;
          // horizontal wheel and other axes: QEMU 7.2 documents no D-Bus button for them
          break;
        case EV_ABS:
          if (ev.code === ABS_X) f.absX = ev.value;
          else if (ev.code === ABS_Y) f.absY = ev.value;
          else if (TouchSlots.handles(ev.code)) this.touchOf(dev).event(ev.code, ev.value);
          break;
        default:
          break; // EV_MSC (scancodes), EV_LED echoes, EV_REP: nothing to forward
      }
    }
  }

  /** Release everything held in the guest (bridge stop). Resolves when QEMU has answered. */
  async releaseAll(): Promise<void> {
    const all = [...this.devices.values()].map((d) => this.releaseDevice(d));
    await Promise.all(all);
    await this.settled();
  }

  /**
   * Attach / re-attach: a button may still be down in the guest, pressed by a bridge that died
   * (QEMU lifts a vanished listener's keys, not its buttons). Release every button; a release of
   * a button that is up changes nothing in the guest.
   */
  releaseGuestButtons(): Promise<void> {
    return Promise.all(GUEST_BUTTONS.map((b) => this.track(this.vm.mouseRelease(b)))).then(() => undefined);
  }

  /** The VM is gone: its key state went with it. Forget what we sent, call nothing. */
  vmGone(): void {
    for (const dev of this.devices.values()) {
      dev.sentKeys.clear();
      dev.sentButtons.clear();
      dev.sentTouches.clear();
    }
    this.guestKeys.clear();
    this.guestButtons.clear();
    this.guestTouchSlots.fill(false);
  }

  /** Resolves when every VM call issued so far has completed (successfully or not). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  dispose(): void {
    this.unsubscribe();
    this.forgetHeldBack();
  }

  /** Switch forwarding programmatically (e.g. `--no-grab` start in host mode, or a CLI command). */
  setMode(mode: ForwardMode): void {
    if (mode === this.modeValue) return;
    if (mode === 'host') for (const dev of this.devices.values()) void this.releaseDevice(dev);
    if (mode === 'host') this.forgetHeldBack(); // never sent: nothing to release
    this.modeValue = mode;
    this.togglePending = false;
    this.info(mode === 'guest' ? 'forwarding to the guest' : 'released to the host');
    this.opts.onModeChange?.(mode);
  }

  /**
   * The frame in progress and everything up to the next SYN_REPORT are lost, and with them maybe
   * a release: release what this device holds in the guest and take its keys as up (libevdev
   * devices never get here for SYN_DROPPED, it resyncs them; streams and over-long frames do).
   */
  private frameLost(dev: DeviceState, why: string): void {
    const f = dev.frame;
    if (f.dropping) return;
    clearFrame(f);
    f.dropping = true;
    this.stats.framesLost++;
    this.logOnce(`lost:${why}`, `${dev.id}: frame dropped (${why}); what it held in the guest is released (further drops are counted, not logged)`);
    void this.releaseDevice(dev);
    dev.down.clear();
    dev.touch?.reset();
    this.maybeToggle();
  }

  // ---- frame application -------------------------------------------------------------------

  private applyFrame(dev: DeviceState): void {
    const f = dev.frame;
    const forwarding = this.modeValue === 'guest';
    const touches = dev.touch?.commit() ?? [];
    const touchMode = dev.touch !== undefined && this.vm.touchSlots > 0;
    if (touchMode) {
      // The device's pointer emulation would click where the fingers are, a second time.
      f.absX = undefined;
      f.absY = undefined;
      if (f.keys.some((ev) => ev.code === BTN_TOUCH)) f.keys = f.keys.filter((ev) => ev.code !== BTN_TOUCH);
    }
    if (this.heldBack.length > 0 && (f.dx || f.dy || f.absX !== undefined || f.absY !== undefined || f.wheel || f.wheelHiRes)) this.sendHeldBack();
    if (forwarding) this.applyMotion(dev, f);
    else if (f.dx || f.dy || f.absX !== undefined || f.absY !== undefined) this.stats.dropped++;
    if (f.absX !== undefined) dev.lastAbsX = f.absX;
    if (f.absY !== undefined) dev.lastAbsY = f.absY;
    let notches = this.wheelNotches(dev, f);
    let presses = 2 * Math.abs(notches);
    for (const ev of f.keys) if (ev.value === KEY_PRESSED || (ev.value === KEY_REPEAT && this.opts.autorepeat)) presses++;
    if (touchMode && forwarding) for (const t of touches) if (t.kind === 'begin') presses++;
    const send = !forwarding || presses === 0 || this.spend(presses);
    if (!send) {
      this.stats.framesThrottled++;
      this.logOnce('budget', `${dev.id}: more key/button/wheel/touch presses than the guest's input queue takes; dropping presses, sending releases (further drops are counted, not logged)`);
      notches = 0;
    }
    if (touchMode) this.applyTouches(dev, touches, forwarding && send);
    for (const ev of f.keys) this.applyKey(dev, ev, send);
    this.applyWheel(notches);
    clearFrame(f);
    this.stats.framesApplied++;
  }

  /** The device's slot state, created on first use; says once when the VM cannot take touch. */
  private touchOf(dev: DeviceState, slots?: number): TouchSlots {
    if (!dev.touch) {
      dev.touch = new TouchSlots(slots);
      if (this.vm.touchSlots === 0) {
        this.logOnce(
          'no-touch',
          `${dev.id}: touch contacts are not forwarded (ENOMULTITOUCH): this VM's console offers no org.qemu.Display1.MultiTouch; ` +
            `it needs QEMU 8.1+ with -device virtio-multitouch-pci (a touchscreen's pointer emulation still moves the guest pointer)`,
        );
      }
    }
    return dev.touch;
  }

  /**
   * One frame's contact changes -> MultiTouch.SendEvent. `begin` false: host mode or over budget,
   * new contacts are not forwarded (counted); ends and updates of forwarded contacts always are.
   */
  private applyTouches(dev: DeviceState, changes: readonly TouchChange[], begin: boolean): void {
    const { width, height } = this.vm.consoleSize;
    for (const c of changes) {
      const sent = dev.sentTouches.get(c.slot);
      if (c.kind === 'end') {
        if (sent) void this.endTouch(dev, c.slot, sent);
        continue;
      }
      const x = scaleAbs(c.x, dev.touchX, width);
      const y = scaleAbs(c.y, dev.touchY, height);
      if (c.kind === 'update') {
        if (!sent || (sent.x === x && sent.y === y)) continue;
        sent.x = x;
        sent.y = y;
        void this.sendTouch('update', sent.guestSlot, x, y);
        continue;
      }
      const guestSlot = begin ? this.guestTouchSlots.indexOf(false) : -1;
      if (guestSlot < 0) {
        this.stats.touchesDropped++;
        if (begin) this.logOnce('touch-slots', `${dev.id}: all ${this.guestTouchSlots.length} touch slots of the console are in use; further contacts are not forwarded until one lifts (counted, not logged)`);
        continue;
      }
      this.guestTouchSlots[guestSlot] = true;
      dev.sentTouches.set(c.slot, { guestSlot, x, y });
      void this.sendTouch('begin', guestSlot, x, y);
    }
  }

  private endTouch(dev: DeviceState, slot: number, sent: SentTouch): Promise<void> {
    dev.sentTouches.delete(slot);
    this.guestTouchSlots[sent.guestSlot] = false;
    return this.sendTouch('end', sent.guestSlot, sent.x, sent.y);
  }

  private sendTouch(kind: TouchEventKind, guestSlot: number, x: number, y: number): Promise<void> {
    this.stats.touchEvents++;
    return this.track(this.vm.touchEvent(kind, guestSlot, x, y));
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : performance.now();
  }

  /** Token bucket: true (and spent) when `n` presses fit the budget now. */
  private spend(n: number): boolean {
    const budget = this.opts.callBudget === undefined ? DEFAULT_CALL_BUDGET : this.opts.callBudget;
    if (!budget) return true;
    const t = this.now();
    this.tokens = Math.min(budget.burst, this.tokens + ((t - this.tokensAt) * budget.perSecond) / 1000);
    this.tokensAt = t;
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }

  private applyMotion(dev: DeviceState, f: Frame): void {
    const { width, height } = this.vm.consoleSize;
    if (f.absX !== undefined || f.absY !== undefined) {
      const rawX = f.absX ?? dev.lastAbsX;
      const rawY = f.absY ?? dev.lastAbsY;
      const x = rawX === undefined ? this.cursorX : scaleAbs(rawX, dev.absX, width);
      const y = rawY === undefined ? this.cursorY : scaleAbs(rawY, dev.absY, height);
      this.moveTo(x, y);
    }
    if (f.dx !== 0 || f.dy !== 0) {
      if (this.absolute) {
        // A relative mouse driving an absolute guest pointer: move a virtual cursor.
        this.moveTo(this.clampX(this.cursorX + f.dx), this.clampY(this.cursorY + f.dy));
      } else {
        this.cursorX = this.clampX(this.cursorX + f.dx);
        this.cursorY = this.clampY(this.cursorY + f.dy);
        this.sendRel(clampInt32(f.dx), clampInt32(f.dy), true); // RelMotion takes (ii)
      }
    }
  }

  private clampX(x: number): number {
    return Math.min(Math.max(0, this.vm.consoleSize.width - 1), Math.max(0, x));
  }

  private clampY(y: number): number {
    return Math.min(Math.max(0, this.vm.consoleSize.height - 1), Math.max(0, y));
  }

  /** Pointer to console pixel (x, y): SetAbsPosition when absolute, else the delta as RelMotion. */
  private moveTo(x: number, y: number): void {
    const dx = x - this.cursorX;
    const dy = y - this.cursorY;
    this.cursorX = x;
    this.cursorY = y;
    if (this.absolute) this.sendAbs(x, y, dx, dy, true);
    else if (dx !== 0 || dy !== 0) this.sendRel(dx, dy, true);
  }

  private sendAbs(x: number, y: number, dx: number, dy: number, retry: boolean): void {
    this.stats.motions++;
    void this.track(this.vm.setAbsPosition(x, y), (err) => {
      if (classifyMouseError(err) === 'not-absolute') {
        this.flipPointerMode(false);
        if (retry && (dx !== 0 || dy !== 0)) this.sendRel(dx, dy, false);
        return true;
      }
      return false;
    });
  }

  private sendRel(dx: number, dy: number, retry: boolean): void {
    this.stats.motions++;
    void this.track(this.vm.relMotion(dx, dy), (err) => {
      if (classifyMouseError(err) === 'not-relative') {
        this.flipPointerMode(true);
        if (retry) this.sendAbs(this.cursorX, this.cursorY, 0, 0, false);
        return true;
      }
      return false;
    });
  }

  private flipPointerMode(absolute: boolean): void {
    if (this.absolute === absolute) return;
    this.absolute = absolute;
    this.info(`guest pointer is ${absolute ? 'absolute' : 'relative'} (QEMU refused the other mode; IsAbsolute was stale)`);
  }

  /** `send` false: the frame overspent the budget, presses are not sent (releases always are). */
  private applyKey(dev: DeviceState, ev: InputEvent, send: boolean): void {
    const code = ev.code;
    if (ev.value === KEY_PRESSED) dev.down.add(code);
    else if (ev.value === KEY_RELEASED) dev.down.delete(code);

    const isKey = isKeyboardKey(code);
    const button = isKey ? undefined : BUTTONS.get(code);
    if (ev.value === KEY_PRESSED) {
      const next = this.opts.nextHotkey;
      if (next && hotkeyIncludes(next, code) && hotkeyHeld(next, (c) => this.anyDown(c))) {
        // The hand-over hotkey is complete: none of its keys reaches this VM (the held-back ones
        // are forgotten, their releases then find nothing sent) nor the next (all up before it).
        if (this.nextPending === undefined) this.info(`grab-next hotkey ${next.spec} held, handing over once all keys are up`);
        this.nextPending = ev.timeUs;
        this.stats.dropped += 1 + this.heldBack.length;
        this.forgetHeldBack();
        return;
      }
      if (next && hotkeyIncludes(next, code) && this.modeValue === 'guest' && send) {
        // Once per key and device: a device repeating a press without its release must not grow this.
        if (!this.heldBack.some((h) => h.dev === dev && h.code === code)) this.heldBack.push({ dev, code });
        this.armHeldBack();
      }
      else {
        this.sendHeldBack();
        if (this.modeValue === 'guest' && send) {
          if (isKey) this.pressKey(dev, code);
          else if (button !== undefined) this.pressButton(dev, code, button);
          else this.stats.dropped++;
        } else this.stats.dropped++;
      }
      if (this.opts.hotkey && hotkeyIncludes(this.opts.hotkey, code) && hotkeyHeld(this.opts.hotkey, (c) => this.anyDown(c))) {
        if (!this.togglePending) this.info(`toggle hotkey ${this.opts.hotkey.spec} held, switching once all keys are up`);
        this.togglePending = true;
      }
    } else if (ev.value === KEY_RELEASED) {
      if (this.heldBack.some((h) => h.dev === dev && h.code === code)) this.sendHeldBack(code); // a tap of a hotkey key alone: the guest gets the tap
      if (isKey) void this.releaseKey(dev, code);
      else void this.releaseButton(dev, code);
      this.maybeToggle();
    } else if (ev.value === KEY_REPEAT) {
      const qnum = dev.sentKeys.get(code);
      if (this.opts.autorepeat && qnum !== undefined && this.modeValue === 'guest' && send) {
        this.stats.keysForwarded++;
        void this.track(this.vm.keyPress(qnum)); // QEMU treats a press of a held key as autorepeat
      } else this.stats.dropped++;
    }
  }

  /** (Re)starts the hold-back deadline: the combination went on (or began) just now. */
  private armHeldBack(): void {
    if (this.heldBackTimer) clearTimeout(this.heldBackTimer);
    this.heldBackTimer = setTimeout(() => {
      this.heldBackTimer = undefined;
      // Not under a device's event handler (which catches): nothing may escape to Node's loop.
      try {
        this.sendHeldBack();
      } catch (err) {
        this.logOnce('held-back', `sending a held-back key failed (${String(err)}); input goes on`);
      }
    }, HOLD_BACK_MS);
    this.heldBackTimer.unref?.();
  }

  /** The held-back keys are not to be sent (the combination completed, or the host has the input). */
  private forgetHeldBack(): void {
    this.heldBack.length = 0;
    if (this.heldBackTimer) clearTimeout(this.heldBackTimer);
    this.heldBackTimer = undefined;
  }

  /** Presses the held-back grab-next keys still down (or being released: `releasing`), in the order they came. */
  private sendHeldBack(releasing?: number): void {
    // Runs for every press: nothing to allocate when nothing is held back (the common case).
    if (this.heldBack.length === 0) return;
    const held = this.heldBack.splice(0);
    if (this.heldBackTimer) clearTimeout(this.heldBackTimer);
    this.heldBackTimer = undefined;
    for (const { dev, code } of held) {
      if (this.devices.get(dev.id) !== dev || !(dev.down.has(code) || code === releasing) || this.modeValue !== 'guest') continue;
      if (isKeyboardKey(code)) this.pressKey(dev, code);
      else {
        const button = BUTTONS.get(code);
        if (button !== undefined) this.pressButton(dev, code, button);
      }
    }
  }

  private pressKey(dev: DeviceState, code: number): void {
    const qnum = linuxToQnum(code);
    if (qnum === 0 || dev.sentKeys.has(code)) {
      this.stats.dropped++;
      return;
    }
    dev.sentKeys.set(code, qnum);
    const n = this.guestKeys.get(qnum) ?? 0;
    this.guestKeys.set(qnum, n + 1);
    if (n === 0) {
      this.stats.keysForwarded++;
      void this.track(this.vm.keyPress(qnum));
    }
  }

  private releaseKey(dev: DeviceState, code: number): Promise<void> {
    const qnum = dev.sentKeys.get(code);
    if (qnum === undefined) return Promise.resolve(); // its press never reached the guest
    dev.sentKeys.delete(code);
    const n = (this.guestKeys.get(qnum) ?? 1) - 1;
    if (n > 0) {
      this.guestKeys.set(qnum, n);
      return Promise.resolve();
    }
    this.guestKeys.delete(qnum);
    this.stats.keysForwarded++;
    return this.track(this.vm.keyRelease(qnum));
  }

  private pressButton(dev: DeviceState, code: number, button: number): void {
    if (dev.sentButtons.has(code)) return;
    dev.sentButtons.set(code, button);
    const n = this.guestButtons.get(button) ?? 0;
    this.guestButtons.set(button, n + 1);
    if (n === 0) {
      this.stats.buttonsForwarded++;
      void this.track(this.vm.mousePress(button));
    }
  }

  private releaseButton(dev: DeviceState, code: number): Promise<void> {
    const button = dev.sentButtons.get(code);
    if (button === undefined) return Promise.resolve();
    dev.sentButtons.delete(code);
    const n = (this.guestButtons.get(button) ?? 1) - 1;
    if (n > 0) {
      this.guestButtons.set(button, n);
      return Promise.resolve();
    }
    this.guestButtons.delete(button);
    this.stats.buttonsForwarded++;
    return this.track(this.vm.mouseRelease(button));
  }

  /** Whole notches in this frame (hi-res accumulated), clamped to MAX_WHEEL_NOTCHES_PER_FRAME; 0 in host mode. */
  private wheelNotches(dev: DeviceState, f: Frame): number {
    if (f.wheelHiRes !== 0) dev.hiResWheel = true;
    let notches: number;
    if (dev.hiResWheel) {
      // Hi-res mice also send REL_WHEEL for each whole notch: counting both would double-scroll.
      dev.hiResAccumulator += f.wheelHiRes;
      notches = Math.trunc(dev.hiResAccumulator / WHEEL_HI_RES_PER_NOTCH);
      dev.hiResAccumulator -= notches * WHEEL_HI_RES_PER_NOTCH;
    } else notches = f.wheel;
    if (notches === 0) return 0;
    if (Math.abs(notches) > MAX_WHEEL_NOTCHES_PER_FRAME) {
      this.stats.wheelNotchesClamped += Math.abs(notches) - MAX_WHEEL_NOTCHES_PER_FRAME;
      this.logOnce('wheel', `${dev.id}: ${Math.abs(notches)} wheel notches in one frame, sending ${MAX_WHEEL_NOTCHES_PER_FRAME} (further clamps are counted, not logged)`);
      notches = Math.sign(notches) * MAX_WHEEL_NOTCHES_PER_FRAME;
    }
    if (this.modeValue !== 'guest') {
      this.stats.dropped++;
      return 0;
    }
    return notches;
  }

  private applyWheel(notches: number): void {
    if (notches === 0) return;
    const button = notches > 0 ? MOUSE_WHEEL_UP : MOUSE_WHEEL_DOWN;
    for (let i = Math.abs(notches); i > 0; i--) {
      this.stats.wheelNotches++;
      void this.track(this.vm.mousePress(button));
      void this.track(this.vm.mouseRelease(button));
    }
  }

  // ---- toggle and release --------------------------------------------------------------------

  private anyDown(code: number): boolean {
    for (const d of this.devices.values()) if (d.down.has(code)) return true;
    return false;
  }

  private allUp(): boolean {
    for (const d of this.devices.values()) if (d.down.size > 0) return false;
    return true;
  }

  private maybeToggle(): void {
    if (this.nextPending !== undefined && this.allUp()) {
      const stamp = this.nextPending;
      this.nextPending = undefined;
      this.opts.onNext?.(stamp, this.modeValue === 'guest');
      return;
    }
    if (!this.togglePending || !this.allUp()) return;
    this.setMode(this.modeValue === 'guest' ? 'host' : 'guest');
  }

  private releaseDevice(dev: DeviceState): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const code of [...dev.sentKeys.keys()]) pending.push(this.releaseKey(dev, code));
    for (const code of [...dev.sentButtons.keys()]) pending.push(this.releaseButton(dev, code));
    for (const [slot, sent] of [...dev.sentTouches]) pending.push(this.endTouch(dev, slot, sent));
    return Promise.all(pending).then(() => undefined);
  }

  /** Every VM call goes through here: errors are counted and logged once per kind, never thrown. */
  private track(call: Promise<void>, onError?: (err: unknown) => boolean): Promise<void> {
    const p = call.then(
      () => undefined,
      (err: unknown) => {
        this.stats.callErrors++;
        if (onError?.(err)) return;
        const msg = err instanceof Error ? err.message : String(err);
        this.logOnce(msg.replace(/\d+/g, 'N'), `VM call failed: ${msg} (further failures like this are counted, not logged)`);
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  private logOnce(kind: string, msg: string): void {
    if (this.logged.has(kind)) return;
    this.logged.add(kind);
    this.opts.log?.warn(msg);
  }

  private info(msg: string): void {
    this.opts.log?.info(msg);
  }
}

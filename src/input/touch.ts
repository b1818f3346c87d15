// Multi-touch protocol B (kernel Documentation/input/multi-touch-protocol.rst) for one device:
// ABS_MT_SLOT / ABS_MT_TRACKING_ID / ABS_MT_POSITION_X/Y events in, per-frame contact changes
// (begin / update / end, per device slot, in device units) out. Pure state, no VM, no timers: the
// forwarder maps device slots to the console's MultiTouch slots and scales the positions.
//
// Bounded whatever the device sends: the slot table has at most MAX_DEVICE_TOUCH_SLOTS entries
// (a device may claim any ABS_MT_SLOT range), a slot number outside the table selects no slot
// (its data is ignored until the next valid ABS_MT_SLOT), and a commit yields at most two
// changes per slot (end + begin when a slot's contact is replaced within one frame).
import { ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_SLOT, ABS_MT_TRACKING_ID } from './events';

/** Device slots tracked; more than any touchscreen has (QEMU forwards at most 10 anyway). */
export const MAX_DEVICE_TOUCH_SLOTS = 64;

export type TouchChangeKind = 'begin' | 'update' | 'end';

export interface TouchChange {
  kind: TouchChangeKind;
  /** device slot, 0 <= slot < slotCount */
  slot: number;
  /** device units (ABS_MT_POSITION_X/Y), as last reported for the slot */
  x: number;
  y: number;
}

interface Slot {
  /** tracking id as of the last commit; -1: no contact */
  committedId: number;
  /** tracking id with this frame's events applied */
  id: number;
  x: number;
  y: number;
  /** position changed in this frame */
  moved: boolean;
  /** listed in `changed` */
  listed: boolean;
}

export class TouchSlots {
  readonly slotCount: number;
  private readonly slots: Slot[];
  /** -1: the last ABS_MT_SLOT was out of range; MT data goes nowhere until a valid one */
  private current = 0;
  /** slots touched in this frame, each once */
  private readonly changed: number[] = [];
  /** MT events dropped: slot out of range, or data while no valid slot is selected */
  ignored = 0;

  /** `slotCount`: ABS_MT_SLOT maximum + 1 from the device (streams: MAX_DEVICE_TOUCH_SLOTS) */
  constructor(slotCount: number = MAX_DEVICE_TOUCH_SLOTS) {
    this.slotCount = Number.isInteger(slotCount) ? Math.max(1, Math.min(MAX_DEVICE_TOUCH_SLOTS, slotCount)) : MAX_DEVICE_TOUCH_SLOTS;
    this.slots = Array.from({ length: this.slotCount }, () => ({ committedId: -1, id: -1, x: 0, y: 0, moved: false, listed: false }));
  }

  /** True when `code` is a multi-touch code this state machine consumes. */
  static handles(code: number): boolean {
    return code === ABS_MT_SLOT || code === ABS_MT_TRACKING_ID || code === ABS_MT_POSITION_X || code === ABS_MT_POSITION_Y;
  }

  /** One EV_ABS event with a code for which handles() is true. */
  event(code: number, value: number): void {
    if (code === ABS_MT_SLOT) {
      this.current = Number.isInteger(value) && value >= 0 && value < this.slotCount ? value : -1;
      if (this.current < 0) this.ignored++;
      return;
    }
    if (this.current < 0) {
      this.ignored++;
      return;
    }
    const s = this.slots[this.current];
    if (code === ABS_MT_TRACKING_ID) s.id = value < 0 ? -1 : value;
    else if (code === ABS_MT_POSITION_X) {
      s.x = value;
      s.moved = true;
    } else if (code === ABS_MT_POSITION_Y) {
      s.y = value;
      s.moved = true;
    } else return;
    if (!s.listed) {
      s.listed = true;
      this.changed.push(this.current);
    }
  }

  /** SYN_REPORT: this frame's contact changes in slot order (ends before begins within a slot). */
  commit(): TouchChange[] {
    const out: TouchChange[] = [];
    this.changed.sort((a, b) => a - b);
    for (const i of this.changed) {
      const s = this.slots[i];
      const was = s.committedId;
      if (was >= 0 && s.id !== was) out.push({ kind: 'end', slot: i, x: s.x, y: s.y });
      if (s.id >= 0 && s.id !== was) out.push({ kind: 'begin', slot: i, x: s.x, y: s.y });
      else if (s.id >= 0 && s.moved) out.push({ kind: 'update', slot: i, x: s.x, y: s.y });
      s.committedId = s.id;
      s.moved = false;
      s.listed = false;
    }
    this.changed.length = 0;
    return out;
  }

  /** Slots with a contact as of the last commit. */
  active(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.slotCount; i++) if (this.slots[i].committedId >= 0) out.push(i);
    return out;
  }

  /**
   * State unknown (frame lost): every contact is taken as lifted and this frame's changes are
   * dropped. A finger still down then moves no contact until it is lifted and put down again:
   * a lost touch, never a stuck one. The selected slot is kept (the kernel resends it only on change).
   */
  reset(): void {
    for (const s of this.slots) {
      s.committedId = -1;
      s.id = -1;
      s.moved = false;
      s.listed = false;
    }
    this.changed.length = 0;
  }
}

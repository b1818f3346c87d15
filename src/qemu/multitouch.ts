// org.qemu.Display1.MultiTouch (QEMU 8.1+) on Console_N; absent on 7.2 (see capabilities).
import { QemuDbusError } from './errors';
import { MultiTouchProxy } from './generated/display1';
import type { RemoteObject } from './remote-object';

export const TouchKind = { Begin: 0, Update: 1, End: 2, Cancel: 3 } as const;
export type TouchKindValue = (typeof TouchKind)[keyof typeof TouchKind];

/** QEMU's INPUT_EVENT_SLOTS_MAX: SendEvent refuses a slot number from here on. */
export const MULTITOUCH_MAX_SLOTS = 10;

export class MultiTouch {
  readonly proxy: MultiTouchProxy;
  constructor(object: RemoteObject) {
    this.proxy = new MultiTouchProxy(object);
  }
  /** x, y in console pixels; slot < MaxSlots (10). */
  sendEvent(kind: TouchKindValue, slot: number, x: number, y: number): Promise<void> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= MULTITOUCH_MAX_SLOTS) {
      throw new QemuDbusError('EBAD_ARGUMENT', `touch slot ${slot} outside 0..${MULTITOUCH_MAX_SLOTS - 1}`, 'use slots 0..MaxSlots-1');
    }
    return this.proxy.sendEvent(kind, BigInt(slot), x, y);
  }
  maxSlots(): Promise<number> {
    return this.proxy.getMaxSlots();
  }
}

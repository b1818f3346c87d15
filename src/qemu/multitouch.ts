// org.qemu.Display1.MultiTouch (QEMU 8.1+) on Console_N; absent on 7.2 (see capabilities).
import { QemuDbusError } from './errors';
import { MultiTouchProxy } from './generated/display1';
import type { RemoteObject } from './remote-object';

export const TouchKind = { Begin: 0, Update: 1, End: 2, Cancel: 3 } as const;
export type TouchKindValue = (typeof TouchKind)[keyof typeof TouchKind];

export class MultiTouch {
  readonly proxy: MultiTouchProxy;
  constructor(object: RemoteObject) {
    this.proxy = new MultiTouchProxy(object);
  }
  /** x, y in console pixels; slot < MaxSlots (10). */
  sendEvent(kind: TouchKindValue, slot: number, x: number, y: number): Promise<void> {
    if (!Number.isInteger(slot) || slot < 0 || slot >= 10) {
      throw new QemuDbusError('EBAD_ARGUMENT', `touch slot ${slot} outside 0..9`, 'use slots 0..MaxSlots-1');
    }
    return this.proxy.sendEvent(kind, BigInt(slot), x, y);
  }
  maxSlots(): Promise<number> {
    return this.proxy.getMaxSlots();
  }
}

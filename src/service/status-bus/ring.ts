// The hand-over ring (grab-next hotkey): which bridges share the devices, in which order, and
// what one bridge does when the hotkey fires on it. Pure decisions, unit-tested
// (test/unit/handover-ring.test.ts); service.ts reads the bus and carries them out.
//
// Rules:
// - The ring is every bridge on the session bus whose input devices are the same set as this
//   one's (paths compared as a set: the same keyboard and mouse), ordered by VM name (code-unit
//   order, the same on every bridge), then the host: host -> ring[0] -> ring[1] -> ... -> host.
// - Exactly one bridge acts on one press: the one that held the devices when it fired (it
//   releases, then hands over to its successor, or to the host after the last); from the host
//   (nobody held them) the first bridge of the ring grabs. Every other bridge does nothing.
//   With real devices only the holder even sees the press (EVIOCGRAB); replay streams reach every
//   bridge, so "held when it fired" is asked per press (its event time), not by current state.

export interface RingMember {
  /** the bridge's well-known name on the session bus */
  busName: string;
  vm: string;
  /** its input devices and replay streams (the input route's `devices` counter) */
  devices: readonly string[];
}

/** The same devices, in any order. */
export function sameDevices(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((d) => set.has(d));
}

/** The ring `self` is in: the members with its devices (self included once), ordered by VM name. */
export function ringOf(self: RingMember, others: readonly RingMember[]): RingMember[] {
  const ring = [self, ...others.filter((o) => o.busName !== self.busName && sameDevices(o.devices, self.devices))];
  return ring.sort((a, b) => (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : a.busName < b.busName ? -1 : a.busName > b.busName ? 1 : 0));
}

export type NextDecision =
  /** another bridge acts on this press */
  | { act: 'none' }
  /** nobody held the devices and this bridge is first in the ring: take them */
  | { act: 'grab' }
  /** this bridge held them: release, then give them to `to` (undefined: the host keeps them) */
  | { act: 'hand-over'; to: RingMember | undefined };

/** Whether `self` must ask the others if they held the devices (it is first and did not hold them). */
export function mustAskOthers(ring: readonly RingMember[], self: RingMember, forwarding: boolean): boolean {
  return !forwarding && ring[0]?.busName === self.busName && ring.length > 1;
}

/**
 * What `self` does on a grab-next press. `forwarding`: input went to this VM when the press fired;
 * `otherHeld`: another bridge of the ring held the devices then (needed when mustAskOthers).
 */
export function decideNext(ring: readonly RingMember[], self: RingMember, forwarding: boolean, otherHeld: boolean): NextDecision {
  const i = ring.findIndex((m) => m.busName === self.busName);
  if (forwarding) return { act: 'hand-over', to: i >= 0 ? ring[i + 1] : undefined };
  if (i !== 0 || otherHeld) return { act: 'none' };
  return { act: 'grab' };
}

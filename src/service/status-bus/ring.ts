// The hand-over ring (grab-next hotkey): which bridges share the devices, in which order, and
// what one bridge does when the hotkey fires on it. Pure decisions, unit-tested
// (test/unit/handover-ring.test.ts); service.ts reads the bus and carries them out.
//
// Rules:
// - The ring is every bridge on the session bus whose input devices are the same set as this
//   one's (paths compared as a set: the same keyboard and mouse), ordered by each bridge's ring
//   order ([input] ring_order / --ring-order, default 0; lowest first), then by VM name (code-unit
//   order), then the host: host -> ring[0] -> ring[1] -> ... -> host. Default: by VM name.
// - Why a number per bridge and not a list of VM names: with one unit per VM each config says
//   only where its own VM stands, and each bridge publishes that number on the session bus (the
//   input counters' ringOrder). Every bridge sorts the same published numbers the same way, so
//   two bridges cannot hold two different orders; equal numbers fall back to the name. A bridge
//   that publishes none (an older version) stands at 0. The ring is read anew at each press, so
//   a changed ring_order counts from the bridge's restart on.
// - Views can still differ for the few milliseconds of one press when a bridge starts, stops or
//   restarts with another ring_order meanwhile. Then no press loops (only the holder acts, and a
//   TakeOver hands on nothing: one press moves the input one step at most) and no two bridges
//   both grab from the host: a bridge about to grab claims the press first and counts as holding
//   it when the others ask (heldAtPress), so of two that both think they are first either one
//   grabs or neither does (that press is lost; the next one finds consistent views).
// - Exactly one bridge acts on one press: the one that held the devices when it fired (it
//   releases, then hands over to its successor, or to the host after the last); from the host
//   (nobody held them) the first bridge of the ring grabs. Every other bridge does nothing.
//   With real devices only the holder even sees the press (EVIOCGRAB); replay streams reach every
//   bridge, so "held when it fired" is asked per press (its event time), not by current state.

export interface RingMember {
  /** the bridge's well-known name on the session bus */
  busName: string;
  vm: string;
  /** its ring order (lowest first; the input counters' ringOrder) */
  order: number;
  /** its input devices and replay streams (the input route's `devices` counter) */
  devices: readonly string[];
}

/** The same devices, in any order. */
export function sameDevices(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((d) => set.has(d));
}

/** Ring order: by `order`, then VM name, then bus name (unique), so it is total and the same everywhere. */
export function compareMembers(a: RingMember, b: RingMember): number {
  if (a.order !== b.order) return a.order < b.order ? -1 : 1;
  if (a.vm !== b.vm) return a.vm < b.vm ? -1 : 1;
  return a.busName < b.busName ? -1 : a.busName > b.busName ? 1 : 0;
}

/** The ring `self` is in: the members with its devices (self included once), in ring order. */
export function ringOf(self: RingMember, others: readonly RingMember[]): RingMember[] {
  const ring = [self, ...others.filter((o) => o.busName !== self.busName && sameDevices(o.devices, self.devices))];
  return ring.sort(compareMembers);
}

/**
 * ForwardingAtNext's answer for press `stampUs`: input went to this VM then, or this bridge has
 * claimed that press to grab from the host (`claimedUs`, set before it asks the others).
 */
export function heldAtPress(forwardingAt: boolean, claimedUs: number | undefined, stampUs: number): boolean {
  return forwardingAt || claimedUs === stampUs;
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

// The hand-over ring (src/service/status-bus/ring.ts): who is in the ring, its order, and which
// bridge acts on a grab-next press. One behaviour per test.
import { describe, expect, it } from 'vitest';
import { decideNext, mustAskOthers, ringOf, sameDevices, type RingMember } from '../../src/service/status-bus/ring';

const KBD = '/dev/input/by-id/usb-kbd-event-kbd';
const MOUSE = '/dev/input/by-id/usb-mouse-event-mouse';
const member = (vm: string, devices: string[] = [KBD, MOUSE]): RingMember => ({ busName: `io.github.qemu_dbus_bridge.Vm.${vm}`, vm, devices });

describe('ring membership and order', () => {
  it('the same devices in another order are the same devices', () => {
    expect(sameDevices([KBD, MOUSE], [MOUSE, KBD])).toBe(true);
  });

  it('a subset of the devices is not the same devices', () => {
    expect(sameDevices([KBD, MOUSE], [KBD])).toBe(false);
  });

  it('the ring is ordered by VM name whoever computes it', () => {
    const [a, b, c] = [member('alpha'), member('beta'), member('gamma')];
    expect(ringOf(b, [c, a]).map((m) => m.vm)).toEqual(['alpha', 'beta', 'gamma']);
    expect(ringOf(c, [b, a]).map((m) => m.vm)).toEqual(['alpha', 'beta', 'gamma']);
  });

  it('a bridge forwarding other devices is not in the ring', () => {
    expect(ringOf(member('alpha'), [member('beta', [KBD]), member('gamma')]).map((m) => m.vm)).toEqual(['alpha', 'gamma']);
  });

  it('the bridge itself is in the ring once even when the bus lists it too', () => {
    const a = member('alpha');
    expect(ringOf(a, [a, member('beta')]).map((m) => m.vm)).toEqual(['alpha', 'beta']);
  });
});

describe('who acts on a grab-next press', () => {
  const [a, b, c] = [member('alpha'), member('beta'), member('gamma')];
  const ring = [a, b, c];

  it('the bridge that held the devices hands them to the next in the ring', () => {
    expect(decideNext(ring, a, true, false)).toEqual({ act: 'hand-over', to: b });
  });

  it('the last bridge of the ring hands them back to the host', () => {
    expect(decideNext(ring, c, true, false)).toEqual({ act: 'hand-over', to: undefined });
  });

  it('from the host, the first bridge of the ring grabs', () => {
    expect(decideNext(ring, a, false, false)).toEqual({ act: 'grab' });
  });

  it('from the host, every other bridge does nothing', () => {
    expect(decideNext(ring, b, false, false)).toEqual({ act: 'none' });
    expect(decideNext(ring, c, false, false)).toEqual({ act: 'none' });
  });

  it('the first bridge does not grab when another held the devices at that press (their holder acts)', () => {
    expect(decideNext(ring, a, false, true)).toEqual({ act: 'none' });
  });

  it('only the first bridge, not holding, asks the others', () => {
    expect(mustAskOthers(ring, a, false)).toBe(true);
    expect(mustAskOthers(ring, a, true)).toBe(false);
    expect(mustAskOthers(ring, b, false)).toBe(false);
  });

  it('a bridge alone in its ring toggles: host -> it -> host', () => {
    expect(mustAskOthers([a], a, false)).toBe(false);
    expect(decideNext([a], a, false, false)).toEqual({ act: 'grab' });
    expect(decideNext([a], a, true, false)).toEqual({ act: 'hand-over', to: undefined });
  });
});

// The hand-over ring (src/service/status-bus/ring.ts): who is in the ring, its order, and which
// bridge acts on a grab-next press. One behaviour per test.
import { describe, expect, it } from 'vitest';
import { decideNext, heldAtPress, mustAskOthers, ringOf, sameDevices, type RingMember } from '../../src/service/status-bus/ring';

const KBD = '/dev/input/by-id/usb-kbd-event-kbd';
const MOUSE = '/dev/input/by-id/usb-mouse-event-mouse';
const member = (vm: string, devices: string[] = [KBD, MOUSE], order = 0): RingMember => ({ busName: `io.github.qemu_dbus_bridge.Vm.${vm}`, vm, order, devices });
const ordered = (vm: string, order: number): RingMember => member(vm, [KBD, MOUSE], order);

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

  it('ring_order comes before the name: lowest first, whoever computes the ring', () => {
    const [win, work, lab] = [ordered('win', 1), ordered('work', -5), ordered('lab', 1)];
    for (const [self, others] of [
      [win, [work, lab]],
      [work, [lab, win]],
      [lab, [win, work]],
    ] as const) {
      expect(ringOf(self, others).map((m) => m.vm)).toEqual(['work', 'lab', 'win']);
    }
  });

  it('a bridge that publishes no ring order (0) sorts by name among the default ones', () => {
    expect(ringOf(member('beta'), [ordered('alpha', 0), ordered('zulu', -1)]).map((m) => m.vm)).toEqual(['zulu', 'alpha', 'beta']);
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

  it('with ring orders set, presses walk the ring once and back to the host, exactly one bridge acting on each', () => {
    // Three bridges, each computing the ring itself from the others as the bus lists them.
    const all = [ordered('alpha', 2), ordered('beta', 0), ordered('gamma', 1)];
    let holder: string | undefined; // undefined: the host
    const visited: string[] = [];
    for (let press = 0; press < 4; press++) {
      const actions = all.map((self) => {
        const r = ringOf(self, all.filter((o) => o !== self).reverse());
        const forwarding = holder === self.vm;
        const otherHeld = mustAskOthers(r, self, forwarding) && holder !== undefined;
        return [self.vm, decideNext(r, self, forwarding, otherHeld)] as const;
      });
      const acting = actions.filter(([, d]) => d.act !== 'none');
      expect(acting, `press ${press}`).toHaveLength(1);
      const [vm, d] = acting[0];
      holder = d.act === 'grab' ? vm : d.act === 'hand-over' ? d.to?.vm : holder;
      visited.push(holder ?? 'host');
    }
    expect(visited).toEqual(['beta', 'gamma', 'alpha', 'host']);
  });

  describe('two bridges that see different orders during one press (one restarted with another ring_order meanwhile)', () => {
    // alpha saw beta's old order and beta saw alpha's: each thinks it is first, from the host.
    const alpha = ordered('alpha', 0);
    const beta = ordered('beta', 0);
    const alphaView = [alpha, ordered('beta', 1)];
    const betaView = [beta, ordered('alpha', 1)];
    const S = 1000;
    /** One bridge's part of a press from the host: claim if it must ask, ask the other, decide. */
    const act = (self: RingMember, view: RingMember[], other: { claimedUs: number | undefined }, mine: { claimedUs: number | undefined }) => {
      if (mustAskOthers(view, self, false)) mine.claimedUs = S;
      const otherHeld = heldAtPress(false, other.claimedUs, S);
      return decideNext(view, self, false, otherHeld).act;
    };

    it('both think they are first', () => {
      expect([mustAskOthers(alphaView, alpha, false), mustAskOthers(betaView, beta, false)]).toEqual([true, true]);
    });

    it('one asks before the other claimed: it alone grabs, the other stands back', () => {
      const a = { claimedUs: undefined as number | undefined };
      const b = { claimedUs: undefined as number | undefined };
      const first = act(alpha, alphaView, b, a);
      const second = act(beta, betaView, a, b);
      expect([first, second]).toEqual(['grab', 'none']);
    });

    it('both claimed before either asked: neither grabs (that press is lost, nobody fights)', () => {
      const a = { claimedUs: S as number | undefined };
      const b = { claimedUs: S as number | undefined };
      expect([act(alpha, alphaView, b, a), act(beta, betaView, a, b)]).toEqual(['none', 'none']);
    });

    it('a claim for an earlier press does not count for this one', () => {
      expect(heldAtPress(false, S - 1, S)).toBe(false);
      expect(heldAtPress(true, undefined, S)).toBe(true);
    });
  });

  it('a bridge alone in its ring toggles: host -> it -> host', () => {
    expect(mustAskOthers([a], a, false)).toBe(false);
    expect(decideNext([a], a, false, false)).toEqual({ act: 'grab' });
    expect(decideNext([a], a, true, false)).toEqual({ act: 'hand-over', to: undefined });
  });
});

// Multi-touch: the protocol B slot state machine (src/input/touch.ts) with hostile values, and the
// forwarder's MultiTouch route (console slot pool, scaling, budget, no stuck contact).
import { describe, expect, it } from 'vitest';
import { describeDevice } from '../../src/input/device';
import {
  ABS_MT_POSITION_X,
  ABS_MT_POSITION_Y,
  ABS_MT_SLOT,
  ABS_MT_TRACKING_ID,
  ABS_X,
  ABS_Y,
  BTN_TOUCH,
  EV_ABS,
  EV_KEY,
  EV_SYN,
  INPUT_PROP_DIRECT,
  SYN_DROPPED,
  SYN_REPORT,
} from '../../src/input/events';
import { RecordingVmInput, sentAfterAttach } from '../fakes/input';
import { DEFAULT_CALL_BUDGET, ForwarderDevice, InputForwarder, MAX_FRAME_EVENTS } from '../../src/input/forwarder';
import { EventScript } from '../../src/input/replay-writer';
import { MAX_DEVICE_TOUCH_SLOTS, TouchSlots } from '../../src/input/touch';
import { lineLogger } from '../fakes/logger';

const abs = (code: number, value: number) => ({ type: EV_ABS, code, value, timeUs: 0 });
const SYN = { type: EV_SYN, code: SYN_REPORT, value: 0, timeUs: 0 };

function feed(t: TouchSlots, events: Array<[number, number]>) {
  for (const [code, value] of events) t.event(code, value);
  return t.commit();
}

describe('TouchSlots (protocol B)', () => {
  it('a new tracking id begins a contact at the frame position, a move updates it, -1 ends it', () => {
    const t = new TouchSlots(10);
    expect(feed(t, [[ABS_MT_SLOT, 2], [ABS_MT_TRACKING_ID, 7], [ABS_MT_POSITION_X, 100], [ABS_MT_POSITION_Y, 200]])).toEqual([{ kind: 'begin', slot: 2, x: 100, y: 200 }]);
    expect(feed(t, [[ABS_MT_POSITION_X, 150]])).toEqual([{ kind: 'update', slot: 2, x: 150, y: 200 }]);
    expect(feed(t, [[ABS_MT_TRACKING_ID, -1]])).toEqual([{ kind: 'end', slot: 2, x: 150, y: 200 }]);
    expect(t.active()).toEqual([]);
  });

  it('slot selection persists across frames (the kernel resends ABS_MT_SLOT only on change)', () => {
    const t = new TouchSlots(10);
    feed(t, [[ABS_MT_SLOT, 3], [ABS_MT_TRACKING_ID, 1]]);
    expect(feed(t, [[ABS_MT_POSITION_Y, 9]])).toEqual([{ kind: 'update', slot: 3, x: 0, y: 9 }]);
  });

  it('a slot whose contact is replaced within one frame ends the old one before beginning the new one', () => {
    const t = new TouchSlots(10);
    feed(t, [[ABS_MT_TRACKING_ID, 1], [ABS_MT_POSITION_X, 5]]);
    expect(feed(t, [[ABS_MT_TRACKING_ID, 2], [ABS_MT_POSITION_X, 6]])).toEqual([
      { kind: 'end', slot: 0, x: 6, y: 0 },
      { kind: 'begin', slot: 0, x: 6, y: 0 },
    ]);
  });

  it('changes come out in slot order, one entry per slot however many events it got', () => {
    const t = new TouchSlots(10);
    const events: Array<[number, number]> = [[ABS_MT_SLOT, 5], [ABS_MT_TRACKING_ID, 50], [ABS_MT_SLOT, 1], [ABS_MT_TRACKING_ID, 10]];
    for (let i = 0; i < 100; i++) events.push([ABS_MT_POSITION_X, i]);
    expect(feed(t, events)).toEqual([
      { kind: 'begin', slot: 1, x: 99, y: 0 },
      { kind: 'begin', slot: 5, x: 0, y: 0 },
    ]);
  });

  it('a slot number outside the table (negative, beyond the count, huge) selects nothing: its data is dropped and counted', () => {
    const t = new TouchSlots(4);
    for (const slot of [-1, 4, 0x7fffffff, -0x80000000]) {
      expect(feed(t, [[ABS_MT_SLOT, slot], [ABS_MT_TRACKING_ID, 1], [ABS_MT_POSITION_X, 1]])).toEqual([]);
    }
    expect(t.ignored).toBe(4 * 3);
    expect(t.active()).toEqual([]);
  });

  it('a valid ABS_MT_SLOT after an invalid one selects again', () => {
    const t = new TouchSlots(4);
    expect(feed(t, [[ABS_MT_SLOT, 99], [ABS_MT_TRACKING_ID, 1], [ABS_MT_SLOT, 3], [ABS_MT_TRACKING_ID, 2]])).toEqual([{ kind: 'begin', slot: 3, x: 0, y: 0 }]);
  });

  it('a device claiming more slots than MAX_DEVICE_TOUCH_SLOTS (or a nonsense count) gets a bounded table', () => {
    expect(new TouchSlots(0x7fffffff).slotCount).toBe(MAX_DEVICE_TOUCH_SLOTS);
    expect(new TouchSlots(-5).slotCount).toBe(1);
    expect(new TouchSlots(NaN).slotCount).toBe(MAX_DEVICE_TOUCH_SLOTS);
  });

  it('any negative tracking id lifts the contact (kernel uses -1)', () => {
    const t = new TouchSlots(2);
    feed(t, [[ABS_MT_TRACKING_ID, 3]]);
    expect(feed(t, [[ABS_MT_TRACKING_ID, -0x80000000]])).toEqual([{ kind: 'end', slot: 0, x: 0, y: 0 }]);
  });

  it('reset: every contact is lifted and the uncommitted frame forgotten; a finger still down moves nothing until put down again', () => {
    const t = new TouchSlots(4);
    feed(t, [[ABS_MT_TRACKING_ID, 1], [ABS_MT_SLOT, 1], [ABS_MT_TRACKING_ID, 2]]);
    t.event(ABS_MT_TRACKING_ID, 3);
    t.reset();
    expect(t.active()).toEqual([]);
    expect(feed(t, [[ABS_MT_POSITION_X, 40]])).toEqual([]);
  });
});

function setup(opts: { touchSlots?: number; device?: ForwarderDevice; absolute?: boolean } = {}) {
  const vm = new RecordingVmInput({ absolute: opts.absolute ?? true, touchSlots: opts.touchSlots ?? 10 });
  vm.consoleSize = { width: 1000, height: 500 };
  const logs: string[] = [];
  const fw = new InputForwarder(vm, { hotkey: null, callBudget: null, log: lineLogger((m) => logs.push(m), 'input') });
  fw.addDevice('ts', opts.device ?? {});
  const send = (s: EventScript) => fw.handleEvents('ts', s.events.map((e) => ({ ...e, timeUs: 0 })));
  const touches = () => sentAfterAttach(vm).filter((c) => c.op === 'touch');
  return { vm, fw, logs, send, touches };
}

describe('forwarder -> MultiTouch', () => {
  it('a replayed two-finger touch becomes begin/update/end on console slots, scaled like the absolute pointer', () => {
    const { send, touches } = setup();
    send(
      new EventScript()
        .touchFrame([
          { slot: 0, id: 10, x: 0, y: 0 },
          { slot: 1, id: 11, x: 0x7fff, y: 0x7fff },
        ])
        .touchFrame([{ slot: 0, x: 0x4000 }])
        .touchFrame([{ slot: 0, id: -1 }, { slot: 1, id: -1 }]),
    );
    expect(touches()).toEqual([
      { op: 'touch', kind: 'begin', slot: 0, x: 0, y: 0 },
      { op: 'touch', kind: 'begin', slot: 1, x: 999, y: 499 },
      { op: 'touch', kind: 'update', slot: 0, x: 500, y: 0 },
      { op: 'touch', kind: 'end', slot: 0, x: 500, y: 0 },
      { op: 'touch', kind: 'end', slot: 1, x: 999, y: 499 },
    ]);
  });

  it("a touchscreen's own ABS_MT ranges scale its positions; values outside them clamp to the console", () => {
    const { send, touches } = setup({ device: { touch: { x: [0, 4095], y: [0, 2047], slots: 10 } } });
    send(new EventScript().touchFrame([{ slot: 0, id: 1, x: 4095, y: 1024 }]).touchFrame([{ slot: 0, x: -70000, y: 0x7fffffff }]));
    expect(touches()).toEqual([
      { op: 'touch', kind: 'begin', slot: 0, x: 999, y: 250 },
      { op: 'touch', kind: 'update', slot: 0, x: 0, y: 499 },
    ]);
  });

  it("device slots beyond the console's MaxSlots map onto free console slots", () => {
    const { send, touches } = setup({ touchSlots: 2 });
    send(new EventScript().touchFrame([{ slot: 40, id: 1 }, { slot: 63, id: 2 }]));
    expect(touches().map((c) => c.op === 'touch' && [c.kind, c.slot])).toEqual([
      ['begin', 0],
      ['begin', 1],
    ]);
  });

  it('more contacts than console slots: the extra ones are not forwarded at all, and said once', () => {
    const { send, touches, fw, logs } = setup({ touchSlots: 2 });
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }, { slot: 1, id: 2 }, { slot: 2, id: 3 }, { slot: 3, id: 4 }]));
    send(new EventScript().touchFrame([{ slot: 2, x: 5 }, { slot: 3, x: 5 }]).touchFrame([{ slot: 2, id: -1 }, { slot: 3, id: -1 }]));
    expect(touches()).toHaveLength(2);
    expect(fw.stats.touchesDropped).toBe(2);
    expect(logs.filter((l) => /touch slots of the console are in use/.test(l))).toHaveLength(1);
  });

  it('a lifted contact frees its console slot for the next one', () => {
    const { send, touches } = setup({ touchSlots: 1 });
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }]).touchFrame([{ slot: 0, id: -1 }]).touchFrame([{ slot: 5, id: 2 }]));
    expect(touches().map((c) => c.op === 'touch' && [c.kind, c.slot])).toEqual([
      ['begin', 0],
      ['end', 0],
      ['begin', 0],
    ]);
  });

  it('a frame that only repeats the position sends nothing', () => {
    const { send, touches } = setup();
    send(new EventScript().touchFrame([{ slot: 0, id: 1, x: 100 }]).touchFrame([{ slot: 0, x: 100 }]));
    expect(touches()).toHaveLength(1);
  });

  it('a hostile frame (64 slots, thousands of events) costs at most one call per console slot', () => {
    const { fw, vm, touches } = setup({ touchSlots: 10 });
    const events = [];
    for (let i = 0; events.length < MAX_FRAME_EVENTS - 4; i++) events.push(abs(ABS_MT_SLOT, i % 64), abs(ABS_MT_TRACKING_ID, i), abs(ABS_MT_POSITION_X, i));
    fw.handleEvents('ts', [...events, SYN]);
    expect(touches()).toHaveLength(10);
    expect(vm.stuck().touches).toHaveLength(10);
  });

  it('begins spend the call budget: a burst beyond it forwards no new contact, ends still go out', () => {
    const vm = new RecordingVmInput({ absolute: true, touchSlots: 10 });
    const fw = new InputForwarder(vm, { hotkey: null, callBudget: { burst: 2, perSecond: 0 }, now: () => 0 });
    fw.addDevice('ts');
    const send = (s: EventScript) => fw.handleEvents('ts', s.events.map((e) => ({ ...e, timeUs: 0 })));
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }, { slot: 1, id: 2 }]));
    send(new EventScript().touchFrame([{ slot: 2, id: 3 }]));
    send(new EventScript().touchFrame([{ slot: 0, id: -1 }, { slot: 1, id: -1 }, { slot: 2, id: -1 }]));
    expect(vm.calls.map((c) => c.op === 'touch' && `${c.kind}${c.slot}`)).toEqual(['begin0', 'begin1', 'end0', 'end1']);
    expect(fw.stats.touchesDropped).toBe(1);
    expect(DEFAULT_CALL_BUDGET.burst).toBeGreaterThanOrEqual(10); // a ten-finger touch fits the default
  });

  it('host mode (ungrab) ends every contact in the guest; fingers down since are not forwarded', () => {
    const { send, fw, vm } = setup();
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }, { slot: 1, id: 2 }]));
    fw.setMode('host');
    expect(vm.stuck().touches).toEqual([]);
    send(new EventScript().touchFrame([{ slot: 2, id: 3 }]));
    fw.setMode('guest');
    send(new EventScript().touchFrame([{ slot: 2, x: 9 }, { slot: 0, x: 9 }]));
    expect(vm.calls.filter((c) => c.op === 'touch').map((c) => c.op === 'touch' && c.kind)).toEqual(['begin', 'begin', 'end', 'end']);
  });

  it('unplug (removeDevice) ends its contacts', async () => {
    const { send, fw, vm } = setup();
    send(new EventScript().touchFrame([{ slot: 3, id: 1 }]));
    await fw.removeDevice('ts');
    expect(vm.stuck().touches).toEqual([]);
  });

  it('bridge stop (releaseAll) ends every contact', async () => {
    const { send, fw, vm } = setup();
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }, { slot: 9, id: 2 }]));
    await fw.releaseAll();
    expect(vm.stuck().touches).toEqual([]);
  });

  it("SYN_DROPPED ends the device's contacts; the finger still down is not resumed", () => {
    const { send, fw, vm, touches } = setup();
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }]));
    fw.handleEvents('ts', [{ type: EV_SYN, code: SYN_DROPPED, value: 0, timeUs: 0 }, abs(ABS_MT_POSITION_X, 5), SYN]);
    send(new EventScript().touchFrame([{ slot: 0, x: 7 }]));
    expect(vm.stuck().touches).toEqual([]);
    expect(touches().map((c) => c.op === 'touch' && c.kind)).toEqual(['begin', 'end']);
  });

  it('two devices share the console slot pool: the same device slot lands on different console slots', () => {
    const { send, fw, touches } = setup();
    fw.addDevice('ts2');
    send(new EventScript().touchFrame([{ slot: 0, id: 1 }]));
    fw.handleEvents('ts2', new EventScript().touchFrame([{ slot: 0, id: 1 }]).events.map((e) => ({ ...e, timeUs: 0 })));
    expect(touches().map((c) => c.op === 'touch' && c.slot)).toEqual([0, 1]);
  });

  it("in touch mode the device's pointer emulation (ABS_X/Y, BTN_TOUCH) is not sent", () => {
    const { fw, vm } = setup({ device: { touch: { slots: 10 } } });
    fw.handleEvents('ts', [abs(ABS_MT_TRACKING_ID, 1), abs(ABS_MT_POSITION_X, 10), abs(ABS_X, 10), abs(ABS_Y, 10), { type: EV_KEY, code: BTN_TOUCH, value: 1, timeUs: 0 }, SYN]);
    expect(sentAfterAttach(vm).map((c) => c.op)).toEqual(['touch']);
  });

  it('without MultiTouch (QEMU 7.2): no touch call, one line saying why, pointer emulation still drives the mouse', () => {
    const { fw, vm, logs } = setup({ touchSlots: 0, device: { touch: { slots: 10 } } });
    for (let i = 0; i < 3; i++) fw.handleEvents('ts', [abs(ABS_MT_TRACKING_ID, i), abs(ABS_X, 0), abs(ABS_Y, 0), { type: EV_KEY, code: BTN_TOUCH, value: 1, timeUs: 0 }, SYN]);
    expect(sentAfterAttach(vm).map((c) => c.op)).toEqual(['abs', 'mousePress', 'abs', 'abs']);
    expect(logs.filter((l) => /touch contacts are not forwarded \(ENOMULTITOUCH\)/.test(l))).toHaveLength(1);
  });
});

describe('touchscreen classification', () => {
  const base = { name: 'ts', phys: '', uniq: '', bustype: 3, vendor: 1, product: 2, version: 1, driverVersion: 0x10001 };
  const events = { [EV_KEY]: [BTN_TOUCH], [EV_ABS]: [ABS_X, ABS_Y, ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID] };
  const absInfo = { [ABS_X]: [0, 4095, 0], [ABS_Y]: [0, 4095, 0], [ABS_MT_SLOT]: [0, 9, 0], [ABS_MT_POSITION_X]: [0, 4095, 0], [ABS_MT_POSITION_Y]: [0, 2047, 0] } as Record<number, [number, number, number]>;

  it('INPUT_PROP_DIRECT + ABS_MT_POSITION_X is a touchscreen with its MT ranges and slot count', () => {
    expect(describeDevice({ ...base, events, abs: absInfo, props: [INPUT_PROP_DIRECT] }).touchscreen).toEqual({ x: [0, 4095], y: [0, 2047], slots: 10 });
  });

  it('without INPUT_PROP_DIRECT (a touchpad) it is not', () => {
    expect(describeDevice({ ...base, events, abs: absInfo, props: [] }).touchscreen).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
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
  EV_MSC,
  EV_REL,
  EV_SYN,
  REL_HWHEEL,
  REL_WHEEL,
  REL_WHEEL_HI_RES,
  REL_X,
  REL_Y,
  SYN_DROPPED,
  SYN_REPORT,
} from '../../src/input/events';
import { CallBudget, DEFAULT_CALL_BUDGET, ForwardMode, InputForwarder, MAX_FRAME_EVENTS, MAX_WHEEL_NOTCHES_PER_FRAME, scaleAbs } from '../../src/input/forwarder';
import { parseHotkey } from '../../src/input/hotkey';
import { RecordingVmInput } from '../fakes/input';
import { EventScript } from '../../src/input/replay-writer';
import { lineLogger } from '../fakes/logger';

const KEY_A = 30;
const KEY_B = 48;
const KEY_LEFTCTRL = 29;
const KEY_RIGHTCTRL = 97;
const KEY_LEFTSHIFT = 42;
const KEY_SCROLLLOCK = 70;
const KEY_F12 = 88;
const KEY_UP = 103;
const SYN = { type: EV_SYN, code: SYN_REPORT, value: 0, timeUs: 0 };
const ev = (type: number, code: number, value: number) => ({ type, code, value, timeUs: 0 });
const key = (code: number, value: number) => [ev(EV_KEY, code, value), SYN];

function setup(opts: { hotkey?: string; autorepeat?: boolean; absolute?: boolean; reportedAbsolute?: boolean; callBudget?: CallBudget | null; now?: () => number } = {}) {
  const vm = new RecordingVmInput({ absolute: opts.absolute ?? false, reportedAbsolute: opts.reportedAbsolute });
  const modes: ForwardMode[] = [];
  const logs: string[] = [];
  const fw = new InputForwarder(vm, {
    hotkey: parseHotkey(opts.hotkey ?? 'ctrl-ctrl'),
    autorepeat: opts.autorepeat,
    callBudget: opts.callBudget,
    now: opts.now,
    onModeChange: (m) => modes.push(m),
    log: lineLogger((m) => logs.push(m), 'input'),
  });
  fw.addDevice('kbd');
  fw.addDevice('mouse');
  return { vm, fw, modes, logs };
}

describe('keys', () => {
  it('maps Linux codes to qnum, press then release, at SYN_REPORT', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [ev(EV_MSC, 4, 0x70004), ev(EV_KEY, KEY_A, 1)]);
    expect(vm.calls).toEqual([]); // nothing before the frame ends
    fw.handleEvents('kbd', [SYN, ...key(KEY_A, 0), ...key(KEY_UP, 1), ...key(KEY_UP, 0), ...key(KEY_RIGHTCTRL, 1), ...key(KEY_RIGHTCTRL, 0)]);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
      { op: 'keyPress', qnum: 0xc8 },
      { op: 'keyRelease', qnum: 0xc8 },
      { op: 'keyPress', qnum: 0x9d },
      { op: 'keyRelease', qnum: 0x9d },
    ]);
  });

  it('drops keys without a qnum and counts them', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [...key(240 /* KEY_UNKNOWN */, 1), ...key(240, 0)]);
    expect(vm.calls).toEqual([]);
    expect(fw.stats.dropped).toBe(1);
  });

  it('drops autorepeat by default and forwards it as repeated presses when asked', () => {
    const a = setup();
    a.fw.handleEvents('kbd', [...key(KEY_A, 1), ...key(KEY_A, 2), ...key(KEY_A, 2), ...key(KEY_A, 0)]);
    expect(a.vm.calls.map((c) => c.op)).toEqual(['keyPress', 'keyRelease']);
    const b = setup({ autorepeat: true });
    b.fw.handleEvents('kbd', [...key(KEY_A, 1), ...key(KEY_A, 2), ...key(KEY_A, 2), ...key(KEY_A, 0)]);
    expect(b.vm.calls.map((c) => c.op)).toEqual(['keyPress', 'keyPress', 'keyPress', 'keyRelease']);
  });

  it('never sends a release for a key whose press it did not send', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [...key(KEY_A, 0), ...key(KEY_A, 2)]);
    expect(vm.calls).toEqual([]);
  });

  it('two devices holding the same key: one press, one release when the last lets go', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_A, 1));
    fw.handleEvents('mouse', key(KEY_A, 1));
    fw.handleEvents('kbd', key(KEY_A, 0));
    expect(vm.stuck().keys).toEqual([0x1e]);
    fw.handleEvents('mouse', key(KEY_A, 0));
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
  });

  it('frames may span batches; SYN_DROPPED discards up to and including the next SYN_REPORT', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [ev(EV_KEY, KEY_A, 1)]);
    fw.handleEvents('kbd', [ev(EV_SYN, SYN_DROPPED, 0), ev(EV_KEY, KEY_B, 1), SYN]);
    expect(vm.calls).toEqual([]);
    fw.handleEvents('kbd', key(KEY_B, 1));
    expect(vm.calls).toEqual([{ op: 'keyPress', qnum: 0x30 }]);
  });
});

describe('mouse', () => {
  it('maps the five buttons to 0/1/2/5/6 and drops every other button', () => {
    const { vm, fw } = setup();
    for (const b of [BTN_LEFT, BTN_MIDDLE, BTN_RIGHT, BTN_SIDE, BTN_EXTRA, 0x115 /* BTN_FORWARD */, 0x116, 0x117, 0x120, 0x130, 0x14b]) {
      fw.handleEvents('mouse', [...key(b, 1), ...key(b, 0)]);
    }
    const pressed = vm.calls.filter((c) => c.op === 'mousePress').map((c) => (c as { button: number }).button);
    expect(pressed).toEqual([0, 1, 2, 5, 6]);
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
    expect(fw.stats.dropped).toBe(6);
  });

  it('BTN_TOUCH (touchscreen in pointer mode) is the left button', () => {
    const { vm, fw } = setup();
    fw.handleEvents('mouse', [...key(BTN_TOUCH, 1), ...key(BTN_TOUCH, 0)]);
    expect(vm.calls).toEqual([
      { op: 'mousePress', button: 0 },
      { op: 'mouseRelease', button: 0 },
    ]);
  });

  it('coalesces REL_X/REL_Y per SYN_REPORT into one RelMotion', () => {
    const { vm, fw } = setup();
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 3), ev(EV_REL, REL_Y, -2), ev(EV_REL, REL_X, 4), SYN, ev(EV_REL, REL_Y, 5), SYN]);
    expect(vm.calls).toEqual([
      { op: 'rel', dx: 7, dy: -2 },
      { op: 'rel', dx: 0, dy: 5 },
    ]);
  });

  it('applies motion before the click of the same frame', () => {
    const { vm, fw } = setup();
    fw.handleEvents('mouse', [ev(EV_KEY, BTN_LEFT, 1), ev(EV_REL, REL_X, 10), SYN]);
    expect(vm.calls).toEqual([
      { op: 'rel', dx: 10, dy: 0 },
      { op: 'mousePress', button: 0 },
    ]);
  });

  it('wheel notches become Press+Release of 3 (up) / 4 (down); horizontal wheel is dropped', () => {
    const { vm, fw } = setup();
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL, 2), SYN, ev(EV_REL, REL_WHEEL, -1), SYN, ev(EV_REL, REL_HWHEEL, 1), SYN]);
    expect(vm.calls).toEqual([
      { op: 'mousePress', button: 3 },
      { op: 'mouseRelease', button: 3 },
      { op: 'mousePress', button: 3 },
      { op: 'mouseRelease', button: 3 },
      { op: 'mousePress', button: 4 },
      { op: 'mouseRelease', button: 4 },
    ]);
  });

  it('hi-res wheel accumulates to whole notches of 120 and is not double-counted with REL_WHEEL', () => {
    const { vm, fw } = setup();
    // a hi-res mouse: 4 x 30, the kernel adds REL_WHEEL 1 in the frame that completes the notch
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL_HI_RES, 30), SYN, ev(EV_REL, REL_WHEEL_HI_RES, 30), SYN, ev(EV_REL, REL_WHEEL_HI_RES, 30), SYN]);
    expect(vm.calls).toEqual([]);
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL, 1), ev(EV_REL, REL_WHEEL_HI_RES, 30), SYN]);
    expect(vm.calls).toEqual([
      { op: 'mousePress', button: 3 },
      { op: 'mouseRelease', button: 3 },
    ]);
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL_HI_RES, -200), SYN, ev(EV_REL, REL_WHEEL, -1), SYN]);
    expect(vm.calls.slice(2)).toEqual([
      { op: 'mousePress', button: 4 },
      { op: 'mouseRelease', button: 4 },
    ]);
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL_HI_RES, -40), SYN]);
    expect(vm.calls.slice(4)).toEqual([
      { op: 'mousePress', button: 4 },
      { op: 'mouseRelease', button: 4 },
    ]);
  });

  it('a device announcing hi-res ignores plain REL_WHEEL from the first frame', () => {
    const vm = new RecordingVmInput();
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('m', { hiResWheel: true });
    fw.handleEvents('m', [ev(EV_REL, REL_WHEEL, 1), SYN]);
    expect(vm.calls).toEqual([]);
  });
});

describe('absolute pointers', () => {
  it('scales device units to console pixels, clamped below the size', () => {
    expect(scaleAbs(0, [0, 32767], 1280)).toBe(0);
    expect(scaleAbs(32767, [0, 32767], 1280)).toBe(1279);
    expect(scaleAbs(16384, [0, 32767], 1280)).toBe(640);
    expect(scaleAbs(99999, [0, 32767], 1280)).toBe(1279);
    expect(scaleAbs(-5, [0, 32767], 1280)).toBe(0);
    expect(scaleAbs(150, [100, 200], 11)).toBe(5);
  });

  it('absolute device + absolute guest -> SetAbsPosition; one axis per frame keeps the other', () => {
    const vm = new RecordingVmInput({ absolute: true });
    vm.consoleSize = { width: 640, height: 480 };
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('tab', { absX: [0, 1000], absY: [0, 1000] });
    fw.handleEvents('tab', [ev(EV_ABS, ABS_X, 500), ev(EV_ABS, ABS_Y, 1000), SYN, ev(EV_ABS, ABS_X, 1000), SYN]);
    expect(vm.calls).toEqual([
      { op: 'abs', x: 320, y: 479 },
      { op: 'abs', x: 639, y: 479 },
    ]);
  });

  it('absolute device + relative guest -> relative motion by the pixel delta', () => {
    const vm = new RecordingVmInput({ absolute: false });
    vm.consoleSize = { width: 101, height: 101 };
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('tab', { absX: [0, 100], absY: [0, 100] });
    fw.handleEvents('tab', [ev(EV_ABS, ABS_X, 10), ev(EV_ABS, ABS_Y, 20), SYN, ev(EV_ABS, ABS_X, 15), SYN]);
    expect(vm.calls).toEqual([
      { op: 'rel', dx: 10, dy: 20 },
      { op: 'rel', dx: 5, dy: 0 },
    ]);
  });

  it('relative mouse + absolute guest -> a virtual cursor, clamped to the console', () => {
    const vm = new RecordingVmInput({ absolute: true });
    vm.consoleSize = { width: 100, height: 50 };
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('m');
    fw.handleEvents('m', [ev(EV_REL, REL_X, 30), ev(EV_REL, REL_Y, 20), SYN, ev(EV_REL, REL_X, 500), ev(EV_REL, REL_Y, 500), SYN, ev(EV_REL, REL_X, -1000), SYN]);
    expect(vm.calls).toEqual([
      { op: 'abs', x: 30, y: 20 },
      { op: 'abs', x: 99, y: 49 },
      { op: 'abs', x: 0, y: 49 },
    ]);
  });

  it('stale IsAbsolute=false (QEMU 7.2): RelMotion fails, the forwarder flips to absolute and resends', async () => {
    const { vm, fw, logs } = setup({ absolute: true, reportedAbsolute: false });
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 5), ev(EV_REL, REL_Y, 6), SYN]);
    await fw.settled();
    expect(fw.pointerAbsolute).toBe(true);
    expect(vm.calls).toEqual([{ op: 'abs', x: 5, y: 6 }]);
    expect(logs.join('\n')).toMatch(/absolute \(QEMU refused/);
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 1), SYN]);
    await fw.settled();
    expect(vm.calls).toEqual([
      { op: 'abs', x: 5, y: 6 },
      { op: 'abs', x: 6, y: 6 },
    ]);
  });

  it('stale IsAbsolute=true: SetAbsPosition fails, the forwarder flips to relative and resends the delta', async () => {
    const vm = new RecordingVmInput({ absolute: false, reportedAbsolute: true });
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('tab', { absX: [0, 1279], absY: [0, 799] });
    fw.handleEvents('tab', [ev(EV_ABS, ABS_X, 100), ev(EV_ABS, ABS_Y, 50), SYN]);
    await fw.settled();
    expect(fw.pointerAbsolute).toBe(false);
    expect(vm.calls).toEqual([{ op: 'rel', dx: 100, dy: 50 }]);
    expect(fw.stats.callErrors).toBe(1);
  });

  it('follows IsAbsolute change notifications', () => {
    const { vm, fw } = setup();
    expect(fw.pointerAbsolute).toBe(false);
    vm.guestAbsolute = true;
    vm.setReportedAbsolute(true);
    expect(fw.pointerAbsolute).toBe(true);
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 2), SYN]);
    expect(vm.calls).toEqual([{ op: 'abs', x: 2, y: 0 }]);
  });
});

describe('toggle hotkey and no stuck keys', () => {
  it('both Ctrl keys: the combination reaches the guest, the switch happens once all keys are up', () => {
    const { vm, fw, modes } = setup();
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
    fw.handleEvents('kbd', key(KEY_RIGHTCTRL, 1));
    expect(fw.toggleArmed).toBe(true);
    expect(fw.mode).toBe('guest');
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 0));
    expect(fw.mode).toBe('guest');
    fw.handleEvents('kbd', key(KEY_RIGHTCTRL, 0));
    expect(fw.mode).toBe('host');
    expect(modes).toEqual(['host']);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x1d },
      { op: 'keyPress', qnum: 0x9d },
      { op: 'keyRelease', qnum: 0x1d },
      { op: 'keyRelease', qnum: 0x9d },
    ]);
    // host mode: nothing reaches the guest
    fw.handleEvents('kbd', [...key(KEY_A, 1), ...key(KEY_A, 0)]);
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 1), SYN, ...key(BTN_LEFT, 1), ...key(BTN_LEFT, 0)]);
    expect(vm.calls.length).toBe(4);
    // toggled back in from the host side
    fw.handleEvents('kbd', [...key(KEY_RIGHTCTRL, 1), ...key(KEY_LEFTCTRL, 1), ...key(KEY_LEFTCTRL, 0)]);
    expect(fw.mode).toBe('host');
    fw.handleEvents('kbd', key(KEY_RIGHTCTRL, 0));
    expect(fw.mode).toBe('guest');
    expect(modes).toEqual(['host', 'guest']);
    expect(vm.calls.length).toBe(4); // the combination pressed on the host side never reached the guest
    fw.handleEvents('kbd', [...key(KEY_A, 1), ...key(KEY_A, 0)]);
    expect(vm.calls.length).toBe(6);
  });

  it('waits for keys on other devices (a held mouse button) before switching', () => {
    const { fw } = setup();
    fw.handleEvents('mouse', key(BTN_LEFT, 1));
    fw.handleEvents('kbd', [...key(KEY_LEFTCTRL, 1), ...key(KEY_RIGHTCTRL, 1), ...key(KEY_LEFTCTRL, 0), ...key(KEY_RIGHTCTRL, 0)]);
    expect(fw.mode).toBe('guest');
    fw.handleEvents('mouse', key(BTN_LEFT, 0));
    expect(fw.mode).toBe('host');
  });

  it('a key held while switching to the host is released in the guest (setMode from outside)', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_A, 1));
    fw.handleEvents('mouse', key(BTN_RIGHT, 1));
    fw.setMode('host');
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
    fw.handleEvents('kbd', key(KEY_A, 0)); // its release on the host side is not sent twice
    expect(vm.calls.filter((c) => c.op === 'keyRelease').length).toBe(1);
  });

  it.each([
    ['alt-alt', [56, 100]],
    ['shift-shift', [42, 54]],
    ['meta-meta', [125, 126]],
    ['scrolllock', [70]],
    ['ctrl-scrolllock', [97, 70]],
    ['KEY_LEFTCTRL+KEY_F12', [29, 88]],
  ])('hotkey %s toggles', (spec, codes) => {
    const { fw } = setup({ hotkey: spec });
    for (const c of codes) fw.handleEvents('kbd', key(c, 1));
    for (const c of codes) fw.handleEvents('kbd', key(c, 0));
    expect(fw.mode).toBe('host');
  });

  it('a partial combination does not toggle; "none" never toggles', () => {
    const a = setup({ hotkey: 'KEY_LEFTCTRL+KEY_F12' });
    a.fw.handleEvents('kbd', [...key(KEY_LEFTCTRL, 1), ...key(KEY_LEFTCTRL, 0), ...key(KEY_F12, 1), ...key(KEY_F12, 0)]);
    expect(a.fw.mode).toBe('guest');
    const vm = new RecordingVmInput();
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('k');
    fw.handleEvents('k', [...key(KEY_LEFTCTRL, 1), ...key(KEY_RIGHTCTRL, 1), ...key(KEY_LEFTCTRL, 0), ...key(KEY_RIGHTCTRL, 0)]);
    expect(fw.mode).toBe('guest');
  });

  it('ctrl-scrolllock: the scroll lock key with either Ctrl', () => {
    const { fw } = setup({ hotkey: 'ctrl-scrolllock' });
    fw.handleEvents('kbd', [...key(KEY_SCROLLLOCK, 1), ...key(KEY_SCROLLLOCK, 0)]);
    expect(fw.mode).toBe('guest');
    fw.handleEvents('kbd', [...key(KEY_LEFTCTRL, 1), ...key(KEY_SCROLLLOCK, 1), ...key(KEY_SCROLLLOCK, 0), ...key(KEY_LEFTCTRL, 0)]);
    expect(fw.mode).toBe('host');
  });

  it('unplug releases exactly what that device held, and lets a pending toggle complete', async () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [...key(KEY_LEFTSHIFT, 1), ...key(KEY_A, 1)]);
    fw.handleEvents('mouse', key(BTN_LEFT, 1));
    await fw.removeDevice('kbd');
    expect(vm.stuck()).toEqual({ keys: [], buttons: [0], touches: [] });
    fw.handleEvents('mouse', [...key(KEY_LEFTCTRL, 1), ...key(KEY_RIGHTCTRL, 1), ...key(KEY_LEFTCTRL, 0), ...key(KEY_RIGHTCTRL, 0)]);
    expect(fw.mode).toBe('guest'); // BTN_LEFT still held on the mouse
    await fw.removeDevice('mouse');
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
    expect(fw.mode).toBe('host');
  });

  it('stop (releaseAll) releases every key and button still down, and waits for QEMU', async () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [...key(KEY_LEFTSHIFT, 1), ...key(KEY_A, 1), ...key(KEY_UP, 1)]);
    fw.handleEvents('mouse', [...key(BTN_LEFT, 1), ...key(BTN_SIDE, 1)]);
    expect(fw.guestDown()).toEqual({ keys: [0x1e, 0x2a, 0xc8], buttons: [0, 5] });
    await fw.releaseAll();
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
    expect(fw.guestDown()).toEqual({ keys: [], buttons: [] });
    await fw.releaseAll(); // idempotent: nothing more is sent
    expect(vm.calls.length).toBe(10);
  });

  it('VM gone: nothing is sent, and releases after re-attach are not replayed', async () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_A, 1));
    fw.vmGone();
    fw.handleEvents('kbd', key(KEY_A, 0));
    await fw.releaseAll();
    expect(vm.calls).toEqual([{ op: 'keyPress', qnum: 0x1e }]);
  });

  it('a failing VM call is counted and logged once, never thrown', async () => {
    const vm = new RecordingVmInput();
    vm.keyPress = () => Promise.reject(new Error('The connection is closed 1'));
    const logs: string[] = [];
    const fw = new InputForwarder(vm, { hotkey: null, log: lineLogger((m) => logs.push(m), 'input') });
    fw.addDevice('k');
    fw.handleEvents('k', [...key(KEY_A, 1), ...key(KEY_A, 0), ...key(KEY_B, 1), ...key(KEY_B, 0)]);
    await fw.settled();
    expect(fw.stats.callErrors).toBe(2);
    expect(logs.filter((l) => /connection is closed/.test(l)).length).toBe(1);
  });
});

describe('logging through the shared Logger', () => {
  it('a mode flip is info and a clamped wheel a warning, each line without a part prefix (the service tags the component)', () => {
    const vm = new RecordingVmInput();
    const entries: string[] = [];
    const fw = new InputForwarder(vm, { hotkey: parseHotkey('scrolllock'), callBudget: null, log: lineLogger((m, level) => entries.push(`${level} ${m}`)) });
    fw.addDevice('kbd');
    fw.addDevice('mouse');
    fw.handleEvents('kbd', [...key(KEY_SCROLLLOCK, 1), ...key(KEY_SCROLLLOCK, 0)]);
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL, 1000), SYN]);
    expect(entries).toEqual([
      'info toggle hotkey scrolllock held, switching once all keys are up',
      'info released to the host',
      `warn mouse: 1000 wheel notches in one frame, sending ${MAX_WHEEL_NOTCHES_PER_FRAME} (further clamps are counted, not logged)`,
    ]);
  });
});

describe('hostile values: bounded work per frame, no stuck key', () => {
  it('a wheel value of 1 000 000 sends MAX_WHEEL_NOTCHES_PER_FRAME notches, counts the rest and logs once', () => {
    const { vm, fw, logs } = setup({ callBudget: null });
    fw.handleEvents('mouse', [ev(EV_REL, REL_WHEEL, 1_000_000), SYN, ev(EV_REL, REL_WHEEL, -100_000), SYN]);
    const ups = vm.calls.filter((c) => c.op === 'mousePress' && c.button === 3).length;
    const downs = vm.calls.filter((c) => c.op === 'mousePress' && c.button === 4).length;
    expect([ups, downs, vm.calls.length]).toEqual([MAX_WHEEL_NOTCHES_PER_FRAME, MAX_WHEEL_NOTCHES_PER_FRAME, 4 * MAX_WHEEL_NOTCHES_PER_FRAME]);
    expect(fw.stats.wheelNotchesClamped).toBe(1_000_000 + 100_000 - 2 * MAX_WHEEL_NOTCHES_PER_FRAME);
    expect(logs.filter((l) => /wheel notches in one frame/.test(l)).length).toBe(1);
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
  });

  it('a huge hi-res wheel sum is clamped too and leaves no remainder beyond one notch', () => {
    const vm = new RecordingVmInput();
    const fw = new InputForwarder(vm, { hotkey: null });
    fw.addDevice('m', { hiResWheel: true });
    fw.handleEvents('m', [ev(EV_REL, REL_WHEEL_HI_RES, 12_000_000), ev(EV_REL, REL_WHEEL_HI_RES, 12_000_000), SYN]);
    expect(vm.calls.length).toBe(2 * MAX_WHEEL_NOTCHES_PER_FRAME);
    fw.handleEvents('m', [ev(EV_REL, REL_WHEEL_HI_RES, 1), SYN]);
    expect(vm.calls.length).toBe(2 * MAX_WHEEL_NOTCHES_PER_FRAME); // the remainder was < 120
  });

  it('presses beyond the call budget are not sent, their releases are; the budget refills with time', () => {
    let t = 1000;
    const { vm, fw, logs } = setup({ now: () => t });
    const burst = DEFAULT_CALL_BUDGET.burst;
    // burst + 4 keys pressed in one instant, then all released
    const codes = Array.from({ length: burst + 4 }, (_, i) => 2 + i);
    for (const c of codes) fw.handleEvents('kbd', key(c, 1));
    expect(vm.calls.filter((c) => c.op === 'keyPress').length).toBe(burst);
    expect(fw.stats.framesThrottled).toBe(4);
    expect(logs.filter((l) => /dropping presses, sending releases/.test(l)).length).toBe(1);
    for (const c of codes) fw.handleEvents('kbd', key(c, 0));
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
    expect(fw.guestDown()).toEqual({ keys: [], buttons: [] });
    // 10 presses fit again after the time they take to refill
    t += (10 * 1000) / DEFAULT_CALL_BUDGET.perSecond;
    for (const c of codes.slice(0, 12)) fw.handleEvents('kbd', key(c, 1));
    expect(vm.calls.filter((c) => c.op === 'keyPress').length).toBe(burst + 10);
  });

  it('a throttled frame still moves the pointer and still counts its keys as held (hotkey, grab)', () => {
    const t = 0;
    const { vm, fw } = setup({ now: () => t, callBudget: { burst: 1, perSecond: 1 } });
    fw.handleEvents('mouse', [ev(EV_KEY, BTN_LEFT, 1), SYN]);
    fw.handleEvents('kbd', [ev(EV_KEY, KEY_LEFTCTRL, 1), SYN]); // throttled
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 5), ev(EV_KEY, BTN_RIGHT, 1), SYN]); // throttled
    expect(vm.calls).toEqual([
      { op: 'mousePress', button: 0 },
      { op: 'rel', dx: 5, dy: 0 },
    ]);
    fw.handleEvents('kbd', [ev(EV_KEY, KEY_RIGHTCTRL, 1), SYN]);
    expect(fw.toggleArmed).toBe(true); // both Ctrl keys are down on the device, sent or not
  });

  it('relative motion summed past int32 is clamped to what RelMotion(ii) can carry', () => {
    const { vm, fw } = setup();
    fw.handleEvents('mouse', [ev(EV_REL, REL_X, 2_147_483_647), ev(EV_REL, REL_X, 2_147_483_647), ev(EV_REL, REL_Y, -2_147_483_648), ev(EV_REL, REL_Y, -5), SYN]);
    expect(vm.calls).toEqual([{ op: 'rel', dx: 2_147_483_647, dy: -2_147_483_648 }]);
  });

  it('a frame longer than MAX_FRAME_EVENTS is dropped like SYN_DROPPED: held keys released, nothing of it sent', () => {
    const { vm, fw, logs } = setup();
    fw.handleEvents('kbd', key(KEY_LEFTSHIFT, 1));
    const endless = Array.from({ length: MAX_FRAME_EVENTS + 10 }, (_, i) => ev(EV_KEY, KEY_A + (i % 10), (i + 1) & 1));
    fw.handleEvents('kbd', endless);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x2a },
      { op: 'keyRelease', qnum: 0x2a },
    ]);
    fw.handleEvents('kbd', [...endless, SYN]); // still the same lost frame, up to its SYN_REPORT
    fw.handleEvents('kbd', key(KEY_B, 1));
    expect(vm.calls.slice(2)).toEqual([{ op: 'keyPress', qnum: 0x30 }]);
    expect(fw.stats.framesLost).toBe(1);
    expect(logs.filter((l) => /frame dropped/.test(l)).length).toBe(1);
  });

  it('SYN_DROPPED from a stream releases what that device held (its release may be among the lost)', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_LEFTSHIFT, 1));
    fw.handleEvents('mouse', key(BTN_LEFT, 1));
    fw.handleEvents('kbd', [ev(EV_SYN, SYN_DROPPED, 0), ev(EV_KEY, KEY_LEFTSHIFT, 0), SYN]);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x2a },
      { op: 'mousePress', button: 0 },
      { op: 'keyRelease', qnum: 0x2a },
    ]);
    expect(fw.guestDown()).toEqual({ keys: [], buttons: [0] }); // the other device keeps its button
  });

  it('a held hotkey taken as up after a lost frame lets the pending toggle happen', () => {
    const { fw, modes } = setup();
    fw.handleEvents('kbd', [ev(EV_KEY, KEY_LEFTCTRL, 1), SYN, ev(EV_KEY, KEY_RIGHTCTRL, 1), SYN]);
    expect(fw.toggleArmed).toBe(true);
    fw.handleEvents('kbd', [ev(EV_SYN, SYN_DROPPED, 0)]);
    expect(modes).toEqual(['host']);
  });
});

describe('typed replay script through the forwarder', () => {
  it('types a sentence with Shift around capitals and symbols', () => {
    const { vm, fw } = setup();
    const s = new EventScript().typeText('Hi!');
    fw.handleEvents('kbd', s.events.map((e) => ({ timeUs: 0, ...e })));
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x23 },
      { op: 'keyRelease', qnum: 0x23 },
      { op: 'keyRelease', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x17 },
      { op: 'keyRelease', qnum: 0x17 },
      { op: 'keyPress', qnum: 0x2a },
      { op: 'keyPress', qnum: 0x02 },
      { op: 'keyRelease', qnum: 0x02 },
      { op: 'keyRelease', qnum: 0x2a },
    ]);
  });
});

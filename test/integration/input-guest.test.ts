// The input route against the real QEMU guest (7.2; the tablet suite also on 10.0, test/harness/qemu-targets.ts) (scenario `keys`: the guest logs every evdev
// event it receives). Replay FIFO -> InputBridge -> D-Bus Keyboard/Mouse -> QEMU -> virtio
// keyboard/tablet in the guest -> `EV eventN type= code= value=` on the serial log. The guest's
// virtio keyboard hands back Linux KEY codes, so every key is a round trip through the keymap.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QemuVm, TouchKind } from '../../src/qemu';
import { InputBridge } from '../../src/input/bridge';
import { DbusVmInput, createDbusVmInput } from '../../src/input/dbus-vm-input';
import type { VmInput } from '../../src/input/vm-input';
import { EV_KEY, encodeEvents } from '../../src/input/events';
import { mappedKeyCodes } from '../../src/input/keymap';
import { EventScript, writePaced } from '../../src/input/replay-writer';
import { sleep, tempDir, waitFor } from '../harness/procs';
import { closeInputGuest, startInputGuest } from '../harness/input-guest';
import { startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX } from '../harness/qemu-targets';
import { lineLogger } from '../fakes/logger';

interface GuestEv {
  dev: string;
  type: number;
  code: number;
  value: number;
}

function guestEvents(guest: Guest, from: number): GuestEv[] {
  const out: GuestEv[] = [];
  for (const m of guest.serial().slice(from).matchAll(/EV (event\d+) type=(\d+) code=(\d+) value=(-?\d+)/g)) {
    out.push({ dev: m[1], type: Number(m[2]), code: Number(m[3]), value: Number(m[4]) });
  }
  return out;
}

/** Key presses/releases (no autorepeat: the guest repeats by itself when TCG is slow) of one device. */
const keysOf = (evs: GuestEv[], dev: string) => evs.filter((e) => e.dev === dev && e.type === EV_KEY && e.value !== 2).map((e) => [e.code, e.value]);

/** A bridge reading a fresh replay FIFO in `dir`, forwarding to `vm`. */
function replayBridge(dir: string, vm: VmInput, log: (m: string) => void, grabToggle = 'none'): { bridge: InputBridge; fifo: string } {
  const fifo = path.join(dir, `replay-${Date.now()}`);
  execFileSync('mkfifo', [fifo]);
  const bridge = new InputBridge({ replay: [fifo], grabToggle, log: lineLogger(log, 'input') });
  bridge.setVm(vm);
  bridge.start();
  return { bridge, fifo };
}

const KEY_LEFTSHIFT = 42;
const KEY_LEFTCTRL = 29;
const KEY_RIGHTCTRL = 97;
const BTN_LEFT = 0x110;
const BTN_RIGHT = 0x111;
const BTN_MIDDLE = 0x112;
// One frame every 25 ms (a fast typist): the guest logs each event to a 115200 baud serial port
// under TCG, and a burst would overflow its evdev buffer (it then sees SYN_DROPPED and loses keys).
const FRAME_MS = 25;
const GROUP_FRAMES = 8;

describe.each(QEMU_MATRIX)('input bridge -> QEMU %s guest (virtio keyboard + tablet)', (version, qemu) => {
  let guest: Guest;
  let qvm: QemuVm;
  let vmInput: DbusVmInput;
  let dir: string;
  let kbdDev: string;
  let tabletDev: string;
  const logs: string[] = [];
  let absoluteAtStart: boolean | undefined;

  beforeAll(async () => {
    dir = tempDir('input-guest');
    let devices: Record<string, string>;
    ({ guest, qvm, vmInput, devices } = await startInputGuest({ qemu, pointer: 'tablet' }, ['QEMU Virtio Keyboard', 'QEMU Virtio Tablet']));
    kbdDev = devices['QEMU Virtio Keyboard'];
    tabletDev = devices['QEMU Virtio Tablet'];
    absoluteAtStart = vmInput.isAbsolute;
    // The tablet driver is up once MARK ready is logged and 7.2 announces it with PropertiesChanged;
    // if the property is stale anyway, the forwarder's mode flip on Error.Invalid takes over.
    await waitFor('IsAbsolute true', 15_000, () => vmInput.isAbsolute).catch(() => logs.push('IsAbsolute still false after 15 s'));
  });

  afterAll(async () => {
    await closeInputGuest({ guest, qvm, vmInput });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Writes the script in groups of frames (paced like a fast typist) and after each group waits
   * until the guest has logged what it should have by then: its event logger writes to a serial
   * port under TCG, and running ahead of it overflows its evdev buffer (SYN_DROPPED, lost keys).
   */
  async function feed(fifo: string, script: EventScript, caughtUp: (framesSent: number) => boolean): Promise<void> {
    const frames = script.frames();
    const fd = fs.openSync(fifo, 'a');
    try {
      for (let i = 0; i < frames.length; i += GROUP_FRAMES) {
        for (const f of frames.slice(i, i + GROUP_FRAMES)) {
          fs.writeSync(fd, encodeEvents(f));
          await sleep(FRAME_MS);
        }
        const sent = Math.min(frames.length, i + GROUP_FRAMES);
        await waitFor(`the guest to log the first ${sent} frames`, 60_000, () => caughtUp(sent), 50);
      }
    } finally {
      fs.closeSync(fd);
    }
    const dropped = guestEvents(guest, 0).filter((e) => e.type === 0 && e.code === 3);
    expect(dropped, 'SYN_DROPPED in the guest: its event reader fell behind').toEqual([]);
  }

  function startBridge(opts: { grabToggle?: string } = {}): { bridge: InputBridge; fifo: string } {
    return replayBridge(dir, vmInput, (m) => logs.push(m), opts.grabToggle);
  }

  it('a typed sentence with shifted characters, digits, punctuation, arrows and function keys arrives exactly', async () => {
    const { bridge, fifo } = startBridge();
    const from = guest.serial().length;
    const script = new EventScript().typeText('Hello, World! 42 #$%&*()_+ {x}|"?~ a-b=c;d\'e/f\\g`');
    for (const code of [103, 108, 105, 106, 102, 107, 104, 109, 110, 111, 59, 60, 63, 68, 87, 88, 96, 98, 125, 100]) script.tap(code); // arrows, Home/End/PgUp/PgDn, Ins/Del, F1 F2 F5 F10 F11 F12, KPEnter, KPSlash, LeftMeta, RightAlt
    const expected = script.events.filter((e) => e.type === EV_KEY).map((e) => [e.code, e.value]);
    // every frame carries one key event; on a timeout the comparison below shows what did arrive
    await feed(fifo, script, (sent) => keysOf(guestEvents(guest, from), kbdDev).length >= sent).catch(() => undefined);
    await bridge.stop();
    expect(keysOf(guestEvents(guest, from), kbdDev)).toEqual(expected);
    expect(logs.some((l) => /not an evdev device \(ENOTTY\)/.test(l))).toBe(true);
  }, 300_000);

  it('mouse moves, clicks and the wheel arrive; absolute positions land where sent (ABS = x*0x7fff/width)', async () => {
    const { width, height } = vmInput.consoleSize;
    expect(width).toBeGreaterThan(100);
    const { bridge, fifo } = startBridge();
    const from = guest.serial().length;
    // relative moves from the virtual cursor at (0,0) -> (100,50) -> (130,90); then absolute device
    // units: 16384/32767 of the console and the far corner (clamped below the size)
    const script = new EventScript().move(100, 50).move(30, 40).click(BTN_LEFT).click(BTN_RIGHT).click(BTN_MIDDLE).wheel(1).wheel(-2);
    script.moveAbs(16384, 16384).moveAbs(32767, 32767).click(0x113 /* BTN_SIDE */).click(0x115 /* BTN_FORWARD: never sent */);
    const px = (x: number, size: number) => Math.floor((x * 0x7fff) / size);
    const half = (size: number) => Math.round((16384 * (size - 1)) / 32767);
    const expected: number[][] = [
      [3, 0, px(100, width)],
      [3, 1, px(50, height)],
      [3, 0, px(130, width)],
      [3, 1, px(90, height)],
      [1, BTN_LEFT, 1],
      [1, BTN_LEFT, 0],
      [1, BTN_RIGHT, 1],
      [1, BTN_RIGHT, 0],
      [1, BTN_MIDDLE, 1],
      [1, BTN_MIDDLE, 0],
      [2, 8, 1],
      [2, 8, -1],
      [2, 8, -1],
      [3, 0, px(half(width), width)],
      [3, 1, px(half(height), height)],
      [3, 0, px(width - 1, width)],
      [3, 1, px(height - 1, height)],
      [1, 0x113, 1],
      [1, 0x113, 0],
    ];
    const tabletEvents = () => guestEvents(guest, from).filter((e) => e.dev === tabletDev && e.type !== 0 && !(e.type === 2 && e.code === 11));
    // 13 frames; the tablet logs 19 events for them: wait for all at the end
    await feed(fifo, script, () => true);
    await waitFor(`${expected.length} tablet events`, 120_000, () => tabletEvents().length >= expected.length, 200).catch(() => undefined);
    await bridge.stop();
    expect(tabletEvents().map((e) => [e.type, e.code, e.value])).toEqual(expected);
    expect(guest.isRunning()).toBe(true); // the unknown button was dropped, not sent (QEMU would abort)
  }, 300_000);

  it('stopping the bridge with keys and a button held releases them in the guest', async () => {
    const { bridge, fifo } = startBridge();
    const from = guest.serial().length;
    await feed(fifo, new EventScript().key(KEY_LEFTSHIFT, 1).key(30, 1).key(BTN_LEFT, 1), () => true);
    await waitFor('presses in the guest', 120_000, () => guestEvents(guest, from).filter((e) => e.type === EV_KEY && e.value === 1).length >= 3, 200);
    await bridge.stop();
    await waitFor('releases in the guest', 60_000, () => guestEvents(guest, from).filter((e) => e.type === EV_KEY && e.value === 0).length >= 3, 200);
    const evs = guestEvents(guest, from).filter((e) => e.type === EV_KEY && e.value !== 2);
    expect(keysOf(evs, kbdDev)).toEqual([
      [KEY_LEFTSHIFT, 1],
      [30, 1],
      [KEY_LEFTSHIFT, 0],
      [30, 0],
    ]);
    expect(keysOf(evs, tabletDev)).toEqual([
      [BTN_LEFT, 1],
      [BTN_LEFT, 0],
    ]);
  }, 300_000);

  it('the toggle hotkey (both Ctrl keys) stops forwarding once all keys are up, and brings it back', async () => {
    const { bridge, fifo } = startBridge({ grabToggle: 'ctrl-ctrl' });
    const from = guest.serial().length;
    const script = new EventScript()
      .tap(30) // a: guest
      .key(KEY_LEFTCTRL, 1)
      .key(KEY_RIGHTCTRL, 1)
      .key(KEY_LEFTCTRL, 0)
      .key(KEY_RIGHTCTRL, 0) // -> host
      .tap(48) // b: host only
      .key(KEY_RIGHTCTRL, 1)
      .key(KEY_LEFTCTRL, 1)
      .key(KEY_RIGHTCTRL, 0)
      .key(KEY_LEFTCTRL, 0) // -> guest
      .tap(46); // c: guest
    await feed(fifo, script, () => true);
    await waitFor('c in the guest', 120_000, () => keysOf(guestEvents(guest, from), kbdDev).some(([c, v]) => c === 46 && v === 0), 200);
    expect(bridge.forwardMode).toBe('guest');
    await bridge.stop();
    expect(keysOf(guestEvents(guest, from), kbdDev)).toEqual([
      [30, 1],
      [30, 0],
      [KEY_LEFTCTRL, 1],
      [KEY_RIGHTCTRL, 1],
      [KEY_LEFTCTRL, 0],
      [KEY_RIGHTCTRL, 0],
      [46, 1],
      [46, 0],
    ]);
  }, 300_000);

  // 7.2 has no org.qemu.Display1.MultiTouch: a touch stream is not forwarded as touch, that is said
  // once, and its single-touch pointer emulation still drives the tablet.
  if (version === '7.2')
    it('a replayed touch stream without MultiTouch: one ENOMULTITOUCH line, no touch call, the pointer emulation reaches the tablet', async () => {
      expect(qvm.capabilities.multiTouch).toBe(false);
      const touchInput = await createDbusVmInput(qvm.console(), { multiTouch: qvm.capabilities.multiTouch });
      try {
        expect(touchInput.touchSlots).toBe(0);
        const touchLogs: string[] = [];
        const { bridge, fifo } = replayBridge(dir, touchInput, (m) => touchLogs.push(m));
        const from = guest.serial().length;
        const script = new EventScript();
        for (let i = 0; i < 3; i++) script.touchFrame([{ slot: 0, id: i, x: 100 * i, y: 100 }]).raw(3, 0, 16384).raw(3, 1, 16384).key(0x14a /* BTN_TOUCH */, 1).key(0x14a, 0);
        await writePaced(fifo, script, FRAME_MS);
        await waitFor('three tablet clicks in the guest', 30_000, () => guestEvents(guest, from).filter((e) => e.dev === tabletDev && e.type === EV_KEY && e.code === BTN_LEFT && e.value === 0).length >= 3);
        expect(bridge.stats?.touchEvents).toBe(0);
        expect(bridge.stats?.callErrors).toBe(0);
        await bridge.stop();
        expect(touchLogs.filter((l) => /touch contacts are not forwarded \(ENOMULTITOUCH\)/.test(l))).toHaveLength(1);
      } finally {
        await touchInput.close();
      }
    }, 40_000);

  // 8.0+ reports Mouse.IsAbsolute correctly from the first read; 7.2 may still say false here.
  if (version !== '7.2')
    it('Mouse.IsAbsolute is true for the tablet from the first read (8.0+), no PropertiesChanged needed', () => {
      expect(absoluteAtStart).toBe(true);
    });

  // The round trip takes ~40 s under TCG: on 7.2 only (10.0's key table is checked by the typed sentence).
  if (version === '7.2')
    it('keymap round trip: every mapped key this QEMU knows comes back from the guest as the Linux code we read', async () => {
      // Keys with side effects in a guest are left out: power/sleep/suspend/wake. Code 84 has no
      // kernel name and shares qnum 0x54 with KEY_SYSRQ: QEMU hands it back as KEY_SYSRQ (99).
      // KEY_ESC is the sentinel closing each group (so it is checked too).
      const KEY_ESC = 1;
      const skip = new Set([KEY_ESC, 84, 116, 142, 143, 205]);
      const codes = mappedKeyCodes().filter((c) => !skip.has(c));
      const { bridge, fifo } = startBridge();
      const from = guest.serial().length;
      const unmappedBefore = (guest.stderr().match(/unmapped key/g) ?? []).length;
      const escCount = () => keysOf(guestEvents(guest, from), kbdDev).filter(([c, v]) => c === KEY_ESC && v === 0).length;
      const fd = fs.openSync(fifo, 'a');
      try {
        for (let g = 0; g * 8 < codes.length; g++) {
          const group = new EventScript();
          for (const c of codes.slice(g * 8, g * 8 + 8)) group.tap(c);
          group.tap(KEY_ESC);
          for (const f of group.frames()) {
            fs.writeSync(fd, encodeEvents(f));
            await sleep(FRAME_MS);
          }
          await waitFor(`group ${g} in the guest`, 60_000, () => escCount() >= g + 1, 50);
        }
      } finally {
        fs.closeSync(fd);
      }
      await bridge.stop();
      const got = keysOf(guestEvents(guest, from), kbdDev).filter(([c]) => c !== KEY_ESC);
      const pressed = got.filter(([, v]) => v === 1).map(([c]) => c);
      const missing = codes.filter((c) => !pressed.includes(c));
      console.log(`keymap round trip: ${pressed.length}/${codes.length} keys came back; missing (no QKeyCode in QEMU ${version}): ${missing.join(' ')}`);
      expect(guestEvents(guest, from).filter((e) => e.type === 0 && e.code === 3)).toEqual([]); // no SYN_DROPPED
      // nothing came back as another key, each press is followed by its own release, in the order sent
      expect(pressed.filter((c) => !codes.includes(c))).toEqual([]);
      for (let i = 0; i < got.length; i += 2) expect([got[i][0], got[i + 1]?.[0], got[i][1], got[i + 1]?.[1]]).toEqual([got[i][0], got[i][0], 1, 0]);
      expect(pressed).toEqual(codes.filter((c) => pressed.includes(c)));
      // the standard keyboard block, the E0 keys of keycodemapdb's linux -> qnum table and common media keys all make it
      for (const c of [...Array.from({ length: 82 }, (_, i) => i + 2), 86, 87, 88, 96, 97, 98, 99, 100, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 113, 114, 115, 119, 125, 126, 127, 163, 164, 165, 166]) {
        expect(pressed, `KEY code ${c}`).toContain(c);
      }
      // what did not come back was refused by QEMU itself (qnum without a QKeyCode), not lost on our side:
      // QEMU logs "virtio_input_handle_event: unmapped key" for each of those events
      await waitFor('QEMU stderr', 10_000, () => (guest.stderr().match(/unmapped key/g) ?? []).length - unmappedBefore >= missing.length);
    }, 300_000);
});

describe('input bridge -> QEMU 7.2 guest with a relative mouse (virtio-mouse)', () => {
  let guest: Guest;
  let qvm: QemuVm;
  let vmInput: DbusVmInput;
  let dir: string;
  let mouseDev: string;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = tempDir('input-guest-rel');
    let devices: Record<string, string>;
    ({ guest, qvm, vmInput, devices } = await startInputGuest({ pointer: 'mouse' }, ['QEMU Virtio Mouse']));
    mouseDev = devices['QEMU Virtio Mouse'];
  });

  afterAll(async () => {
    await closeInputGuest({ guest, qvm, vmInput });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const relEvents = (from: number) =>
    guestEvents(guest, from)
      .filter((e) => e.dev === mouseDev && e.type === 2)
      .map((e) => [e.code, e.value]);

  it('motion is coalesced per SYN_REPORT into one RelMotion, which the guest sees as REL_X/REL_Y', async () => {
    expect(vmInput.isAbsolute).toBe(false);
    const fifo = path.join(dir, 'rel.fifo');
    execFileSync('mkfifo', [fifo]);
    const bridge = new InputBridge({ replay: [fifo], grabToggle: 'none', log: lineLogger((m) => logs.push(m), 'input') });
    bridge.setVm(vmInput);
    bridge.start();
    const from = guest.serial().length;
    const script = new EventScript().raw(2, 0, 3).raw(2, 0, 4).raw(2, 1, -2).raw(0, 0, 0).move(-5, 6).wheel(1);
    fs.writeFileSync(fifo, script.encode());
    await waitFor('motion in the guest', 60_000, () => relEvents(from).length >= 5, 100).catch(() => undefined);
    await bridge.stop();
    expect(relEvents(from)).toEqual([
      [0, 7],
      [1, -2],
      [0, -5],
      [1, 6],
      [8, 1],
    ]);
  }, 300_000);

  it('a stale IsAbsolute=true: QEMU answers Error.Invalid "Mouse is not absolute", the forwarder flips and resends as relative', async () => {
    const stale: VmInput = Object.create(vmInput, { isAbsolute: { get: () => true } }) as VmInput;
    const fifo = path.join(dir, 'stale.fifo');
    execFileSync('mkfifo', [fifo]);
    const bridge = new InputBridge({ replay: [fifo], grabToggle: 'none', log: lineLogger((m) => logs.push(m), 'input') });
    bridge.setVm(stale);
    bridge.start();
    const from = guest.serial().length;
    fs.writeFileSync(fifo, new EventScript().move(10, 5).move(1, 1).encode());
    await waitFor('motion in the guest', 60_000, () => relEvents(from).length >= 4, 100).catch(() => undefined);
    await bridge.settled();
    // both frames arrive in one read, so both SetAbsPosition calls may be on the wire before the
    // first refusal comes back: one or two errors, each motion resent once as relative
    expect(bridge.stats?.callErrors).toBeGreaterThanOrEqual(1);
    expect(bridge.stats?.callErrors).toBeLessThanOrEqual(2);
    await bridge.stop();
    expect(relEvents(from)).toEqual([
      [0, 10],
      [1, 5],
      [0, 1],
      [1, 1],
    ]);
    expect(logs.join('\n')).toMatch(/guest pointer is relative \(QEMU refused the other mode; IsAbsolute was stale\)/);
  }, 300_000);
});

// 8.1+: a virtio multitouch screen fed through org.qemu.Display1.MultiTouch. A guest of its own: QEMU
// routes absolute pointer events to the most recently added absolute device, so next to the tablet
// the multitouch device would take the mouse's events (the tablet suite above would see none).
describe.each(QEMU_MATRIX.filter(([v]) => v !== '7.2'))('QEMU %s MultiTouch -> guest (virtio-multitouch-pci)', (_version, qemu) => {
  let guest: Guest;
  let qvm: QemuVm;
  let touchDev: string;

  beforeAll(async () => {
    guest = await startGuest({ qemu, scenario: 'idle', extraArgs: ['-device', 'virtio-multitouch-pci'] });
    await guest.waitForSerial(/MARK ready/, 120_000);
    touchDev = (await guest.waitForSerial(/input (event\d+) name='QEMU Virtio MultiTouch'/, 10_000))[1];
    qvm = await QemuVm.connect({ busAddress: guest.busAddress });
    qvm.on('error', () => undefined);
    expect(qvm.capabilities.multiTouch).toBe(true);
  });

  afterAll(async () => {
    await qvm?.close();
    await guest?.stop();
  });

  it('MultiTouch.SendEvent: two fingers down, one moves, both up reach the guest as ABS_MT slots', async () => {
    const EV_ABS = 3;
    const [ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID] = [0x2f, 0x35, 0x36, 0x39];
    const { width, height } = await qvm.console().size();
    const mt = qvm.console().multiTouch;
    expect(await mt.maxSlots()).toBe(10);
    const from = guest.serial().length;
    await mt.sendEvent(TouchKind.Begin, 0, width / 4, height / 4);
    await mt.sendEvent(TouchKind.Begin, 1, (3 * width) / 4, (3 * height) / 4);
    await mt.sendEvent(TouchKind.Update, 0, width / 2, height / 2);
    await mt.sendEvent(TouchKind.End, 0, width / 2, height / 2);
    await mt.sendEvent(TouchKind.End, 1, (3 * width) / 4, (3 * height) / 4);
    const ev = () => guestEvents(guest, from).filter((e) => e.dev === touchDev && e.type === EV_ABS);
    await waitFor('both slots released in the guest', 30_000, () => ev().filter((e) => e.code === ABS_MT_TRACKING_ID && e.value === -1).length >= 2);
    const abs = ev();
    const scale = (v: number, max: number) => Math.floor((v * 0x7fff) / max);
    // tracking ids = slot numbers, the positions scaled to 0..0x7fff, then both lifted
    expect(abs.filter((e) => e.code === ABS_MT_TRACKING_ID).map((e) => e.value)).toEqual(expect.arrayContaining([0, 1, -1]));
    expect(abs.some((e) => e.code === ABS_MT_SLOT && e.value === 1)).toBe(true);
    const xs = abs.filter((e) => e.code === ABS_MT_POSITION_X).map((e) => e.value);
    const ys = abs.filter((e) => e.code === ABS_MT_POSITION_Y).map((e) => e.value);
    for (const [v, max] of [[width / 4, width], [(3 * width) / 4, width], [width / 2, width]] as const) expect(xs).toContain(scale(v, max));
    for (const [v, max] of [[height / 4, height], [height / 2, height]] as const) expect(ys).toContain(scale(v, max));
  });

  it('a replayed touch stream (FIFO, protocol B) reaches the guest as ABS_MT slots; the finger still down at bridge stop is lifted', async () => {
    const EV_ABS = 3;
    const [ABS_MT_SLOT, ABS_MT_POSITION_X, ABS_MT_POSITION_Y, ABS_MT_TRACKING_ID] = [0x2f, 0x35, 0x36, 0x39];
    const t0 = Date.now();
    const dir = tempDir('input-touch');
    const vmInput = await createDbusVmInput(qvm.console(), { multiTouch: qvm.capabilities.multiTouch });
    const logs: string[] = [];
    try {
      expect(vmInput.touchSlots).toBe(10);
      const { width, height } = vmInput.consoleSize;
      const { bridge, fifo } = replayBridge(dir, vmInput, (m) => logs.push(m));
      const from = guest.serial().length;
      // Device slots 3 and 7 (tracking ids 40, 41) land on console slots 0 and 1. Units 0..0x7fff
      // (a stream has no ranges): 8192 = a quarter, 24576 = three quarters, 16384 = the middle.
      const script = new EventScript()
        .touchFrame([
          { slot: 3, id: 40, x: 8192, y: 8192 },
          { slot: 7, id: 41, x: 24576, y: 24576 },
        ])
        .touchFrame([{ slot: 3, x: 16384, y: 16384 }])
        .touchFrame([{ slot: 3, id: -1 }]);
      const ev = () => guestEvents(guest, from).filter((e) => e.dev === touchDev && e.type === EV_ABS);
      const lifts = () => ev().filter((e) => e.code === ABS_MT_TRACKING_ID && e.value === -1).length;
      await writePaced(fifo, script, 25);
      await waitFor('the first finger lifted in the guest', 30_000, () => lifts() >= 1);
      await bridge.stop(); // the second finger is still down: stop must lift it
      await waitFor('the second finger lifted in the guest', 15_000, () => lifts() >= 2);
      await bridge.settled();
      const abs = ev();
      // the bridge's pixel (scaled like the absolute pointer), then QEMU's pixel -> 0..0x7fff
      const guestUnits = (units: number, size: number) => Math.floor((Math.round((units * (size - 1)) / 0x7fff) * 0x7fff) / size);
      const slotsUsed = abs.filter((e) => e.code === ABS_MT_SLOT).map((e) => e.value);
      expect(new Set(slotsUsed)).toEqual(new Set([0, 1]));
      expect(abs.filter((e) => e.code === ABS_MT_TRACKING_ID).map((e) => e.value)).toEqual(expect.arrayContaining([0, 1, -1]));
      const xs = abs.filter((e) => e.code === ABS_MT_POSITION_X).map((e) => e.value);
      const ys = abs.filter((e) => e.code === ABS_MT_POSITION_Y).map((e) => e.value);
      for (const u of [8192, 24576, 16384]) expect(xs).toContain(guestUnits(u, width));
      for (const u of [8192, 24576, 16384]) expect(ys).toContain(guestUnits(u, height));
      // the last thing the guest saw of each console slot is its lift
      for (const slot of [0, 1]) {
        let cur = 0;
        let last: number | undefined;
        for (const e of abs) {
          if (e.code === ABS_MT_SLOT) cur = e.value;
          else if (e.code === ABS_MT_TRACKING_ID && cur === slot) last = e.value;
        }
        expect(last, `console slot ${slot}`).toBe(-1);
      }
      expect(guestEvents(guest, from).filter((e) => e.type === 0 && e.code === 3)).toEqual([]); // no SYN_DROPPED
      expect(logs.filter((l) => /ENOMULTITOUCH|VM call failed/.test(l))).toEqual([]);
      console.log(`touch replay on QEMU ${_version}: ${abs.length} ABS events in the guest, ${Date.now() - t0} ms`);
    } finally {
      await vmInput.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);
});

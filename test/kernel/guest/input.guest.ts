// Kernel tier, input group (runs INSIDE the guest, as root, udev running; test/kernel/input.test.ts
// boots it): the bridge's real CLI (`qemu-dbus-bridge run --input ...`) reads real evdev nodes of
// uinput devices (scripts/kernel-vm/guest/uinput-devices.py) and QEMU's USB keyboard, and forwards
// to the project's fake QEMU peer (test/fakes/qemu-peer.ts) on a private bus in the guest, which
// records the Keyboard/Mouse calls that arrive. A bridge start costs 5-20 s under TCG, so each
// describe shares one bridge among the checks it can serve; devices come and go through the factory.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeQemuPeer } from '../../fakes/qemu-peer';
import { startDbusDaemon, type DbusDaemon } from '../../harness/dbus';
import { sleep, waitFor } from '../../harness/procs';
import { ABS_X, ABS_Y, EV_ABS, EV_KEY, EV_REL, EV_SYN, INPUT_EVENT_SIZE, LED_CAPSL, REL_WHEEL, REL_WHEEL_HI_RES, SYN_DROPPED } from '../../../src/input/events';
import { EvdevSource } from '../../../src/input/device';
import { LED_BIT_CAPS, LED_BIT_NUM } from '../../../src/input/vm-input';
import { native } from '../../../src/native';
import { BridgeProcess, NOBODY, UinputFactory, groupId, runCli } from './tools';

const KEY_A = 30;
const KEY_B = 48;
const KEY_C = 46;
const KEY_D = 32;
const KEY_E = 18;
const KEY_X = 45;
const KEY_F12 = 88;
const KEY_LEFTCTRL = 29;
const KEY_RIGHTCTRL = 97;
const KEY_LEFTSHIFT = 42;
// QEMU's InputButton on D-Bus: 3 wheel up, 4 wheel down
const WHEEL_UP = 3;
const WHEEL_DOWN = 4;
// the linux codes used here have the same number as their QEMU qnum (PC scancode set 1)
const qnum = (linuxKey: number): number => linuxKey;
const VM = 'kdev';
const WIDTH = 320;
const HEIGHT = 240;

let bus: DbusDaemon;
let peer: FakeQemuPeer;
let uinput: UinputFactory;
const dev: Record<string, string> = {};
/** /dev/input/by-id/<this> is QEMU's USB keyboard */
let usbKbd: string | undefined;

beforeAll(async () => {
  bus = await startDbusDaemon({ allowAnyUser: true });
  peer = await FakeQemuPeer.start({ busAddress: bus.address, name: VM, width: WIDTH, height: HEIGHT });
  // QEMU's USB keyboard (run-guest -q "-device qemu-xhci -device usb-kbd"): udev gives it by-id links
  spawnSync('modprobe', ['-a', 'xhci_pci', 'usbhid', 'hid_generic']);
  uinput = await UinputFactory.start();
  dev.kbd1 = await uinput.create('kbd1', 'keyboard', 'kdev keyboard one', 0x1d6b, 0x0101);
  dev.kbd2 = await uinput.create('kbd2', 'keyboard', 'kdev keyboard two', 0x1d6b, 0x0102);
  dev.kbd3 = await uinput.create('kbd3', 'keyboard', 'kdev keyboard three', 0x1d6b, 0x0103);
  dev.kbd4 = await uinput.create('kbd4', 'keyboard', 'kdev keyboard four', 0x1d6b, 0x0104);
  dev.mouse = await uinput.create('mouse', 'hires-mouse', 'kdev hires mouse', 0x1d6b, 0x0201);
  dev.tablet = await uinput.create('tablet', 'tablet', 'kdev pen tablet', 0x1d6b, 0x0301);
  // udev has set the group (input, 0660) on every node before a check runs as another user
  await waitFor('udev to settle', 30_000, () => Object.values(dev).every((p) => (fs.statSync(p).mode & 0o060) === 0o060));
  await waitFor('the USB keyboard in /dev/input/by-id', 60_000, () => {
    usbKbd = fs.existsSync('/dev/input/by-id') ? fs.readdirSync('/dev/input/by-id').find((n) => n.endsWith('-event-kbd')) : undefined;
    return usbKbd;
  }, 200);
});

afterAll(async () => {
  await uinput?.stop();
  peer?.bus.connection.end();
  await bus?.stop();
});

const runArgs = (...inputs: string[]): string[] => ['run', '--address', bus.address, '--vm', VM, '--audio', 'none', '--camera', 'none', ...inputs.flatMap((i) => ['--input', i])];

/** Keys the VM saw since `from`: ['press'|'release', qnum][] */
const keysSince = (from: number): ['press' | 'release', number][] => peer.keys.slice(from);

/**
 * Starts a bridge and waits until its route is live: a probe key (F12) on `probeDev` reaches the
 * VM (the bridge attaches, then opens the devices: pressing before that is not forwarded).
 */
async function startBridge(args: string[], probeId: string, opts: Parameters<typeof BridgeProcess.start>[1] = {}): Promise<BridgeProcess> {
  const b = BridgeProcess.start(args, opts);
  await b.waitLog(/attached to VM/, 60_000);
  await waitFor(`a probe key on ${probeId} to reach the VM`, 30_000, async () => {
    if (!b.running) throw new Error(`the bridge exited (${b.proc.exitCode ?? b.proc.signalCode}) on the first key press from a real device:\n${b.tail()}`);
    const from = peer.keys.length;
    await uinput.frame(probeId, [EV_KEY, KEY_F12, 1]);
    await uinput.frame(probeId, [EV_KEY, KEY_F12, 0]);
    await sleep(150);
    return keysSince(from).some(([k, c]) => k === 'release' && c === qnum(KEY_F12));
  }, 300);
  return b;
}

async function tap(id: string, key: number): Promise<void> {
  await uinput.frame(id, [EV_KEY, key, 1]);
  await uinput.frame(id, [EV_KEY, key, 0]);
}

/** Waits until the VM has seen press+release of `key` after `from`. */
async function vmGotTap(key: number, from: number, what: string, b: BridgeProcess): Promise<void> {
  await waitFor(`${what}: press+release of ${key} in the VM`, 10_000, () => {
    if (!b.running) throw new Error(`the bridge died:\n${b.tail()}`);
    const seen = keysSince(from);
    return seen.some(([k, c]) => k === 'press' && c === qnum(key)) && seen.some(([k, c]) => k === 'release' && c === qnum(key));
  });
}

/** The LED as the kernel has it now (EVIOCGLED through evtest --query: exit 10 = on, 0 = off). */
function ledOn(path: string, led: 'LED_NUML' | 'LED_CAPSL'): boolean {
  const r = spawnSync('evtest', ['--query', path, 'EV_LED', led]);
  if (r.status !== 0 && r.status !== 10) throw new Error(`evtest --query ${path} EV_LED ${led}: exit ${r.status} ${r.stderr}`);
  return r.status === 10;
}

/** Another program trying EVIOCGRAB on the node: undefined if it got it (and let go), else the errno code. */
function grabFromOutside(path: string): string | undefined {
  const grab = native.evdevGrabFd;
  if (!grab) throw new Error('this build of the addon has no evdev support');
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    grab(fd, true);
    grab(fd, false);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Events waiting on a non-blocking reader fd: [type, code, value][] */
function drain(fd: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  const buf = Buffer.alloc(INPUT_EVENT_SIZE * 256);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
      throw err;
    }
    for (let o = 0; o + INPUT_EVENT_SIZE <= n; o += INPUT_EVENT_SIZE) out.push([buf.readUInt16LE(o + 16), buf.readUInt16LE(o + 18), buf.readInt32LE(o + 20)]);
  }
}

async function hotkey(id: string): Promise<void> {
  await uinput.frame(id, [EV_KEY, KEY_LEFTCTRL, 1]);
  await uinput.frame(id, [EV_KEY, KEY_RIGHTCTRL, 1]);
  await uinput.frame(id, [EV_KEY, KEY_RIGHTCTRL, 0]);
  await uinput.frame(id, [EV_KEY, KEY_LEFTCTRL, 0]);
}


describe('--input selection, USB by-id, hi-res wheel, tablet, unplug (one bridge as root)', () => {
  let b: BridgeProcess;
  beforeAll(async () => {
    const inputs = [dev.kbd1, 'name:^kdev keyboard two$', 'id:1d6b:0103', `/dev/input/by-id/${usbKbd}`, dev.mouse, dev.tablet];
    b = await startBridge(runArgs(...inputs), 'kbd1');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a key press from a real evdev node (by path) reaches the VM and the bridge lives on (uv_poll callback has a HandleScope)', async () => {
    const from = peer.keys.length;
    await tap('kbd1', KEY_B);
    await vmGotTap(KEY_B, from, 'by path', b);
    expect(b.running).toBe(true);
  });

  it('--input name:REGEX selects the device with that name', async () => {
    const from = peer.keys.length;
    await tap('kbd2', KEY_C);
    await vmGotTap(KEY_C, from, 'name:', b);
    expect(b.log()).toContain(`input: using ${dev.kbd2} (kdev keyboard two)`);
  });

  it('--input id:VVVV:PPPP selects the device with those ids', async () => {
    const from = peer.keys.length;
    await tap('kbd3', KEY_D);
    await vmGotTap(KEY_D, from, 'id:', b);
    expect(b.log()).toContain(`input: using ${dev.kbd3} (kdev keyboard three)`);
  });

  it('--input /dev/input/by-id/…-event-kbd opens QEMU\'s USB keyboard', () => {
    expect(b.log()).toMatch(/input: using \S+ \(QEMU QEMU USB Keyboard\)/);
  });

  it('a device no rule matches is not opened and its keys do not reach the VM', async () => {
    const from = peer.keys.length;
    await tap('kbd4', KEY_E);
    await tap('kbd1', KEY_B); // a marker behind it on a selected device
    await vmGotTap(KEY_B, from, 'marker', b);
    expect(keysSince(from).filter(([, c]) => c === qnum(KEY_E))).toEqual([]);
    expect(b.log()).not.toContain(dev.kbd4);
  });

  it('hi-res wheel: two half notches (REL_WHEEL_HI_RES 60, then 60 with REL_WHEEL 1) scroll once up; a full notch back once down', async () => {
    const from = peer.buttons.length;
    await uinput.frame('mouse', [EV_REL, REL_WHEEL_HI_RES, 60]);
    await uinput.frame('mouse', [EV_REL, REL_WHEEL_HI_RES, 60], [EV_REL, REL_WHEEL, 1]);
    await uinput.frame('mouse', [EV_REL, REL_WHEEL_HI_RES, -120], [EV_REL, REL_WHEEL, -1]);
    await waitFor('the wheel-down release', 10_000, () => peer.buttons.slice(from).some(([k, bt]) => k === 'release' && bt === WHEEL_DOWN));
    await sleep(300);
    expect(peer.buttons.slice(from)).toEqual([
      ['press', WHEEL_UP],
      ['release', WHEEL_UP],
      ['press', WHEEL_DOWN],
      ['release', WHEEL_DOWN],
    ]);
  });

  it('the tablet (ABS_X 0..15199, ABS_Y 0..9499) maps its corners and centre onto the 320x240 console', async () => {
    const from = peer.absPositions.length;
    await uinput.frame('tablet', [EV_ABS, ABS_X, 15199], [EV_ABS, ABS_Y, 9499]);
    await uinput.frame('tablet', [EV_ABS, ABS_X, 7600], [EV_ABS, ABS_Y, 4750]);
    await uinput.frame('tablet', [EV_ABS, ABS_X, 0], [EV_ABS, ABS_Y, 0]);
    await waitFor('three positions', 10_000, () => peer.absPositions.length - from >= 3);
    // (value - min) * (size - 1) / (max - min), rounded: 7600 * 319 / 15199 = 159.5, 4750 * 239 / 9499 = 119.5
    expect(peer.absPositions.slice(from)).toEqual([
      [319, 239],
      [160, 120],
      [0, 0],
    ]);
  });

  it('Shift+X held when the keyboard is unplugged: both are released in the VM, the bridge lives on', async () => {
    const from = peer.keys.length;
    await uinput.frame('kbd3', [EV_KEY, KEY_LEFTSHIFT, 1]);
    await uinput.frame('kbd3', [EV_KEY, KEY_X, 1]);
    await waitFor('Shift+X pressed in the VM', 10_000, () => keysSince(from).filter(([k]) => k === 'press').length >= 2);
    await uinput.destroy('kbd3');
    await waitFor('Shift and X released in the VM', 10_000, () =>
      [KEY_LEFTSHIFT, KEY_X].every((k) => keysSince(from).some(([kind, c]) => kind === 'release' && c === qnum(k))),
    );
    await sleep(300);
    expect(b.running).toBe(true);
  });
});

describe('EVIOCGRAB, the grab hotkey and LEDs (bridge as root on keyboard four)', () => {
  let b: BridgeProcess;
  let fd: number;
  beforeAll(async () => {
    // the host's own LED state before the bridge grabs: Num Lock on, Caps Lock off
    const host = new EvdevSource(dev.kbd4);
    host.setLeds(LED_BIT_NUM);
    host.close();
    expect([ledOn(dev.kbd4, 'LED_NUML'), ledOn(dev.kbd4, 'LED_CAPSL')]).toEqual([true, false]);
    b = await startBridge(runArgs(dev.kbd4), 'kbd4');
    fd = fs.openSync(dev.kbd4, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  });
  afterAll(async () => {
    if (fd !== undefined) fs.closeSync(fd);
    await b?.stop();
  });

  it('while forwarding, another EVIOCGRAB gets EBUSY and other readers see no keys', async () => {
    expect(grabFromOutside(dev.kbd4)).toBe('EBUSY');
    drain(fd);
    const from = peer.keys.length;
    await tap('kbd4', KEY_B);
    await vmGotTap(KEY_B, from, 'grabbed', b);
    expect(drain(fd).filter(([t]) => t === EV_KEY)).toEqual([]);
  });

  it("the guest's Caps Lock lights the host keyboard's Caps Lock LED (and only that one)", async () => {
    const from = uinput.lines.length;
    peer.setModifiers(LED_BIT_CAPS);
    await waitFor('the Caps Lock LED write', 10_000, () => uinput.ledWrites('kbd4', from).some(([c, v]) => c === LED_CAPSL && v === 1));
    expect([ledOn(dev.kbd4, 'LED_NUML'), ledOn(dev.kbd4, 'LED_CAPSL')]).toEqual([false, true]);
  });

  it("both Ctrl keys hand the keyboard back to the host, with the host's LEDs from before the grab (Num Lock on, Caps Lock off)", async () => {
    const at = b.log().length;
    const from = uinput.lines.length;
    await hotkey('kbd4');
    await b.waitLog(/input: released to the host/, 10_000, at);
    await sleep(500); // the console keyboard handler writes its LEDs when the grab is released
    // (checked before anything else grabs: every EVIOCGRAB release makes the console handler write again)
    expect([ledOn(dev.kbd4, 'LED_NUML'), ledOn(dev.kbd4, 'LED_CAPSL')], `LED writes seen: ${JSON.stringify(uinput.ledWrites('kbd4', from))}`).toEqual([true, false]);
  });

  it('handed back: EVIOCGRAB is free and keys stay on the host', async () => {
    expect(grabFromOutside(dev.kbd4)).toBeUndefined();
    drain(fd);
    const from = peer.keys.length;
    await tap('kbd4', KEY_C);
    await waitFor('the host reader to see KEY_C', 10_000, () => drain(fd).some(([t, c, v]) => t === EV_KEY && c === KEY_C && v === 0));
    await sleep(300);
    expect(keysSince(from).filter(([, c]) => c === qnum(KEY_C))).toEqual([]);
  });

  it('both Ctrl keys again: grabbed again and forwarding resumes with the guest LEDs', async () => {
    const at = b.log().length;
    await hotkey('kbd4');
    await b.waitLog(/input: forwarding to the guest/, 10_000, at);
    await waitFor('EVIOCGRAB taken again', 10_000, () => grabFromOutside(dev.kbd4) === 'EBUSY');
    const from = peer.keys.length;
    await tap('kbd4', KEY_D);
    await vmGotTap(KEY_D, from, 'grabbed again', b);
    await waitFor('guest LEDs on the host keyboard again', 10_000, () => ledOn(dev.kbd4, 'LED_CAPSL') && !ledOn(dev.kbd4, 'LED_NUML'));
  });
});

describe('SYN_DROPPED on a flooded device (bridge --no-grab on keyboard two, stopped while the flood arrives)', () => {
  let b: BridgeProcess;
  let fd: number;
  let from: number;
  beforeAll(async () => {
    b = await startBridge([...runArgs(dev.kbd2), '--no-grab'], 'kbd2');
    fd = fs.openSync(dev.kbd2, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    from = peer.keys.length;
    b.proc.kill('SIGSTOP'); // nothing reads: the kernel's per-client buffer overflows
    await uinput.flood('kbd2', 2000);
    b.proc.kill('SIGCONT');
  });
  afterAll(async () => {
    if (fd !== undefined) fs.closeSync(fd);
    await b?.stop();
  });

  it('the kernel really dropped events (a plain reader sees SYN_DROPPED)', () => {
    expect(drain(fd).some(([t, c]) => t === EV_SYN && c === SYN_DROPPED)).toBe(true);
  });

  it('after the resync the VM holds KEY_A (the device state), with presses and releases alternating', async () => {
    await waitFor('KEY_A held in the VM', 30_000, () => {
      if (!b.running) throw new Error(`the bridge died:\n${b.tail()}`);
      const a = keysSince(from).filter(([, c]) => c === qnum(KEY_A));
      return a.length > 0 && a[a.length - 1][0] === 'press';
    });
    await sleep(500);
    const a = keysSince(from).filter(([, c]) => c === qnum(KEY_A));
    console.log(`SYN_DROPPED: the VM saw ${a.length} KEY_A calls for 4001 key events sent`);
    expect(a.length).toBeLessThan(4001);
    expect(a.every(([k], i) => k === (i % 2 === 0 ? 'press' : 'release'))).toBe(true);
    expect(a[a.length - 1][0]).toBe('press');
  });

  it('releasing KEY_A afterwards releases it in the VM: nothing stuck', async () => {
    const at = peer.keys.length;
    await uinput.frame('kbd2', [EV_KEY, KEY_A, 0]);
    await waitFor('KEY_A release in the VM', 10_000, () => keysSince(at).some(([k, c]) => k === 'release' && c === qnum(KEY_A)));
  });
});

describe('all-keyboards / all-mice and hot-plug with udev (bridge as nobody in group input)', () => {
  let b: BridgeProcess;
  beforeAll(async () => {
    b = await startBridge(runArgs('all-keyboards', 'all-mice'), 'kbd1', { user: NOBODY, groups: [groupId('input')], env: { HOME: '/tmp' } });
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('all-keyboards opens every keyboard (the USB one too) and all-mice the mouse and the tablet', () => {
    for (const d of ['kbd1', 'kbd2', 'kbd4', 'mouse', 'tablet']) expect(b.log(), d).toContain(`input: using ${dev[d]}`);
    expect(b.log()).toMatch(/input: using \S+ \(QEMU QEMU USB Keyboard\)/);
  });

  it('a keyboard plugged in after the start is picked up once udev gave it to the input group', async () => {
    const at = b.log().length;
    dev.kbd5 = await uinput.create('kbd5', 'keyboard', 'kdev keyboard five', 0x1d6b, 0x0105);
    await b.waitLog(new RegExp(`input: using ${dev.kbd5}`), 20_000, at);
    const from = peer.keys.length;
    await tap('kbd5', KEY_E);
    await vmGotTap(KEY_E, from, 'hot-plugged', b);
  });

  it('removed and plugged in again: forwarded again', async () => {
    await uinput.destroy('kbd5');
    await sleep(500);
    const at = b.log().length;
    dev.kbd5 = await uinput.create('kbd5', 'keyboard', 'kdev keyboard five', 0x1d6b, 0x0105);
    await b.waitLog(new RegExp(`input: using ${dev.kbd5}`), 20_000, at);
    const from = peer.keys.length;
    await tap('kbd5', KEY_X);
    await vmGotTap(KEY_X, from, 're-plugged', b);
  });
});

describe('devices and doctor on the real devices, with and without the input group', () => {
  // four CLI runs at once: each costs 5-15 s of Node start-up under TCG
  let root: { status: number | null; out: string };
  let outsideDevices: typeof root;
  let outsideDoctor: typeof root;
  let inGroupDevices: typeof root;
  let inGroupDoctor: typeof root;
  beforeAll(async () => {
    const nobody = { user: NOBODY, env: { HOME: '/tmp' } };
    const input = { ...nobody, groups: [groupId('input')] };
    [root, outsideDevices, outsideDoctor, inGroupDevices, inGroupDoctor] = await Promise.all([
      runCli(['devices']),
      runCli(['devices'], nobody),
      runCli(['doctor'], nobody),
      runCli(['devices'], input),
      runCli(['doctor'], input),
    ]);
  });

  it('devices (root) lists the uinput devices by node and the USB keyboard by its by-id path', () => {
    expect(root.out).toContain('kdev keyboard one');
    expect(root.out).toContain(dev.kbd1);
    expect(root.out).toContain('kdev pen tablet');
    expect(root.out).toContain(`/dev/input/by-id/${usbKbd}`);
    expect(root.out).not.toContain('not readable');
  });

  it('as a user outside the input group, devices marks every device not readable', () => {
    expect(outsideDevices.out).toMatch(new RegExp(`${dev.kbd1}\\s+\\(not readable: see \`qemu-dbus-bridge doctor\`\\)`));
  });

  it('as a user outside the input group, doctor says none is readable and how to fix it', () => {
    expect(outsideDoctor.out).toMatch(/\/dev\/input access.*none of \d+ input devices is readable by this user/);
    expect(outsideDoctor.out).toContain('usermod -aG input');
  });

  it('in the input group, devices shows them readable and doctor has no complaint about /dev/input', () => {
    expect(inGroupDevices.out).toContain(dev.kbd1);
    expect(inGroupDevices.out).not.toContain('not readable');
    expect(inGroupDoctor.out).toMatch(/\/dev\/input access/);
    expect(inGroupDoctor.out).not.toMatch(/none of \d+ input devices is readable/);
  });
});

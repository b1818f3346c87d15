// Kernel tier, input group (runs INSIDE the guest, as root, udev running; test/kernel/input.test.ts
// boots it): the bridge's real CLI (`qemu-dbus-bridge run --input ...`) reads real evdev nodes of
// uinput devices (scripts/kernel-vm/guest/uinput-devices.py) and QEMU's USB keyboard, and forwards
// to the project's fake QEMU peer (test/fakes/qemu-peer.ts) on a private bus in the guest, which
// records the Keyboard/Mouse calls that arrive. One bridge per behaviour group; devices come and go
// through the factory.
import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeQemuPeer } from '../../fakes/qemu-peer';
import { startDbusDaemon, type DbusDaemon } from '../../harness/dbus';
import { sleep, waitFor } from '../../harness/procs';
import { EV_KEY } from '../../../src/input/events';
import { BridgeProcess, UinputFactory } from './tools';

const KEY_B = 48;
const KEY_C = 46;
const KEY_D = 32;
const KEY_E = 18;
const KEY_F12 = 88;
// the linux codes used here have the same number as their QEMU qnum (PC scancode set 1)
const qnum = (linuxKey: number): number => linuxKey;
const VM = 'kdev';
const WIDTH = 320;
const HEIGHT = 240;

let bus: DbusDaemon;
let peer: FakeQemuPeer;
let uinput: UinputFactory;
const dev: Record<string, string> = {};

beforeAll(async () => {
  bus = await startDbusDaemon({ allowAnyUser: true });
  peer = await FakeQemuPeer.start({ busAddress: bus.address, name: VM, width: WIDTH, height: HEIGHT });
  uinput = await UinputFactory.start();
  dev.kbd1 = await uinput.create('kbd1', 'keyboard', 'kdev keyboard one', 0x1d6b, 0x0101);
  dev.kbd2 = await uinput.create('kbd2', 'keyboard', 'kdev keyboard two', 0x1d6b, 0x0102);
  dev.kbd3 = await uinput.create('kbd3', 'keyboard', 'kdev keyboard three', 0x1d6b, 0x0103);
  dev.kbd4 = await uinput.create('kbd4', 'keyboard', 'kdev keyboard four', 0x1d6b, 0x0104);
  dev.mouse = await uinput.create('mouse', 'hires-mouse', 'kdev hires mouse', 0x1d6b, 0x0201);
  dev.tablet = await uinput.create('tablet', 'tablet', 'kdev pen tablet', 0x1d6b, 0x0301);
  // udev has set the group (input, 0660) on every node before a check runs as another user
  await waitFor('udev to settle', 30_000, () => Object.values(dev).every((p) => (fs.statSync(p).mode & 0o060) === 0o060));
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

describe('--input selection (bridge as root)', () => {
  let b: BridgeProcess;
  beforeAll(async () => {
    b = await startBridge(runArgs(dev.kbd1, 'name:^kdev keyboard two$', 'id:1d6b:0103'), 'kbd1');
  });
  afterAll(async () => {
    await b?.stop();
  });

  it('a key press from a real evdev node reaches the VM and the bridge lives on (uv_poll callback has a HandleScope)', async () => {
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

  it('a device no rule matches is not opened and its keys do not reach the VM', async () => {
    const from = peer.keys.length;
    await tap('kbd4', KEY_E);
    await tap('kbd1', KEY_B); // a marker behind it on a selected device
    await vmGotTap(KEY_B, from, 'marker', b);
    expect(keysSince(from).filter(([, c]) => c === qnum(KEY_E))).toEqual([]);
    expect(b.log()).not.toContain(dev.kbd4);
  });
});

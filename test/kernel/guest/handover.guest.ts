// Kernel tier, hand-over group (runs INSIDE the guest, as root; test/kernel/handover.test.ts boots
// it): the grab-next hand-over (issue 18) on ONE real uinput keyboard. Two bridge CLIs with the same
// `--input` node and `--grab-next` hotkey publish on one session dbus-daemon and forward to two of
// the project's fake QEMU peers (VMs ho-a and ho-b, each on its own VM bus), which record the
// Keyboard calls that arrive. A plain reader of the same node stands for the host's compositor.
//
// What only real devices show (the host-side handover.test.ts uses replay FIFOs, which cannot be
// grabbed): EVIOCGRAB moves with the input - exactly one bridge holds it (a third program's
// EVIOCGRAB gets EBUSY, the plain reader sees nothing typed), and it is free while the host has
// the input; a hand-over lets go of the grab BEFORE the next bridge takes it (swapped, the next
// bridge's EVIOCGRAB fails with EBUSY, it forwards ungrabbed and the plain reader sees its keys);
// each VM gets exactly its own keys with their releases and no key of the hotkey (a Ctrl held
// alone still arrives, after the forwarder's hold-back); SIGKILL of the
// holder ends its grab (the kernel drops it with the file). ho-a runs with --ring-order 1, so the
// ring is host -> ho-b -> ho-a -> host against the names: both bridges order it by the numbers
// they read off the session bus.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeQemuPeer } from '../../fakes/qemu-peer';
import { startDbusDaemon, type DbusDaemon } from '../../harness/dbus';
import { HOTKEY, HOTKEY_CODES, KEY_A, KEY_B, KEY_H, KEY_K, KEY_LEFTCTRL } from '../../harness/handover';
import { sleep } from '../../harness/procs';
import { EV_KEY } from '../../../src/input/events';
import { StatusClient } from '../../../src/service/status-bus/client';
import type { InputCounters } from '../../../src/service/route';
import { HostReader, UinputFactory, grabFromOutside, startBridge, type BridgeProcess } from './tools';

const VMS = ['ho-a', 'ho-b'] as const;
type Vm = (typeof VMS)[number];
const RING_ORDER: Record<Vm, string> = { 'ho-a': '1', 'ho-b': '0' };

let session: DbusDaemon;
const vmBus: Partial<Record<Vm, DbusDaemon>> = {};
const peer: Partial<Record<Vm, FakeQemuPeer>> = {};
const bridge: Partial<Record<Vm, BridgeProcess>> = {};
let status: StatusClient;
let uinput: UinputFactory;
let kbd: string;
let host: HostReader;

beforeAll(async () => {
  const t0 = Date.now();
  const buses = await Promise.all([startDbusDaemon(), startDbusDaemon(), startDbusDaemon()]);
  [session, vmBus['ho-a'], vmBus['ho-b']] = buses;
  for (const vm of VMS) peer[vm] = await FakeQemuPeer.start({ busAddress: vmBus[vm]!.address, name: vm, width: 320, height: 240 });
  uinput = await UinputFactory.start();
  kbd = await uinput.create('hk', 'keyboard', 'handover keyboard', 0x1d6b, 0x0181);
  host = new HostReader(kbd);
  for (const vm of VMS) {
    const args = ['run', '--address', vmBus[vm]!.address, '--vm', vm, '--audio', 'none', '--camera', 'none', '--input', kbd, '--grab-toggle', 'none', '--grab-next', HOTKEY, '--ring-order', RING_ORDER[vm]];
    bridge[vm] = startBridge(args, { env: { DBUS_SESSION_BUS_ADDRESS: session.address } });
  }
  status = await StatusClient.open(session.address);
  // grab_next set: both start with the input at the host, the keyboard open and not grabbed.
  for (const vm of VMS) {
    await bridge[vm]!.waitLog(new RegExp(`input: using ${kbd}`), 120_000);
    await bridge[vm]!.until(`bridge ${vm} on the session bus with the keyboard at the host`, 60_000, async () => {
      const c = await input(vm);
      return c?.forwardTo === 'host' && c.devices.length === 1;
    }, 200);
  }
  console.log(`handover (kernel): two bridges up in ${Date.now() - t0} ms`);
}, 240_000);

afterAll(async () => {
  await Promise.all(VMS.map((vm) => bridge[vm]?.stop() ?? Promise.resolve()));
  host?.close();
  await status?.close().catch(() => undefined);
  await uinput?.stop();
  for (const vm of VMS) peer[vm]?.bus.connection.end();
  await Promise.all([session, ...Object.values(vmBus)].map((b) => b?.stop()));
});

async function input(vm: Vm): Promise<InputCounters | undefined> {
  const s = await status.status(vm).catch(() => undefined);
  return s?.bridges[0]?.routes.find((r) => r.name === 'input')?.counters as InputCounters | undefined;
}

async function key(code: number, value: 0 | 1): Promise<void> {
  await uinput.frame('hk', [EV_KEY, code, value]);
}

async function tap(code: number): Promise<void> {
  await key(code, 1);
  await key(code, 0);
}

async function hotkey(): Promise<void> {
  for (const c of HOTKEY_CODES) await key(c, 1);
  for (const c of [...HOTKEY_CODES].reverse()) await key(c, 0);
}

/** Waits until every bridge still running has its input where `want` says (forwardTo and grabbed). */
async function waitHolder(what: string, holder: Vm | 'host'): Promise<void> {
  const alive = VMS.filter((vm) => bridge[vm]!.running);
  let last = '';
  await bridge[alive[0]]!.until(what, 30_000, async () => {
    const got = await Promise.all(alive.map(async (vm) => [vm, await input(vm)] as const));
    last = JSON.stringify(got.map(([vm, c]) => [vm, c?.forwardTo, c?.grabbed]));
    return got.every(([vm, c]) => c?.forwardTo === (vm === holder ? 'guest' : 'host') && c?.grabbed === (vm === holder));
  }, 200).catch((err: Error) => {
    throw new Error(`${err.message}; last [vm, forwardTo, grabbed]: ${last}; logs:\n${alive.map((vm) => `--- ${vm}\n${bridge[vm]!.tail(15)}`).join('\n')}`);
  });
}

/** The keys a VM got: ['press'|'release', qnum][] */
const keysOf = (vm: Vm): ['press' | 'release', number][] => peer[vm]!.keys.slice();

describe('grab-next on one real keyboard: EVIOCGRAB moves host -> ho-b -> ho-a -> host (--ring-order)', () => {
  it('from the host, the hotkey gives the keyboard to ho-b (first by ring order, not by name): it alone holds EVIOCGRAB, the host reader sees nothing typed', async () => {
    await hotkey();
    await waitHolder('ho-b to hold the keyboard', 'ho-b');
    expect(grabFromOutside(kbd), 'a third program trying EVIOCGRAB').toBe('EBUSY');
    const from = host.seen.length;
    await tap(KEY_B);
    await bridge['ho-b']!.until('ho-b to get B and its release', 20_000, () => keysOf('ho-b').some(([k, c]) => k === 'release' && c === KEY_B));
    expect(host.keys(KEY_B, from), 'the host reader while ho-b holds the grab').toEqual([]);
  });

  it('a key of the hotkey held alone (Ctrl) reaches ho-b by itself once the hold-back is over, no other event needed', async () => {
    const from = keysOf('ho-b').length;
    await key(KEY_LEFTCTRL, 1);
    const t0 = Date.now();
    await bridge['ho-b']!.until('ho-b to get Ctrl while it is still held', 10_000, () => keysOf('ho-b').slice(from).some(([k, c]) => k === 'press' && c === KEY_LEFTCTRL));
    console.log(`handover (kernel): held Ctrl reached ho-b after ${Date.now() - t0} ms`);
    await key(KEY_LEFTCTRL, 0);
    await bridge['ho-b']!.until('ho-b to get Ctrl released', 10_000, () => keysOf('ho-b').slice(from).some(([k, c]) => k === 'release' && c === KEY_LEFTCTRL));
  });

  it('the hotkey again: ho-b lets go of the grab before ho-a takes it (no EBUSY), ho-a alone gets the keys, the host reader nothing', async () => {
    await hotkey();
    await waitHolder('ho-a to hold the keyboard', 'ho-a');
    const from = host.seen.length;
    await tap(KEY_A);
    await bridge['ho-a']!.until('ho-a to get A and its release', 20_000, () => keysOf('ho-a').some(([k, c]) => k === 'release' && c === KEY_A));
    expect(host.keys(KEY_A, from), 'the host reader while ho-a holds the grab').toEqual([]);
    expect(grabFromOutside(kbd), 'a third program trying EVIOCGRAB').toBe('EBUSY');
    expect(bridge['ho-b']!.log()).toMatch(/handing the devices to VM 'ho-a'/);
    for (const vm of VMS) expect(bridge[vm]!.log(), `${vm}: no grab refused`).not.toMatch(/EBUSY/);
  });

  it('the hotkey a third time: ho-a, the last of the ring, gives the keyboard back to the host (free, the host reader sees typing)', async () => {
    await hotkey();
    await waitHolder('the host to have the keyboard', 'host');
    expect(grabFromOutside(kbd), 'a third program trying EVIOCGRAB').toBeUndefined();
    const from = host.seen.length;
    await tap(KEY_H);
    await bridge['ho-a']!.until('the host reader to see H', 10_000, () => host.keys(KEY_H, from).join() === '1,0');
    await sleep(500); // time for a VM to get H if one wrongly still forwarded
    expect(bridge['ho-a']!.log()).toMatch(/the devices go back to the host/);
  });

  it('each VM got exactly its own keys, each with its release, and no key of the hotkey', () => {
    // ho-b's Ctrl: the one held alone above, not one of the hotkey's
    expect(keysOf('ho-a')).toEqual([
      ['press', KEY_A],
      ['release', KEY_A],
    ]);
    expect(keysOf('ho-b')).toEqual([
      ['press', KEY_B],
      ['release', KEY_B],
      ['press', KEY_LEFTCTRL],
      ['release', KEY_LEFTCTRL],
    ]);
  });

  it('SIGKILL of the bridge holding the keyboard (K held) ends its grab: the device is free and the host reader sees the release', async () => {
    await hotkey();
    await waitHolder('ho-b to hold the keyboard again', 'ho-b');
    const from = host.seen.length;
    await key(KEY_K, 1);
    await bridge['ho-b']!.until('ho-b to get K', 20_000, () => keysOf('ho-b').some(([k, c]) => k === 'press' && c === KEY_K));
    bridge['ho-b']!.proc.kill('SIGKILL');
    const end = await bridge['ho-b']!.exited;
    expect(end.signal).toBe('SIGKILL');
    expect(grabFromOutside(kbd), 'a third program trying EVIOCGRAB after the kill').toBeUndefined();
    await key(KEY_K, 0);
    await bridge['ho-a']!.until('the host reader to see K released', 10_000, () => host.keys(KEY_K, from).includes(0));
    expect(host.keys(KEY_K, from), 'the host reader: K press hidden by the grab, its release seen').toEqual([0]);
    // ho-a stayed at the host: it neither took the keyboard nor got K
    expect(await input('ho-a')).toMatchObject({ forwardTo: 'host', grabbed: false });
    expect(keysOf('ho-a').filter(([, c]) => c === KEY_K)).toEqual([]);
  });
});

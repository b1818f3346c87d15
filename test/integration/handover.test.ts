// Hand-over between bridges (issue 18 item 1), on real parts started here: two QEMU TCG test
// guests (scenario `keys`: each logs every evdev event it gets) on one VM bus, one session
// dbus-daemon, and two `qemu-dbus-bridge run` processes (the bundled CLI) with the same
// --grab-next hotkey. The hotkey moves typing host -> ho-a -> ho-b -> host (the ring, by VM name);
// each guest logs exactly its own keys with their releases, no key of the hotkey, nothing typed
// while the host has the input; SIGKILL of the bridge holding the input leaves nothing pressed in
// its guest (QEMU's dead-man's switch) and the other bridge goes on alone. Once per QEMU of the
// matrix (7.2, 10.0), each with its own buses, guests and bridges.
//
// Why replay streams, and how they stand in for one keyboard: the host has no evdev device two
// bridges could share, so each bridge reads a replay FIFO, and the test writes the same stream
// (same bytes, same event times) to both - as one keyboard reaches every reader. The ring is the
// bridges forwarding the same devices (the same paths), so each bridge runs in a private mount
// namespace (unshare) where its own FIFO is bind-mounted on ONE common path: both report the same
// device, as two bridges of one keyboard do. A replay stream cannot be grabbed (EVIOCGRAB), so
// every bridge sees every key, also while another holds the input: the hand-over acts on the
// forwarding mode (forwardTo), which is what decides whether keys reach a guest; with real
// devices the grab follows that mode (and only the holder even sees the hotkey).
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EV_KEY, encodeEvents } from '../../src/input/events';
import { EventScript } from '../../src/input/replay-writer';
import { StatusClient } from '../../src/service/status-bus/client';
import type { InputCounters } from '../../src/service/route';
import { startBridgeProcess, type BridgeProcess } from '../harness/bridge-process';
import { bundleCli } from '../harness/cli';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { HOTKEY, KEY_A, KEY_B, KEY_H, KEY_J, KEY_K, KEY_LEFTCTRL, KEY_N, KEY_RIGHTALT } from '../harness/handover';
import { sleep, tempDir, waitFor } from '../harness/procs';
import { parseInputEvents, startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX, type QemuTarget } from '../harness/qemu-targets';

// One frame every 25 ms, as in input-guest.test.ts: a TCG guest logging to its serial port would
// lose events to a burst.
const FRAME_MS = 25;

// One QEMU version's rig at a time (the describe blocks run one after the other): set up by
// setUp(), emptied by tearDown().
let cli: string;
let dir: string;
let vmBus: DbusDaemon;
let session: DbusDaemon;
let status: StatusClient;
const guests: Record<string, Guest> = {};
const kbd: Record<string, string> = {};
const bridges: Record<string, BridgeProcess> = {};
const writers: Record<string, fs.promises.FileHandle> = {};
let stamp = 1_700_000_000_000_000; // µs: every hotkey press gets its own event time

function startBridge(vm: string, fifo: string, common: string): void {
  const args = ['run', '--address', vmBus.address, '--vm', vm, '--audio', 'none', '--camera', 'none', '--input-replay', common, '--grab-toggle', 'none', '--grab-next', HOTKEY];
  bridges[vm] = startBridgeProcess(args, {
    cli,
    env: { DBUS_SESSION_BUS_ADDRESS: session.address },
    // its own FIFO on the common path, in a mount namespace of its own; sh execs node: the PID is the bridge's
    wrap: (cmd, argv) => ['unshare', ['--mount', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', fifo, common, cmd, ...argv]],
  });
}

/** Writes the script frame by frame to the FIFO of every bridge in `to` (the same bytes to each). */
async function send(script: EventScript, to = Object.keys(writers)): Promise<void> {
  for (const frame of script.frames()) {
    const bytes = encodeEvents(frame);
    for (const vm of to) await writers[vm].write(bytes);
    await sleep(FRAME_MS);
  }
}

/** The grab-next hotkey, every event stamped with one new press time. */
async function hotkey(to?: string[]): Promise<void> {
  const t = (stamp += 1_000_000);
  const s = new EventScript().key(KEY_LEFTCTRL, 1).key(KEY_RIGHTALT, 1).key(KEY_N, 1).key(KEY_N, 0).key(KEY_RIGHTALT, 0).key(KEY_LEFTCTRL, 0);
  for (const e of s.events) e.timeUs = t;
  await send(s, to);
}

async function input(vm: string): Promise<InputCounters | undefined> {
  const s = await status.status(vm).catch(() => undefined);
  return s?.bridges[0]?.routes.find((r) => r.name === 'input')?.counters as InputCounters | undefined;
}

/** Waits until each named bridge forwards to `guest` or `host`. */
async function waitModes(what: string, want: Record<string, 'guest' | 'host'>): Promise<void> {
  let last = '';
  await waitFor(what, 20_000, async () => {
    const got: Record<string, string | undefined> = {};
    for (const vm of Object.keys(want)) got[vm] = (await input(vm))?.forwardTo;
    last = JSON.stringify(got);
    return Object.entries(want).every(([vm, m]) => got[vm] === m);
  }, 200).catch((err: Error) => {
    throw new Error(`${err.message}; last: ${last}`);
  });
}

/** Key presses and releases (no autorepeat) the guest's virtio keyboard logged. */
const keysOf = (vm: string): Array<[number, number]> =>
  parseInputEvents(guests[vm].serial())
    .filter((e) => e.device === kbd[vm] && e.type === EV_KEY && e.value !== 2)
    .map((e) => [e.code, e.value]);

const typed = (code: number) => new EventScript().key(code, 1).key(code, 0);

beforeAll(() => {
  cli = bundleCli('handover');
});
afterAll(() => {
  if (cli) fs.rmSync(path.dirname(cli), { recursive: true, force: true });
});

/** Two `keys` guests of this QEMU on a VM bus, a session bus, two bridges with the input at the host. */
async function setUp(qemu: QemuTarget): Promise<void> {
  const t0 = Date.now();
  dir = tempDir(`handover-${qemu.version}`);
  [vmBus, session] = await Promise.all([startDbusDaemon(), startDbusDaemon()]);
  const [ga, gb] = await Promise.all([
    startGuest({ qemu, scenario: 'keys', busAddress: vmBus.address, name: 'ho-a' }),
    startGuest({ qemu, scenario: 'keys', busAddress: vmBus.address, name: 'ho-b' }),
  ]);
  guests['ho-a'] = ga;
  guests['ho-b'] = gb;
  status = await StatusClient.open(session.address);
  const common = path.join(dir, 'keyboard');
  fs.writeFileSync(common, ''); // the mount point each bridge's own FIFO is bound on
  for (const vm of ['ho-a', 'ho-b']) {
    const fifo = path.join(dir, `${vm}.fifo`);
    await new Promise<void>((r, j) => execFile('mkfifo', [fifo], (e) => (e ? j(e) : r())));
    startBridge(vm, fifo, common);
  }
  for (const vm of ['ho-a', 'ho-b']) {
    await guests[vm].waitForSerial(/MARK keys-ready/, 120_000);
    kbd[vm] = (await guests[vm].waitForSerial(/input (event\d+) name='QEMU Virtio Keyboard'/, 10_000))[1];
  }
  // Each bridge opens its FIFO once attached; opening the writing end waits for that.
  // A bridge that could not start (unshare needs root for its mount namespace) fails here with its log.
  for (const vm of ['ho-a', 'ho-b']) {
    const ended = bridges[vm].exited.then((e) => {
      throw new Error(`bridge ${vm} ended (${e.signal ?? e.code}) before reading its stream: ${bridges[vm].log()}`);
    });
    writers[vm] = await Promise.race([fs.promises.open(path.join(dir, `${vm}.fifo`), 'w'), ended]);
  }
  // grab_next set: both start with the input at the host.
  await waitModes('both bridges up, input at the host', { 'ho-a': 'host', 'ho-b': 'host' });
  for (const vm of ['ho-a', 'ho-b']) expect((await input(vm))!.devices).toEqual([common]);
  console.log(`handover (QEMU ${qemu.version}): setup ${Date.now() - t0} ms`);
}

async function tearDown(): Promise<void> {
  for (const w of Object.values(writers)) await w.close().catch(() => undefined);
  for (const b of Object.values(bridges)) b.kill('SIGKILL');
  await status?.close().catch(() => undefined);
  await Promise.all(Object.values(guests).map((g) => g.stop()));
  await Promise.all([vmBus?.stop(), session?.stop()]);
  for (const m of [guests, kbd, bridges, writers]) for (const k of Object.keys(m)) delete m[k];
  fs.rmSync(dir, { recursive: true, force: true });
}

/** On failure, both bridges' logs say what they saw. */
async function withLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    for (const [vm, b] of Object.entries(bridges)) console.log(`bridge ${vm} log:\n${b.log()}`);
    throw err;
  }
}

describe.each(QEMU_MATRIX)('grab-next moves one keyboard between two VMs (QEMU %s)', (version, qemu) => {
  let t0 = 0;
  beforeAll(() => {
    t0 = Date.now();
    return setUp(qemu);
  }, 180_000);
  afterAll(async () => {
    await tearDown();
    console.log(`handover (QEMU ${version}): ${Date.now() - t0} ms in all`);
  });

  it('host -> ho-a -> ho-b -> host: each guest logs exactly its own keys with their releases, no hotkey key', () =>
    withLogs(async () => {
      await send(typed(KEY_H)); // at the host: no guest gets it
      await hotkey();
      await waitModes('ho-a first in the ring takes the input', { 'ho-a': 'guest', 'ho-b': 'host' });
      await send(typed(KEY_A));
      await waitFor('ho-a logged A up', 30_000, () => keysOf('ho-a').some(([c, v]) => c === KEY_A && v === 0));

      await hotkey();
      await waitModes('ho-a hands over to ho-b', { 'ho-a': 'host', 'ho-b': 'guest' });
      await send(typed(KEY_B));
      await waitFor('ho-b logged B up', 30_000, () => keysOf('ho-b').some(([c, v]) => c === KEY_B && v === 0));

      await hotkey();
      await waitModes('ho-b, last in the ring, gives the input back to the host', { 'ho-a': 'host', 'ho-b': 'host' });
      await send(typed(KEY_H));
      // A key the guests would log by now if one got it: typed after the hand-over, ends the check.
      await sleep(2000);
      expect(keysOf('ho-a')).toEqual([
        [KEY_A, 1],
        [KEY_A, 0],
      ]);
      expect(keysOf('ho-b')).toEqual([
        [KEY_B, 1],
        [KEY_B, 0],
      ]);
      expect(bridges['ho-a'].log()).toMatch(/handing the devices to VM 'ho-b'/);
      expect(bridges['ho-b'].log()).toMatch(/the devices go back to the host/);
    }),
  90_000);

  it("SIGKILL of the bridge holding the input leaves nothing pressed; the other bridge goes on alone", () =>
    withLogs(async () => {
      await hotkey();
      await waitModes('ho-a takes the input again', { 'ho-a': 'guest', 'ho-b': 'host' });
      await send(new EventScript().key(KEY_K, 1));
      await waitFor('ho-a logged K down', 30_000, () => keysOf('ho-a').some(([c, v]) => c === KEY_K && v === 1));
      bridges['ho-a'].kill('SIGKILL');
      await bridges['ho-a'].exited;
      await writers['ho-a'].close().catch(() => undefined);
      delete writers['ho-a']; // its reader is gone (writing would raise EPIPE)
      await waitFor('QEMU lifted K in ho-a', 30_000, () => keysOf('ho-a').some(([c, v]) => c === KEY_K && v === 0));
      await send(new EventScript().key(KEY_K, 0)); // the release reaches ho-b, which held nothing

      // ho-b is alone in the ring now: from the host it takes the input, and typing reaches it.
      await hotkey();
      await waitModes('ho-b takes the input', { 'ho-b': 'guest' });
      await send(typed(KEY_J));
      await waitFor('ho-b logged J up', 30_000, () => keysOf('ho-b').some(([c, v]) => c === KEY_J && v === 0));
      expect(keysOf('ho-b').filter(([c]) => c === KEY_K)).toEqual([]);
      expect(keysOf('ho-a').filter(([c]) => c === KEY_J)).toEqual([]);
      expect(bridges['ho-b'].running).toBe(true);
    }),
  60_000);
});

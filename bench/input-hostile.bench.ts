// Hostile input values against the real D-Bus path: one frame carrying a huge REL_WHEEL value,
// and a device that never sends SYN_REPORT. InputForwarder -> src/qemu Keyboard/Mouse proxies ->
// a private dbus-daemon -> the QEMU stand-in of input.bench.ts (separate process).
//
// Rows: how long Node's loop is blocked by handleEvents() for that one frame (what also holds up
// QEMU at its next synchronous audio Read), against a one-notch frame measured in the same run;
// and how much the RSS grows until every call it issued was answered.
import * as path from 'path';
import { performance } from 'perf_hooks';
import { BenchContext, BenchRow } from './lib';
import { PEER_JS, exited, runNode } from './input.bench';
import { startDbusDaemon } from '../test/harness/dbus';
import { waitFor } from '../test/harness/procs';
import { openBus } from '../src/qemu/bus';
import { QemuConsole } from '../src/qemu/console';
import { createDbusVmInput } from '../src/input/dbus-vm-input';
import { EV_KEY, EV_REL, EV_SYN, REL_WHEEL, SYN_REPORT } from '../src/input/events';
import { InputForwarder } from '../src/input/forwarder';
import type { VmInput } from '../src/input/vm-input';

const mb = (n: number): number => n / (1024 * 1024);

/** Feeds one batch to a fresh forwarder; returns the blocked time and the RSS growth until settled. */
async function oneBatch(vm: VmInput, events: Array<{ type: number; code: number; value: number }>): Promise<{ blockedMs: number; rssMb: number; settledMs: number }> {
  const fw = new InputForwarder(vm, { hotkey: null });
  fw.addDevice('hostile');
  const batch = events.map((e) => ({ ...e, timeUs: 0 }));
  global.gc?.();
  const rss0 = process.memoryUsage.rss();
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const t0 = performance.now();
  for (let i = 0; i < batch.length; i += 256) fw.handleEvents('hostile', batch.slice(i, i + 256)); // reads of 256, like EvdevSource
  const blockedMs = performance.now() - t0;
  peak = Math.max(peak, process.memoryUsage.rss());
  await fw.settled();
  const settledMs = performance.now() - t0;
  clearInterval(sampler);
  fw.dispose();
  return { blockedMs, rssMb: mb(peak - rss0), settledMs };
}

/** The run with the median blocked time of 5 (a loaded 2-core machine: single runs are noise). */
async function median(once: () => ReturnType<typeof oneBatch>): ReturnType<typeof oneBatch> {
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push(await once());
  runs.sort((a, b) => a.blockedMs - b.blockedMs);
  return runs[2];
}

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const bus = await startDbusDaemon();
  const dbusNative = path.dirname(require.resolve('dbus-native/package.json'));
  const peer = runNode(PEER_JS, [dbusNative, bus.address, '1', '/dev/null'], 'pipe');
  let peerLines = '';
  peer.stdout!.on('data', (d: Buffer) => (peerLines += d.toString()));
  try {
    const peerName = (await waitFor('the QEMU stand-in on the bus', 20_000, () => /READY (\S+)/.exec(peerLines)))![1];
    const conn = await openBus(bus.address);
    const vm = await createDbusVmInput(new QemuConsole({ bus: conn.bus, destination: peerName, canPassFds: false }, 0));
    const rows: BenchRow[] = [];
    const SYN = { type: EV_SYN, code: SYN_REPORT, value: 0 };
    const base = await median(() => oneBatch(vm, [{ type: EV_REL, code: REL_WHEEL, value: 1 }, SYN]));
    ctx.log(`one notch: blocked ${base.blockedMs.toFixed(2)} ms`);
    for (const value of [100_000, 1_000_000, 2_147_483_647]) {
      const r = await median(() => oneBatch(vm, [{ type: EV_REL, code: REL_WHEEL, value }, SYN]));
      ctx.log(`REL_WHEEL ${value}: blocked ${r.blockedMs.toFixed(2)} ms, RSS +${r.rssMb.toFixed(1)} MB, settled after ${r.settledMs.toFixed(0)} ms`);
      rows.push({ name: `REL_WHEEL ${value} in one frame: Node blocked`, value: r.blockedMs, unit: 'ms', baseline: { name: 'one-notch frame', value: base.blockedMs }, better: 'lower' });
      rows.push({ name: `REL_WHEEL ${value} in one frame: RSS growth`, value: r.rssMb, unit: 'MB', better: 'lower', note: `all calls answered after ${r.settledMs.toFixed(0)} ms` });
    }
    // A device that never ends its frame: 1 000 000 key events and no SYN_REPORT, in 256-event reads.
    const noSyn = Array.from({ length: 1_000_000 }, (_, i) => ({ type: EV_KEY, code: 30 + (i % 20), value: i & 1 }));
    const r = await oneBatch(vm, noSyn);
    rows.push({ name: '1 000 000 key events without SYN_REPORT: Node blocked', value: r.blockedMs, unit: 'ms', baseline: { name: 'one-notch frame', value: base.blockedMs }, better: 'lower' });
    rows.push({ name: '1 000 000 key events without SYN_REPORT: RSS growth', value: r.rssMb, unit: 'MB', better: 'lower' });
    await vm.close();
    await conn.close();
    return rows;
  } finally {
    peer.stdin!.end();
    await exited(peer);
    await bus.stop();
  }
}

// Input route speed: replay FIFO -> InputBridge -> real src/qemu Keyboard/Mouse proxies -> a
// private dbus-daemon -> a minimal QEMU stand-in (separate process, dbus-native) that timestamps
// every Mouse.RelMotion it receives.
//
// Rows, each with a baseline measured in the same run:
// - raw FIFO read rate (struct input_event records, plain net.Socket) vs the bridge forwarding
//   flat out to the peer;
// - at 1 kHz and 8 kHz mouse report rates (one REL_X+REL_Y+SYN frame per report, paced by a
//   busy-waiting writer process): added latency p50/p99 from the moment the bridge read the event
//   to the moment the peer received the D-Bus call, against the FIFO transit latency of the very
//   same events (writer -> read); and drops (frames written - calls received), which must be 0.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { BenchContext, BenchRow, percentile } from './lib';
import { startDbusDaemon } from '../test/harness/dbus';
import { tempDir, waitFor } from '../test/harness/procs';
import { openBus } from '../src/qemu/bus';
import { QemuConsole } from '../src/qemu/console';
import { InputBridge } from '../src/input/bridge';
import { StreamSource } from '../src/input/device';
import { createDbusVmInput } from '../src/input/dbus-vm-input';
import { EV_REL, InputEventDecoder, REL_Y } from '../src/input/events';

const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;

// The QEMU stand-in: org.qemu with Console_0 {Console, Keyboard, Mouse}; RelMotion(dx, id) stores
// its receive time at times[id]. Plain JS so it runs without compilation.
export const PEER_JS = `
const dbus = require(process.argv[2]);
const fs = require('fs');
const { performance } = require('perf_hooks');
const max = Number(process.argv[4]);
const times = new Float64Array(max + 1);
let received = 0;
const bus = dbus.createClient({ busAddress: process.argv[3] });
const props = (o) => Object.fromEntries(Object.entries(o).map(([k, t]) => [k, { type: t, access: 'read' }]));
const c = '/org/qemu/Display1/Console_0';
bus.exportInterface({ Label: 'VGA', Head: 0, Type: 'Graphic', Width: 1280, Height: 800, DeviceAddress: 'pci/0000/02.0', RegisterListener: () => null, SetUIInfo: () => null }, c,
  { name: 'org.qemu.Display1.Console', methods: { RegisterListener: ['h', '', [], []], SetUIInfo: ['qqiiuu', '', [], []] }, properties: props({ Label: 's', Head: 'u', Type: 's', Width: 'u', Height: 'u', DeviceAddress: 's' }) });
bus.exportInterface({ Modifiers: 0, Press: () => null, Release: () => null }, c,
  { name: 'org.qemu.Display1.Keyboard', methods: { Press: ['u', '', [], []], Release: ['u', '', [], []] }, properties: props({ Modifiers: 'u' }) });
bus.exportInterface({ IsAbsolute: false, Press: () => null, Release: () => null, SetAbsPosition: () => null,
  RelMotion: (dx, id) => { const t = (performance.timeOrigin + performance.now()) * 1000; if (id > 0 && id <= max && times[id] === 0) { times[id] = t; received++; } return null; } }, c,
  { name: 'org.qemu.Display1.Mouse', methods: { Press: ['u', '', [], []], Release: ['u', '', [], []], SetAbsPosition: ['uu', '', [], []], RelMotion: ['ii', '', [], []] }, properties: props({ IsAbsolute: 'b' }) });
bus.requestName('org.qemu', 0, (err) => {
  if (err) { console.error(err); process.exit(1); }
  process.stdout.write('READY ' + bus.name + '\\n');
});
process.stdin.on('data', (d) => { if (String(d).includes('count')) process.stdout.write('COUNT ' + received + '\\n'); });
process.stdin.on('end', () => { fs.writeFileSync(process.argv[5], Buffer.from(times.buffer)); process.exit(0); });
`;

// Writes `frames` mouse reports to a FIFO: REL_X 1, REL_Y <frame id>, SYN, each stamped with the
// writer's clock; paced at `hz` by busy-waiting (0 = flat out, in 64 KB writes).
const WRITER_JS = `
const fs = require('fs');
const { performance } = require('perf_hooks');
const [fifo, framesS, hzS, firstS] = process.argv.slice(2);
const frames = Number(framesS), hz = Number(hzS), first = Number(firstS || 1), end = first + frames;
const fd = fs.openSync(fifo, 'w');
const now = () => (performance.timeOrigin + performance.now()) * 1000;
function frame(buf, off, id, t) {
  const sec = Math.floor(t / 1e6), usec = Math.round(t - sec * 1e6);
  for (const [type, code, value] of [[2, 0, 1], [2, 1, id], [0, 0, 0]]) {
    buf.writeBigInt64LE(BigInt(sec), off); buf.writeBigInt64LE(BigInt(usec), off + 8);
    buf.writeUInt16LE(type, off + 16); buf.writeUInt16LE(code, off + 18); buf.writeInt32LE(value, off + 20); off += 24;
  }
  return off;
}
if (hz === 0) {
  const per = Math.floor(65536 / 72);
  const buf = Buffer.alloc(per * 72);
  for (let id = first; id < end; ) {
    let off = 0, n = 0;
    const t = now();
    while (n < per && id < end) { off = frame(buf, off, id++, t); n++; }
    fs.writeSync(fd, buf, 0, off);
  }
} else {
  const buf = Buffer.alloc(72);
  const period = 1e6 / hz;
  const start = now();
  for (let id = first; id < end; id++) {
    const due = start + (id - first) * period;
    while (now() < due) {}
    frame(buf, 0, id, now());
    fs.writeSync(fd, buf, 0, 72);
  }
}
fs.closeSync(fd);
`;

export function runNode(script: string, args: string[], stdio: 'pipe' | 'ignore' = 'ignore'): ChildProcess {
  // `node -e` puts the first argument at argv[1]: a placeholder keeps the scripts' argv[2..] usual
  return spawn(process.execPath, ['-e', script, '--', 'input-bench', ...args], { stdio: [stdio, stdio, 'inherit'] });
}

export function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null) resolve(p.exitCode);
    else p.once('exit', (code) => resolve(code));
  });
}

/** Baseline: a plain FIFO reader decoding struct input_event records, writer flat out. */
async function rawFifoRate(dir: string, frames: number): Promise<number> {
  const fifo = path.join(dir, 'raw.fifo');
  fs.rmSync(fifo, { force: true });
  await exited(spawn('mkfifo', [fifo]));
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  const sock = new net.Socket({ fd, readable: true, writable: false });
  const decoder = new InputEventDecoder();
  const want = frames * 3;
  let events = 0;
  let t0 = 0;
  let t1 = 0;
  const done = new Promise<void>((resolve) => {
    sock.on('data', (chunk: Buffer) => {
      if (t0 === 0) t0 = nowUs();
      events += decoder.push(chunk).length;
      if (events >= want) {
        t1 = nowUs();
        resolve();
      }
    });
  });
  const w = runNode(WRITER_JS, [fifo, String(frames), '0', '1']);
  await done;
  await exited(w);
  sock.destroy();
  return (events / (t1 - t0)) * 1e6;
}

interface RunResult {
  firstId: number;
  /** frame id -> bridge read time / writer time, µs */
  readAt: Map<number, number>;
  writtenAt: Map<number, number>;
  frames: number;
  received: number;
  /** read -> peer, µs */
  added: number[];
  /** writer -> read (FIFO transit), µs */
  transit: number[];
  /** input events forwarded per second, first read to last receive */
  eventsPerSecond: number;
}

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const dir = tempDir('input-bench');
  const bus = await startDbusDaemon();
  const peerOut = path.join(dir, 'peer-times.bin');
  const maxFrames = 200_000;
  const dbusNative = path.dirname(require.resolve('dbus-native/package.json'));
  const peer = runNode(PEER_JS, [dbusNative, bus.address, String(maxFrames), peerOut], 'pipe');
  let peerLines = '';
  peer.stdout!.on('data', (d: Buffer) => (peerLines += d.toString()));
  const bridges: InputBridge[] = [];
  try {
    const peerName = (await waitFor('the QEMU stand-in on the bus', 20_000, () => /READY (\S+)/.exec(peerLines)))![1];
    const conn = await openBus(bus.address);
    const console0 = new QemuConsole({ bus: conn.bus, destination: peerName, canPassFds: false }, 0);
    const vmInput = await createDbusVmInput(console0);

    const rows: BenchRow[] = [];
    const rawFrames = Math.max(20_000, Math.round(100_000 * ctx.durationScale));
    const raw = await rawFifoRate(dir, rawFrames);
    ctx.log(`raw FIFO read: ${raw.toFixed(0)} events/s`);

    const results: Array<{ label: string; hz: number; r: RunResult }> = [];
    const plan: Array<{ label: string; hz: number; seconds: number }> = [
      { label: 'flat', hz: 0, seconds: 0 },
      { label: '1kHz', hz: 1000, seconds: 5 },
      { label: '8kHz', hz: 8000, seconds: 5 },
    ];
    let nextId = 1;
    for (const p of plan) {
      const frames = p.hz === 0 ? Math.max(10_000, Math.round(40_000 * ctx.durationScale)) : Math.round(p.hz * p.seconds * Math.max(ctx.durationScale, 0.4));
      const r = await runRange(p.label, frames, p.hz, nextId);
      nextId += frames;
      results.push({ label: p.label, hz: p.hz, r });
      ctx.log(`${p.label}: ${r.received}/${r.frames} frames received`);
    }

    // Receive times, written by the peer when its stdin ends.
    peer.stdin!.end();
    await exited(peer);
    const peerTimes = new Float64Array(fs.readFileSync(peerOut).buffer.slice(0));
    for (const { r } of results) {
      const first = r.firstId;
      let lastRecv = 0;
      let firstRead = Infinity;
      for (let id = first; id < first + r.frames; id++) {
        const tr = r.readAt.get(id);
        const tw = r.writtenAt.get(id);
        const tp = peerTimes[id];
        if (tr === undefined || tp === 0) continue;
        r.added.push(tp - tr);
        if (tw !== undefined) r.transit.push(tr - tw);
        lastRecv = Math.max(lastRecv, tp);
        firstRead = Math.min(firstRead, tr);
      }
      r.eventsPerSecond = ((r.added.length * 3) / (lastRecv - firstRead)) * 1e6;
      r.added.sort((a, b) => a - b);
      r.transit.sort((a, b) => a - b);
    }

    for (const { label, hz, r } of results) {
      if (hz === 0) {
        rows.push({
          name: 'forwarded flat out (FIFO -> bridge -> D-Bus peer)',
          value: r.eventsPerSecond,
          unit: 'events/s',
          baseline: { name: 'raw FIFO read', value: raw },
          better: 'higher',
          note: `${r.received}/${r.frames} frames (3 events each) reached the peer`,
        });
        continue;
      }
      const p50 = percentile(r.added, 50) / 1000;
      const p99 = percentile(r.added, 99) / 1000;
      const t50 = percentile(r.transit, 50) / 1000;
      const t99 = percentile(r.transit, 99) / 1000;
      rows.push({ name: `${label} mouse: events/s sustained`, value: r.eventsPerSecond, unit: 'events/s', baseline: { name: 'raw FIFO read', value: raw }, better: 'higher' });
      rows.push({ name: `${label} mouse: added latency p50 (read -> D-Bus call received)`, value: p50, unit: 'ms', baseline: { name: 'FIFO transit p50 (write -> read)', value: t50 }, better: 'lower' });
      rows.push({ name: `${label} mouse: added latency p99`, value: p99, unit: 'ms', baseline: { name: 'FIFO transit p99', value: t99 }, better: 'lower' });
      rows.push({
        name: `${label} mouse: dropped reports`,
        value: r.frames - r.received,
        unit: 'frames',
        baseline: { name: 'frames written', value: r.frames },
        better: 'lower',
        note: r.frames === r.received ? 'zero drops' : `DROPS: ${r.frames - r.received} of ${r.frames}`,
      });
    }
    await vmInput.close();
    await conn.close();
    return rows;

    async function runRange(label: string, frames: number, hz: number, firstId: number): Promise<RunResult> {
      const fifo = path.join(dir, `${label}.fifo`);
      await exited(spawn('mkfifo', [fifo]));
      const readMap = new Map<number, number>();
      const writtenMap = new Map<number, number>();
      const open = (p: string) => {
        const s = new StreamSource(p);
        const start = s.start.bind(s);
        s.start = (h) =>
          start({
            onEvents: (evs) => {
              const t = nowUs();
              for (const e of evs) {
                if (e.type === EV_REL && e.code === REL_Y) {
                  readMap.set(e.value, t);
                  writtenMap.set(e.value, e.timeUs);
                }
              }
              h.onEvents(evs);
            },
            onEnd: h.onEnd,
          });
        return s;
      };
      const bridge = new InputBridge({ replay: [fifo], grabToggle: 'none', watcher: { open } });
      bridges.push(bridge);
      bridge.setVm(vmInput);
      bridge.start();
      const w = runNode(WRITER_JS, [fifo, String(frames), String(hz), String(firstId)]);
      await exited(w);
      let received = 0;
      let last = -1;
      let stable = 0;
      const countBefore = firstId - 1;
      while (stable < 20) {
        peerLines = '';
        peer.stdin!.write('count\n');
        received = Number((await waitFor('peer count', 10_000, () => /COUNT (\d+)/.exec(peerLines)))![1]) - countBefore;
        if (received >= frames) break;
        stable = received === last ? stable + 1 : 0;
        last = received;
        await new Promise((r) => setTimeout(r, 100));
      }
      await bridge.stop();
      fs.rmSync(fifo, { force: true });
      return { frames, received, added: [], transit: [], eventsPerSecond: 0, firstId, readAt: readMap, writtenAt: writtenMap };
    }
  } finally {
    for (const b of bridges) await b.stop().catch(() => undefined);
    if (peer.exitCode === null) peer.kill('SIGKILL');
    await bus.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}


// The listener fuzzer: the real bridge (`qemu-dbus-bridge run`, a child process) attached to the
// fake QEMU peer on a private dbus-daemon, with a private PipeWire for the speaker, the microphone
// and the camera node. The fake's side of each peer-to-peer listener connection (console, audio
// out, audio in) then makes the seeded calls of calls.ts, the three interfaces at once, as a
// hostile QEMU could. Checked: the bridge never exits, every call that wants an answer gets one
// (reply or D-Bus error) within CALL_DEADLINE_MS, RSS stays bounded, the log stays short (every
// failure is told once), and afterwards a normal frame reaches the camera and a normal tone the
// sink. Used by test/integration/fuzz-listeners.test.ts (short) and `npm run fuzz` (long).
import * as fs from 'fs';
import * as path from 'path';
import { cameraNodeName } from '../../../src/camera/sinks/pipewire';
import { dbusErrorCode } from '../../../src/qemu/dbus-errors';
import { FakeQemuPeer, type FakeListenerPeer } from '../../fakes/qemu-peer';
import { pcmFormat, playLikeQemu } from '../../integration/audio-out-helpers';
import { channel, dominantFrequency, recordSinkMonitor, rms } from '../audio-capture';
import { startBridgeProcess, type BridgeProcess } from '../bridge-process';
import { bundleCli } from '../cli';
import { startDbusDaemon, type DbusDaemon } from '../dbus';
import { captureCameraFrames, colorDistance, decodePng, meanColor, type Rgba } from '../gst';
import { startPipeWire, type PipeWire } from '../pipewire';
import { keepDir, tempDir, waitFor } from '../procs';
import { FUZZ_INTERFACES, callBatch, materialise, type FuzzCall, type FuzzInterface } from './calls';

/** A call that wants an answer and gets none within this is a failure (QEMU's own D-Bus default is 25 s). */
export const CALL_DEADLINE_MS = 5000;
/**
 * RSS may grow by at most this much over the run: what the bounds allow a guest to make the bridge
 * hold (the picture <= 256 MiB, the mapped-scanout read buffer <= 256 MiB: README "Security and
 * robustness") plus 128 MiB for audio streams, rings and the JS heap. A leak grows past it with
 * the number of calls; `rssTrailKiB` shows the curve.
 */
export const RSS_GROWTH_LIMIT_KIB = 640 * 1024;
/**
 * Warnings and errors the whole run may log: every hostile call is counted and each cause told
 * once. (Info lines are state changes such as a stream opened for an Init: reported, not judged.)
 */
export const WARN_LINE_LIMIT = 100;

const BATCH = 250;
const VM = 'fuzz-vm';

export interface FuzzOptions {
  seed: number;
  /** calls per interface */
  calls: number;
  /** progress lines (default none) */
  progress?: (line: string) => void;
  /** fuzz only these interfaces (default all three; the checks afterwards always run) */
  only?: FuzzInterface[];
}

export interface InterfaceReport {
  calls: number;
  /** calls that wanted an answer */
  answered: number;
  /** of those, answered with a D-Bus error (refused: expected for most hostile calls) */
  errors: number;
  unanswered: string[];
  /** why the fake QEMU's end of the connection closed, if it did */
  closedBy?: string;
  /** the last calls made before it closed */
  lastCalls: string[];
  /** voice ids this run sent an Init for (QEMU finishes its voices; so does the check afterwards) */
  voiceIds: Set<bigint>;
  /** slowest answer per member, ms (fuzzer side: includes both event loops) */
  maxReplyMs: Record<string, number>;
  /** every answer time of the calls QEMU blocks its main loop on (Read of up to 64 KiB, GetAll), ms */
  blockingMs: number[];
}

export interface FuzzReport {
  seed: number;
  only?: FuzzInterface[];
  callsPerInterface: number;
  interfaces: Record<FuzzInterface, InterfaceReport>;
  /** the bridge exited during the run (null: it did not) */
  crashed: string | null;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  rssMaxKiB: number;
  /** RSS after every tenth of the calls (of the first interface fuzzed) */
  rssTrailKiB: number[];
  logLines: number;
  /** distance of the camera picture from the colour of the normal frame sent afterwards */
  frameColorDistance: number;
  /** dominant frequency at the sink while a normal 440 Hz tone plays afterwards */
  toneHz: number;
  toneLevel: number;
  fuzzSeconds: number;
  /** why the run failed (empty: it passed) */
  failures: string[];
  /** the bridge's log, for a failure report */
  log: string;
  /** where the whole log was kept (failed runs) */
  logFile?: string;
  /** lines at warn or error level: what a guest could make the bridge repeat */
  warnLines: number;
}

/** The command that re-runs exactly this run. */
export const rerunCommand = (seed: number, calls: number, only?: readonly FuzzInterface[]): string => `npm run fuzz -- --seed ${seed} --calls ${calls}${only ? ` --only ${only.join(',')}` : ''}`;

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The built CLI when this runs from dist/ (`npm run fuzz`), else the sources bundled (vitest). */
function cliEntry(): string {
  const built = path.join(__dirname, '../../../src/cli/main.js');
  return fs.existsSync(built) ? built : bundleCli('fuzz');
}

type Bridge = BridgeProcess;

function startBridge(cli: string, bus: DbusDaemon, pw: PipeWire): Bridge {
  const args = ['run', '--address', bus.address, '--vm', VM, '--audio', 'pipewire', '--audio-sink', pw.sink, '--audio-source', pw.source, '--camera', 'pipewire', '--camera-size', '320x240', '--camera-fps', '15'];
  return startBridgeProcess([...args, '--log-format', 'json', '--log-level', 'info'], { cli, env: pw.env, maxLog: 4 * 1024 * 1024 });
}

/** How the bridge ended, or null while it runs. */
const ended = (b: Bridge): string | null => (b.running ? null : `exited with ${b.proc.signalCode ?? `code ${b.proc.exitCode}`}`);

/** One interface's calls, in order, each one awaited (QEMU's calls on a connection are ordered too). */
async function fuzzInterface(l: FakeListenerPeer, iface: FuzzInterface, o: FuzzOptions, bridge: Bridge, shmFile: string, report: InterfaceReport, onTenth?: () => void): Promise<void> {
  for (let batch = 0; report.calls < o.calls; batch++) {
    const calls = callBatch(iface, o.seed, batch, Math.min(BATCH, o.calls - report.calls));
    for (const c of calls) {
      if (ended(bridge) || l.closed) return;
      await oneCall(l, c, shmFile, report, `${iface} #${report.calls}`);
      report.calls++;
    }
    // A call that wants an answer after every batch: the fire-and-forget ones before it were read.
    await oneCall(l, { iface: 'org.freedesktop.DBus.Peer', member: 'Ping', signature: '', body: [], reply: true }, shmFile, report, `${iface} ping after batch ${batch}`);
    if (batch % 20 === 19) o.progress?.(`fuzz: ${iface} ${report.calls}/${o.calls}`);
    if (iface === (o.only ?? FUZZ_INTERFACES)[0] && Math.floor((report.calls * 10) / o.calls) > Math.floor(((report.calls - calls.length) * 10) / o.calls)) onTenth?.();
  }
}

async function oneCall(l: FakeListenerPeer, c: FuzzCall, shmFile: string, report: InterfaceReport, label: string): Promise<void> {
  const fd = c.fd ? fs.openSync(shmFile, 'r') : undefined;
  if (c.member === 'Init' && typeof c.body[0] === 'bigint') report.voiceIds.add(c.body[0]);
  report.lastCalls.push(`${label} ${c.iface}.${c.member}(${c.signature}) ${describeBody(c)}${c.reply ? '' : ' no-reply'}`);
  if (report.lastCalls.length > 5) report.lastCalls.shift();
  const t0 = performance.now();
  try {
    await l.call(c.member, c.signature, materialise(c), { reply: c.reply, iface: c.iface, path: c.path, fds: fd !== undefined ? [fd] : undefined, timeoutMs: CALL_DEADLINE_MS });
    if (c.reply) report.answered++;
  } catch (e) {
    const err = e as { dbusName?: string; name?: string; message?: string };
    // By the name's code, not the text: dbus-native says "No reply within N ms", which the old
    // /timeout/ test missed, counting an unanswered call as an answered error.
    const isTimeout = dbusErrorCode(err.dbusName) === 'ENO_REPLY';
    if (!c.reply || isTimeout || !err.dbusName) {
      if (report.unanswered.length < 20) report.unanswered.push(`${label} ${c.iface}.${c.member}: ${err.message ?? String(e)}`);
    } else {
      report.answered++;
      report.errors++;
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (c.reply) {
    const ms = performance.now() - t0;
    // Reads QEMU could make (it asks for one period: a few KiB) apart from the multi-MiB ones,
    // whose marshalling alone takes milliseconds on both sides.
    const qemuSized = c.member !== 'Read' || (c.body[1] as bigint) <= 65536n;
    const key = c.member === 'Read' ? (qemuSized ? 'Read(<=64KiB)' : 'Read(>64KiB)') : c.member;
    if (ms > (report.maxReplyMs[key] ?? 0)) report.maxReplyMs[key] = Math.round(ms * 100) / 100;
    if ((c.member === 'Read' && qemuSized) || c.member === 'GetAll') report.blockingMs.push(ms);
  }
}

function describeBody(c: FuzzCall): string {
  return JSON.stringify(c.body, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

/** The normal frame afterwards: a solid colour, cursor hidden; the camera shows it. */
async function frameReachesCamera(l: FakeListenerPeer, pw: PipeWire): Promise<number> {
  const colour: Rgba = { r: 200, g: 40, b: 160, a: 255 };
  const w = 320;
  const h = 240;
  const px = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) px.writeUInt32LE(((colour.r << 16) | (colour.g << 8) | colour.b) >>> 0, i * 4);
  await l.call('MouseSet', 'iii', [0, 0, 0], { reply: true });
  await l.call('Scanout', 'uuuuay', [w, h, w * 4, 0x20020888, px], { reply: true });
  const files = await captureCameraFrames({ env: pw.env, target: cameraNodeName(VM), count: 3, caps: 'video/x-raw,format=YUY2,colorimetry=bt601', timeoutMs: 60_000 });
  const img = decodePng(files[files.length - 1]);
  return colorDistance(meanColor(img, { x: img.width / 2 - 20, y: img.height / 2 - 20, w: 40, h: 40 }), colour);
}

/** The normal tone afterwards: 440 Hz for 3 s the way QEMU 7.2 plays it, recorded at the sink. */
async function toneReachesSink(l: FakeListenerPeer, pw: PipeWire): Promise<{ hz: number; level: number }> {
  const rec = recordSinkMonitor(pw, { sink: pw.sink, rate: 48000, channels: 2 });
  await rec.ready;
  await playLikeQemu(l.audioOut(), { id: 0x7777n, format: pcmFormat({ bits: 16, freq: 48000, nchannels: 2 }), seconds: 3, freq: 440, amplitude: 0.5 });
  const r = await rec.stop();
  // The middle of the recording: the tone is steady there.
  const mid = r.samples.subarray(Math.floor(r.samples.length * 0.3), Math.floor(r.samples.length * 0.8));
  return { hz: dominantFrequency(mid, r.rate, { channels: r.channels }), level: rms(channel(mid, r.channels, 0)) };
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const empty = (): InterfaceReport => ({ calls: 0, answered: 0, errors: 0, unanswered: [], lastCalls: [], voiceIds: new Set(), maxReplyMs: {}, blockingMs: [] });
  const report: FuzzReport = {
    seed: o.seed,
    ...(o.only ? { only: o.only } : {}),
    callsPerInterface: o.calls,
    interfaces: { console: empty(), 'audio-out': empty(), 'audio-in': empty() },
    crashed: null,
    rssBeforeKiB: 0,
    rssAfterKiB: 0,
    rssMaxKiB: 0,
    rssTrailKiB: [],
    logLines: 0,
    frameColorDistance: -1,
    toneHz: 0,
    toneLevel: 0,
    fuzzSeconds: 0,
    failures: [],
    log: '',
    warnLines: 0,
  };
  const dir = tempDir('fuzz');
  const shmFile = path.join('/dev/shm', `qdb-fuzz-${process.pid}`);
  fs.writeFileSync(shmFile, Buffer.alloc(1024 * 1024, 0x55));
  let bus: DbusDaemon | undefined;
  let pw: PipeWire | undefined;
  let fake: FakeQemuPeer | undefined;
  let bridge: Bridge | undefined;
  try {
    bus = await startDbusDaemon();
    pw = await startPipeWire();
    fake = await FakeQemuPeer.start({ busAddress: bus.address, name: VM, flavour: '10.1', width: 320, height: 240 });
    bridge = startBridge(cliEntry(), bus, pw);
    const b = bridge;
    const listeners = {} as Record<FuzzInterface, FakeListenerPeer>;
    for (const iface of FUZZ_INTERFACES) {
      const l = await fake.waitForListener(iface, 60_000).catch((e: Error) => {
        throw new Error(`${e.message}; bridge ${ended(b) ?? 'running'}; log:\n${b.log()}`);
      });
      listeners[iface] = l;
      const rep = report.interfaces[iface];
      l.conn.connection.on('error', (e: Error) => (rep.closedBy ??= `error on the fake QEMU's end: ${e.message}`));
      l.conn.connection.on('end', () => (rep.closedBy ??= 'the bridge closed the connection'));
    }
    // Settled: the camera node exists (the bridge is fully up) before RSS is taken.
    await waitFor('the camera node', 30_000, () => !b.running || /camera/i.test(b.log()));
    report.rssBeforeKiB = rssKiB(b.pid);
    report.rssMaxKiB = report.rssBeforeKiB;
    const sampler = setInterval(() => (report.rssMaxKiB = Math.max(report.rssMaxKiB, rssKiB(b.pid))), 200);
    const t0 = performance.now();
    try {
      const tenth = (): void => void report.rssTrailKiB.push(rssKiB(b.pid));
      await Promise.all((o.only ?? FUZZ_INTERFACES).map((iface) => fuzzInterface(listeners[iface], iface, o, b, shmFile, report.interfaces[iface], tenth)));
    } finally {
      clearInterval(sampler);
    }
    report.fuzzSeconds = Math.round((performance.now() - t0) / 100) / 10;
    report.rssAfterKiB = rssKiB(b.pid);
    for (const iface of FUZZ_INTERFACES) {
      const i = report.interfaces[iface];
      if (listeners[iface].closed) report.failures.push(`${iface}: the listener connection closed during the run (${i.closedBy ?? 'cause unknown'}) after ${i.calls} calls; the last ones: ${i.lastCalls.join(' / ')}`);
    }
    if (!ended(b)) {
      // Against the connections the bridge has now (it registers again after a drop).
      const now = async (kind: FuzzInterface): Promise<FakeListenerPeer> => (listeners[kind].closed ? fake!.waitForListener(kind, 10_000) : listeners[kind]);
      try {
        report.frameColorDistance = await frameReachesCamera(await now('console'), pw);
      } catch (e) {
        report.failures.push(`the normal frame afterwards: ${(e as Error).message}`);
      }
      try {
        const out = await now('audio-out');
        // QEMU finishes the voices it started; so do we, or every voice slot may still be taken.
        for (const id of report.interfaces['audio-out'].voiceIds) await out.call('Fini', 't', [id], { reply: true });
        const tone = await toneReachesSink(out, pw);
        report.toneHz = tone.hz;
        report.toneLevel = tone.level;
      } catch (e) {
        report.failures.push(`the normal tone afterwards: ${(e as Error).message}`);
      }
    }
    report.crashed = ended(b);
  } finally {
    report.log = bridge?.log() ?? '';
    const lines = report.log.split('\n').filter((x) => x.trim() !== '');
    report.logLines = lines.length;
    report.warnLines = lines.filter((x) => /"level":"(warn|error)"/.test(x)).length;
    await bridge?.stop(5000);
    await fake?.stop().catch(() => undefined);
    await pw?.stop().catch(() => undefined);
    await bus?.stop().catch(() => undefined);
    fs.rmSync(shmFile, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  judge(report);
  if (report.failures.length) {
    report.logFile = path.join(keepDir(), `fuzz-${o.seed}-${o.calls}.log`);
    fs.writeFileSync(report.logFile, report.log);
  }
  return report;
}

function judge(r: FuzzReport): void {
  const f = r.failures;
  if (r.crashed) f.push(`the bridge ${r.crashed}`);
  for (const iface of FUZZ_INTERFACES) {
    const i = r.interfaces[iface];
    if (i.calls < r.callsPerInterface && !r.crashed && (!r.only || r.only.includes(iface))) f.push(`${iface}: only ${i.calls} of ${r.callsPerInterface} calls made`);
    if (i.unanswered.length) f.push(`${iface}: calls not answered within ${CALL_DEADLINE_MS} ms: ${i.unanswered.slice(0, 3).join('; ')}`);
  }
  if (r.rssAfterKiB - r.rssBeforeKiB > RSS_GROWTH_LIMIT_KIB) f.push(`RSS grew from ${r.rssBeforeKiB} to ${r.rssAfterKiB} KiB`);
  if (r.warnLines > WARN_LINE_LIMIT) f.push(`the bridge logged ${r.warnLines} warnings/errors (limit ${WARN_LINE_LIMIT}): something is told per call, not once`);
  if (!r.crashed && !(r.frameColorDistance >= 0 && r.frameColorDistance <= 16)) f.push(`a normal frame afterwards did not reach the camera (colour distance ${r.frameColorDistance})`);
  if (!r.crashed && !(Math.abs(r.toneHz - 440) <= 5 && r.toneLevel > 0.1)) f.push(`a normal tone afterwards did not reach the sink (${r.toneHz} Hz, level ${r.toneLevel})`);
}

/** The figures, one line each, for the test log and `npm run fuzz`. */
export function formatReport(r: FuzzReport): string {
  const lines = [`fuzz: seed ${r.seed}, ${r.callsPerInterface} calls per interface, ${r.fuzzSeconds} s`];
  for (const iface of FUZZ_INTERFACES) {
    const i = r.interfaces[iface];
    const max = Object.entries(i.maxReplyMs)
      .sort((a, b) => b[1] - a[1])
      .map(([m, ms]) => `${m} ${ms}`)
      .join(', ');
    lines.push(`fuzz: ${iface}: ${i.calls} calls, ${i.answered} answered (${i.errors} D-Bus errors), ${i.unanswered.length} unanswered; max reply ms: ${max}`);
    const q = percentiles(i.blockingMs);
    if (q) lines.push(`fuzz: ${iface}: Read (<= 64 KiB)/GetAll answered in ${q} ms (p50/p99/max of ${i.blockingMs.length}, fuzzer side, ${r.only ? r.only.join(' + ') : 'all three interfaces'} fuzzed at once)`);
  }
  lines.push(`fuzz: bridge ${r.crashed ?? 'alive'}; RSS ${r.rssBeforeKiB} KiB before, ${r.rssAfterKiB} KiB after, ${r.rssMaxKiB} KiB max; after each tenth of the calls: ${r.rssTrailKiB.join(' ')} KiB; ${r.logLines} log lines, ${r.warnLines} of them warnings/errors`);
  lines.push(`fuzz: afterwards: frame colour distance ${r.frameColorDistance}, tone ${r.toneHz.toFixed(1)} Hz at RMS ${r.toneLevel.toFixed(3)} (0.354 sent)`);
  lines.push(r.failures.length ? `fuzz: FAILED: ${r.failures.join(' | ')}\nfuzz: re-run: ${rerunCommand(r.seed, r.callsPerInterface, r.only)}; bridge log: ${r.logFile ?? '-'}` : 'fuzz: passed');
  return lines.join('\n');
}

function percentiles(v: number[]): string | null {
  if (!v.length) return null;
  const s = [...v].sort((a, b) => a - b);
  const at = (p: number): string => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(2);
  return `${at(0.5)}/${at(0.99)}/${s[s.length - 1].toFixed(2)}`;
}

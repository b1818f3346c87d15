// End-to-end speaker latency against QEMU's own audio backends (issue 17 item 1): the time from
// the guest starting a sound to the sound's onset at the PipeWire sink, measured the same way for
// each path, same guest, same run:
//   (a) the bridge on QEMU 10.0 (-audiodev dbus; the audio-out route the `run` command builds),
//   (b) QEMU 10.0's own -audiodev pipewire (the baseline of every row),
//   (c) QEMU 10.0's own -audiodev pa, through pipewire-pulse in front of the same PipeWire (a real
//       PulseAudio daemon has its own null sink and clock: its onsets could only be timed at its
//       own monitor, a different sink measured by a different recorder, so not the same way),
//   (d) the bridge on QEMU 7.2.
// The guest (scenario `bursts`, guest/tone-bursts.c) keeps one stream running and plays 200 ms
// bursts of 1000 Hz with 300 ms of silence between them, writing "burst <i>" on ttyS1 right before
// each; test/harness/onset.ts stamps those lines and the capture of the sink's monitor on one
// clock (its header gives the error bound). Each path gets a fresh PipeWire with the graph
// quantum forced to 256 (the low-latency setting of the issue's target row), so every backend
// meets the same graph. The first K bursts give the latency rows (p50/p99); then a busy-loop child
// takes the other core and the next K bursts are searched for glitches (silent gaps >= 5 ms and
// breaks in the sine inside each burst, and a burst the guest played whole that has no onset of
// its own at the sink), plus, on the bridge paths, the bridge's own underrun count. The recorders
// run SCHED_FIFO (test/harness/onset.ts), so a glitch is the sink's, not a starved recorder's.
// The latency includes what every path shares: the guest's device buffer (at most 4 x 256 frames,
// 23 ms), QEMU's hda-codec transfer buffer (kept about half full: ~23 ms) and one graph quantum.
import type { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SoundServerChoice } from '../src/audio/backend';
import { ConfigSchema } from '../src/config/schema';
import { createLogger } from '../src/log';
import { QemuVm } from '../src/qemu';
import type { PcmFormat } from '../src/qemu/handlers';
import { QemuSession } from '../src/service/attach';
import { AudioOutRoute, type AudioOutTap } from '../src/service/routes/audio-out';
import { writeWav } from '../test/harness/audio-capture';
import { ownedTempDir } from '../test/harness/audio-tools';
import { burstGlitches, findOnsets, forceQuantum, matchOnsets, monotonicMs, openMarkerLine, startTimedCapture, type MarkerLine, type Onset, type TimedCapture, type TimedRecording } from '../test/harness/onset';
import { startPipeWire, type PipeWire } from '../test/harness/pipewire';
import { parseMarks, startGuest, type GuestOptions } from '../test/harness/qemu';
import { QEMU_TARGETS, type QemuTarget } from '../test/harness/qemu-targets';
import { BenchContext, BenchRow, busyCore, percentile } from './lib';

const QUANTUM = 256;
const BURST_MS = 200;
const GAP_MS = 300;
const TONE_HZ = 1000;

interface AudioPath {
  /** `<via>-<version>`, what QDB_E2E_PATHS names */
  key: string;
  label: string;
  qemu: QemuTarget;
  /** 'bridge': -audiodev dbus with our audio-out route; otherwise QEMU's own backend. */
  via: 'bridge' | 'pipewire' | 'pa';
}

interface PathResult {
  calm: Onset[];
  busy: Onset[];
  missing: number[];
  /** busy bursts without an onset at the sink although the guest played them whole (each counts as a glitch) */
  lost: number;
  /** busy bursts the glitch count covers: all but those the guest broke itself */
  countedBursts: number;
  gaps: number;
  discontinuities: number;
  /** busy bursts left out of the glitch count: the guest itself underran while writing them */
  guestBroken: number;
  /** the bridge's underruns while the other core was busy (undefined: QEMU's backend does not say) */
  underruns?: number;
  guestXruns: string;
  seconds: number;
  realtime: boolean;
  /** why the guest did not play every burst ('' when it did) */
  stalled: string;
  /** '; bridge ring ...' for the notes of the bridge paths ('' otherwise) */
  bridgeCalm: string;
  bridgeBusy: string;
  /** where each glitch of the busy bursts counted above was first seen (see attribute()) */
  layers: LayerCounts;
  /** frames the sink took while the other core was busy, in % of real time (< 100: the graph skipped cycles) */
  graphPct: number;
}

/**
 * Where a glitch heard at the sink came from, by the first layer it shows in. Each counted busy
 * burst is analysed at three points of the same run: (a) what QEMU sent the bridge (its Write
 * payloads, tapped as the route takes them; bridge paths only), (b) what the VM's playback node
 * puts out (a second recorder linked to that node's output ports, beside the sink: our stream on
 * the bridge paths, QEMU's own stream node otherwise) and (c) the sink's monitor. A glitch in (a)
 * is upstream (the guest's hda under TCG, QEMU's mixing engine); in (b) but not (a), the stream
 * node's (on the bridge paths: ours, from ring to adapter); in (c) only, the graph (the node's
 * buffer did not reach the sink in its cycle).
 */
interface LayerCounts {
  /** bursts broken at the sink whose break is already in QEMU's Writes */
  upstream: number;
  /** broken at the node's output, clean in what QEMU sent (or, without a tap, anywhere upstream of the node) */
  node: number;
  /** broken at the sink only */
  graph: number;
  /** of `node` and `graph`: bursts whose every break at that layer came with a graph cycle run late there (stallNear) */
  nodeStalled: number;
  graphStalled: number;
  /** broken at the sink, but a layer had no onset for that burst (not attributed) */
  unknown: number;
  /** per-layer totals of broken bursts (a layer may show a break the sink does not: reported, not attributed) */
  tapBroken?: number;
  nodeBroken: number;
  /** one line per broken burst, for the log */
  detail: string[];
}

function target(version: string): QemuTarget {
  const t = QEMU_TARGETS.find((q) => q.version === version);
  if (!t) throw Object.assign(new Error(`QEMU ${version} is not among the targets (QDB_QEMU=${process.env.QDB_QEMU ?? ''} filters them): unset QDB_QEMU`), { code: 'EQEMUTARGET' });
  return t;
}

/**
 * Layer (a): every Write's PCM as QEMU sent it (copied: the buffer is the D-Bus message's), timed
 * by its arrival on CLOCK_MONOTONIC, as a recording of the left channel. Bench-side only: the
 * route calls it after the Speaker took the Write (AudioOutRoute's `tap`).
 */
class WriteTap {
  private readonly parts: Buffer[] = [];
  private readonly chunks: TimedRecording['chunks'] = [];
  private frames = 0;
  private format: PcmFormat | undefined;
  readonly tap: AudioOutTap = (format, data) => {
    this.format = format;
    this.parts.push(Buffer.from(data));
    this.frames += Math.floor(data.length / format.bytesPerFrame);
    this.chunks.push({ atMs: monotonicMs(), endFrame: this.frames });
  };

  /** undefined before any Write; quantum 0: a frame is timed by the arrival of the Write holding it. */
  recording(): TimedRecording | undefined {
    const f = this.format;
    if (!f) return undefined;
    if (f.bits !== 16 || !f.isSigned || f.isFloat || f.bigEndian)
      throw Object.assign(new Error(`the Write tap reads S16LE only, QEMU sent ${f.bits}-bit ${f.isFloat ? 'float' : f.isSigned ? 'signed' : 'unsigned'}`), { code: 'ETAPFORMAT' });
    const all = Buffer.concat(this.parts);
    const left = new Int16Array(this.frames);
    for (let i = 0; i < this.frames; i++) left[i] = all.readInt16LE(i * f.bytesPerFrame);
    return { rate: f.freq, quantum: 0, left, chunks: this.chunks };
  }
}

/** Layer (b): waits for the VM's playback stream node (the one Stream/Output/Audio node) and records its output. */
async function captureNode(pw: PipeWire): Promise<{ name: string; cap: TimedCapture }> {
  let name = '';
  const end = Date.now() + 180_000; // the guest boots first (TCG, loaded host)
  for (;;) {
    const nodes = (await pw.pwDump()).filter((o) => o.type === 'PipeWire:Interface:Node' && o.info?.props?.['media.class'] === 'Stream/Output/Audio');
    if (nodes.length === 1) {
      name = String(nodes[0].info?.props?.['node.name']);
      break;
    }
    if (Date.now() > end) throw Object.assign(new Error(`expected one playback stream node, found ${nodes.length}`), { code: 'ENODE' });
    await new Promise((r) => setTimeout(r, 200));
  }
  const cap = startTimedCapture(pw, QUANTUM, { node: name });
  await cap.ready;
  return { name, cap };
}

/**
 * Frames a recording received between two instants, in % of what real time would give: below 100
 * the graph's driver (the null sink's timer) skipped cycles, and a source paced by its own clock
 * (QEMU's dbus audio sends at QEMU's clock, whoever listens) queues up the difference.
 */
function realTimePercent(rec: TimedRecording, fromMs: number, toMs: number): number {
  const a = rec.chunks.find((c) => c.atMs >= fromMs);
  const b = [...rec.chunks].reverse().find((c) => c.atMs <= toMs);
  if (!a || !b || b.atMs <= a.atMs) return NaN;
  return (((b.endFrame - a.endFrame) / rec.rate) * 1000 * 100) / (b.atMs - a.atMs);
}

/** Glitches of one burst at one layer; `stalled`: how many of them came with a late graph cycle there (stallNear). */
interface BurstBreaks {
  gaps: number;
  breaks: number;
  stalled: number;
}

/**
 * Whether the graph cycle that carried `frame` to this recorder came late: an arrival more than
 * two quanta after the one before, among the chunks around it (a cycle the driver ran late, the
 * recorder then getting two at once). Only for recorders in the graph (quantum > 0).
 */
function stallNear(rec: TimedRecording, frame: number): boolean {
  if (rec.quantum === 0) return false;
  const late = ((2 * rec.quantum) / rec.rate) * 1000;
  const i = rec.chunks.findIndex((c) => c.endFrame > frame);
  if (i < 0) return false;
  for (let j = Math.max(1, i - 3); j <= Math.min(rec.chunks.length - 1, i + 3); j++) if (rec.chunks[j].atMs - rec.chunks[j - 1].atMs > late) return true;
  return false;
}

function breaksOf(rec: TimedRecording, onsetFrame: number): BurstBreaks {
  const g = burstGlitches(rec, onsetFrame, BURST_MS, TONE_HZ);
  return { gaps: g.gaps, breaks: g.discontinuities, stalled: g.at.filter((f) => stallNear(rec, f)).length };
}

/** Per burst: glitches found at one layer (bursts with no onset at that layer are absent). */
function glitchesByBurst(line: MarkerLine, rec: TimedRecording): Map<number, BurstBreaks> {
  const { matched } = matchOnsets(line.lines, rec, findOnsets(rec, GAP_MS / 2), BURST_MS + GAP_MS);
  const out = new Map<number, BurstBreaks>();
  for (const o of matched) out.set(o.burst, breaksOf(rec, o.frame));
  return out;
}

/** Attributes each counted busy burst broken at the sink to the first layer that shows the break (LayerCounts). */
function attribute(counted: Array<{ burst: number } & BurstBreaks>, tap: Map<number, BurstBreaks> | undefined, node: Map<number, BurstBreaks>): LayerCounts {
  const r: LayerCounts = { upstream: 0, node: 0, graph: 0, unknown: 0, nodeStalled: 0, graphStalled: 0, tapBroken: tap ? 0 : undefined, nodeBroken: 0, detail: [] };
  const show = (g: BurstBreaks | undefined): string => (g ? `${g.gaps} gaps/${g.breaks} breaks${g.stalled ? ` (${g.stalled} at a late cycle)` : ''}` : 'no onset');
  for (const c of counted) {
    const a = tap?.get(c.burst);
    const b = node.get(c.burst);
    const aBroken = a !== undefined && a.gaps + a.breaks > 0;
    const bBroken = b !== undefined && b.gaps + b.breaks > 0;
    if (aBroken) r.tapBroken = (r.tapBroken ?? 0) + 1;
    if (bBroken) r.nodeBroken++;
    const sinkBroken = c.gaps + c.breaks > 0;
    if (!sinkBroken && !aBroken && !bBroken) continue;
    let layer: 'upstream' | 'node' | 'graph' | 'unknown' | undefined;
    if (!sinkBroken) layer = undefined;
    else if (aBroken) layer = 'upstream';
    else if ((tap && a === undefined) || b === undefined) layer = 'unknown';
    else layer = bBroken ? 'node' : 'graph';
    if (layer) r[layer]++;
    // every break of the burst at that layer came with a late graph cycle there
    if (layer === 'node' && b && b.stalled === b.gaps + b.breaks) r.nodeStalled++;
    if (layer === 'graph' && c.stalled === c.gaps + c.breaks) r.graphStalled++;
    r.detail.push(`burst ${c.burst}: ${layer ?? 'not at the sink'} (QEMU's Writes ${tap ? show(a) : 'not tapped'}, node ${show(b)}, sink ${show(c)})`);
  }
  return r;
}

async function measure(p: AudioPath, k: number, ctx: BenchContext): Promise<PathResult> {
  const t0 = Date.now();
  const bursts = 2 * k + 1; // K calm, one while the busy loop starts (not counted), K busy
  const pw = await startPipeWire({ quantum: QUANTUM, pulse: p.via === 'pa' });
  const stops: Array<() => Promise<void> | void> = [() => pw.stop()];
  let hog: ChildProcess | undefined;
  try {
    await forceQuantum(pw, QUANTUM);
    const cap = startTimedCapture(pw, QUANTUM);
    stops.push(async () => void (await cap.stop().catch(() => undefined)));
    await cap.ready;
    const dir = ownedTempDir('e2e');
    const markerSock = path.join(dir, 'markers.sock');
    const audiodev: GuestOptions['audiodev'] = p.via === 'bridge' ? 'dbus' : p.via === 'pipewire' ? { pipewire: pw.env } : { pa: pw.pulse!.server };
    const guest = await startGuest({
      qemu: p.qemu,
      scenario: 'bursts',
      audiodev,
      params: { bursts, burst_ms: BURST_MS, gap_ms: GAP_MS },
      extraArgs: ['-serial', `unix:${markerSock},server=on,wait=off`],
    });
    stops.push(() => guest.stop());
    const line = await openMarkerLine(markerSock);
    stops.push(() => line.close());
    let route: AudioOutRoute | undefined;
    // The tap is opt-in (QDB_E2E_TAP=1): a route with a tap takes every Write in JavaScript, while a
    // user's bridge takes them on its native intake thread (README, performance). Without it the
    // bench measures the path users run, and breaks are attributed "upstream of the node" only.
    const tap = p.via === 'bridge' && process.env.QDB_E2E_TAP === '1' ? new WriteTap() : undefined;
    if (p.via === 'bridge') {
      const log = createLogger({ format: 'text', level: 'warn' }, 'bench');
      const config = ConfigSchema.parse({ connection: { address: guest.busAddress, vm: guest.name }, audio: { backend: 'pipewire', sink: pw.sink } });
      const session = new QemuSession(await QemuVm.connect({ busAddress: guest.busAddress, name: guest.name }), log);
      stops.push(() => session.close());
      const r = new AudioOutRoute(config, { sound: new SoundServerChoice('pipewire', { env: pw.env }), tap: tap?.tap });
      const ac = new AbortController();
      await r.start({ vm: session, log, signal: ac.signal, fail: (e) => log.error(`audio-out failed: ${e.message}`), statusChanged: () => undefined });
      stops.push(() => r.stop());
      route = r;
    }
    // The bridge's own share: what waits in its ring (sampled from the first burst on; each phase apart).
    const ringMs: Record<'calm' | 'busy', number[]> = { calm: [], busy: [] };
    let phase: 'calm' | 'busy' = 'calm';
    // and when the stream underran (the sample's time: within 50 ms of it), for the layer detail
    const underrunsAt: number[] = [];
    let underrunsSeen = 0;
    const sampler = setInterval(() => {
      const v = route?.stats()?.voices[0];
      if (v && line.lines.length > 0) ringMs[phase].push((v.fillFrames / v.rate) * 1000);
      for (; v && underrunsSeen < v.underruns; underrunsSeen++) underrunsAt.push(monotonicMs());
    }, 50);
    stops.push(() => clearInterval(sampler));
    // Layer (b): recorded from as soon as the playback node exists (the guest opens its stream
    // during boot, a second of silence before its first burst). Started at burst 0 instead, the
    // recorder's start-up (pw-dump, a SCHED_FIFO recorder) landed on the first sound: QEMU's Writes
    // to the bridge stopped for ~110 ms right there (seen with QDB_E2E_TAP=1, load ~6), a stall
    // of the bench's own making that a bridge then covers in its margin for the rest of the run.
    const node = await captureNode(pw);
    stops.push(async () => void (await node.cap.stop().catch(() => undefined)));
    const nodeReadyMs = monotonicMs();
    await line.waitFor(/^burst 0 /, 180_000).catch(() => undefined);
    ctx.log(`${p.label}: playback node recorded from ${(line.lines[0] ? line.lines[0].atMs - nodeReadyMs : NaN).toFixed(0)} ms before the first burst`);
    await line.waitFor(new RegExp(`^burst ${k} `), 180_000).catch((err: Error) => {
      const c = route?.counters();
      const bridge = c ? `; bridge: ${c.format || 'no format yet'}, ${c.frames} frames, ${c.underruns} underruns` : '';
      throw Object.assign(new Error(`${p.label}: ${err.message}${bridge}; guest serial tail:\n${guest.serial().slice(-1500)}`), { code: 'EMARKER' });
    });
    const underrunsBefore = route?.counters().underruns ?? 0;
    hog = busyCore();
    const busyFromMs = monotonicMs();
    phase = 'busy';
    // The guest writes are paced by QEMU taking the audio: a backend that stops taking it stops
    // the guest. Such a stall is a result (the note says where), not a reason to drop every row.
    let stalled = '';
    let doneLine = '';
    try {
      await line.waitFor(new RegExp(`^burst ${bursts - 1} `), 120_000);
      doneLine = (await guest.waitForSerial(/MARK (bursts-done|error)[^\n]*/, 30_000))[0];
    } catch (err) {
      stalled = `the guest stopped at '${line.lines.at(-1)?.text ?? ''}' (${(err as Error).message.split('\n')[0]})`;
      ctx.log(`${p.label}: ${stalled}`);
    }
    const underrunsBusy = route ? route.counters().underruns - underrunsBefore : undefined;
    clearInterval(sampler);
    const c = route?.counters();
    const ring = (xs: number[]): string => {
      const sorted = [...xs].sort((a, b) => a - b);
      return `bridge ring p50 ${percentile(sorted, 50).toFixed(1)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(1)} ms`;
    };
    const st = route?.stats();
    const via = st ? `; Writes taken by the native intake ${st.intakeWrites}${tap ? ' (tapped: the tap takes them in JavaScript)' : ''}` : '';
    const learned = st ? `, Writes' lateness covered ${st.lateMs.toFixed(1)} ms` : '';
    const bridgeCalm = c ? `${via}; ${ring(ringMs.calm)}; at the end: target ${c.targetLatencyMs.toFixed(1)} ms${learned}, block ${c.blockFrames} frames, overruns ${c.overruns} frames, drift ${c.driftPpm.toFixed(0)} ppm` : '';
    const skipped = st?.voices[0]?.silenceSkippedFrames ?? 0;
    const bridgeBusy = c ? `; ${ring(ringMs.busy)}; silence not queued (ring over its level) ${skipped} frames, overruns ${c.overruns} frames` : '';
    const busyToMs = monotonicMs();
    hog.kill('SIGKILL');
    hog = undefined;
    // the last burst's tone is still on its way to the sink
    await new Promise((r) => setTimeout(r, 1000));
    const rec = await cap.stop();
    const nodeRec = await node.cap.stop();
    const tapRec = tap?.recording();
    const onsets = findOnsets(rec, GAP_MS / 2);
    if (process.env.QDB_E2E_DUMP) {
      const f = path.join(process.env.QDB_E2E_DUMP, `${p.via}-${p.qemu.version}.json`);
      fs.writeFileSync(f, JSON.stringify({ rate: rec.rate, chunks: rec.chunks, onsets, lines: line.lines, nodeChunks: nodeRec.chunks, writes: tapRec?.chunks, underrunsAt }));
      writeWav(f.replace(/json$/, 'wav'), rec.left, rec.rate, 1);
      writeWav(f.replace(/\.json$/, '-node.wav'), nodeRec.left, nodeRec.rate, 1);
      if (tapRec) writeWav(f.replace(/\.json$/, '-writes.wav'), tapRec.left, tapRec.rate, 1);
      fs.writeFileSync(f.replace(/json$/, 'serial.log'), guest.serial());
      ctx.log(`capture (timing, left channel, guest serial) dumped to ${f.replace(/json$/, '*')}`);
    }
    const { matched, missing } = matchOnsets(line.lines, rec, onsets, BURST_MS + GAP_MS);
    const xr = parseMarks(guest.serial(), 'bursts-done')[0]?.fields.xruns;
    // The guest's underrun count at each marker, and at the end: a burst during which it rose was
    // broken by the guest (TCG starved of CPU), not by the host path, and is not counted below.
    const xrunsAt = new Map<number, number>();
    for (const l of line.lines) {
      const m = /^burst (\d+) xruns=(\d+)$/.exec(l.text);
      if (m) xrunsAt.set(Number(m[1]), Number(m[2]));
    }
    xrunsAt.set(bursts, Number(xr ?? NaN));
    let gaps = 0;
    let discontinuities = 0;
    let guestBroken = 0;
    const counted: Array<{ burst: number } & BurstBreaks> = [];
    for (const o of matched.filter((m) => m.burst > k)) {
      const next = xrunsAt.get(o.burst + 1);
      if (next !== o.guestXruns) {
        guestBroken++;
        continue;
      }
      const g = breaksOf(rec, o.frame);
      gaps += g.gaps;
      discontinuities += g.breaks;
      counted.push({ burst: o.burst, ...g });
    }
    // A busy burst the guest played whole but with no onset of its own at the sink was not heard
    // as the guest played it (dropped, or run into the one before): one glitch each.
    const lost = missing.filter((b) => b > k && xrunsAt.get(b + 1) === xrunsAt.get(b));
    guestBroken += missing.filter((b) => b > k).length - lost.length;
    const graphPct = realTimePercent(rec, busyFromMs, busyToMs);
    const layers = attribute(counted, tapRec && glitchesByBurst(line, tapRec), glitchesByBurst(line, nodeRec));
    for (const d of layers.detail) ctx.log(`${p.label}: ${d}`);
    if (missing.length > 0) ctx.log(`${p.label}: no onset found for bursts ${missing.join(',')}: ${doneLine}`);
    return {
      calm: matched.filter((m) => m.burst < k),
      busy: matched.filter((m) => m.burst > k),
      missing,
      lost: lost.length,
      countedBursts: counted.length + lost.length,
      gaps,
      discontinuities,
      guestBroken,
      underruns: underrunsBusy,
      guestXruns: xr ?? `? (${doneLine || stalled})`,
      stalled,
      bridgeCalm,
      bridgeBusy,
      layers,
      graphPct,
      seconds: (Date.now() - t0) / 1000,
      realtime: line.realtime && rec.realtime === true,
    };
  } finally {
    hog?.kill('SIGKILL');
    for (const s of stops.reverse()) await Promise.resolve(s()).catch((e: unknown) => ctx.log(`cleanup: ${String(e)}`));
  }
}

/** Where the broken bursts broke (LayerCounts), for the glitch row's note. */
function layerNote(l: LayerCounts): string {
  const tap = l.tapBroken === undefined ? "QEMU's Writes not tapped (QEMU's own backend, or the bridge without QDB_E2E_TAP=1)" : `${l.tapBroken} broken in QEMU's Writes`;
  return (
    `broken bursts by layer: ${l.upstream} upstream (already in QEMU's Writes), ${l.node} at the playback node's output (${l.nodeStalled} of them only at graph cycles run late), ` +
    `${l.graph} at the sink only (${l.graphStalled} only at late cycles), ${l.unknown} unattributed (${tap}, ${l.nodeBroken} at the node)`
  );
}

const p50 = (xs: Onset[]): number => percentile(xs.map((o) => o.latencyMs).sort((a, b) => a - b), 50);
const p99 = (xs: Onset[]): number => percentile(xs.map((o) => o.latencyMs).sort((a, b) => a - b), 99);

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  // 32 calm bursts for at least 30 onsets when a burst or two is lost on a loaded machine;
  // QDB_E2E_BURSTS=K asks for K calm and K busy bursts per path (more bursts: a glitch count that
  // can tell two paths apart; ~1 s of run time per unit of K).
  const asked = process.env.QDB_E2E_BURSTS;
  const k = asked ? Number(asked) : Math.max(8, Math.round(32 * ctx.durationScale));
  if (!Number.isInteger(k) || k < 8 || k > 1000) throw Object.assign(new Error(`QDB_E2E_BURSTS=${asked ?? ''} must be a whole number from 8 to 1000`), { code: 'EBURSTS' });
  const all: AudioPath[] = [
    { key: 'pipewire-10.0', label: "QEMU 10.0's own -audiodev pipewire", qemu: target('10.0'), via: 'pipewire' },
    { key: 'bridge-10.0', label: 'bridge on QEMU 10.0 (-audiodev dbus)', qemu: target('10.0'), via: 'bridge' },
    { key: 'pa-10.0', label: "QEMU 10.0's own -audiodev pa (pipewire-pulse)", qemu: target('10.0'), via: 'pa' },
    { key: 'bridge-7.2', label: 'bridge on QEMU 7.2 (-audiodev dbus)', qemu: target('7.2'), via: 'bridge' },
  ];
  // QDB_E2E_PATHS=bridge-10.0,pipewire-10.0 runs only those, in that order (investigating one
  // path; the first named is then every row's baseline). A path named again runs again, as a
  // round of its own ("pipewire-10.0,bridge-10.0,pipewire-10.0,bridge-10.0": an interleaved A/B
  // whose rounds meet the same load). Unset: all four, QEMU's own pipewire first.
  const only = process.env.QDB_E2E_PATHS?.split(',').map((x) => x.trim());
  const paths: AudioPath[] = [];
  for (const key of only ?? all.map((p) => p.key)) {
    const p = all.find((x) => x.key === key);
    if (!p) throw Object.assign(new Error(`QDB_E2E_PATHS=${process.env.QDB_E2E_PATHS}: '${key}' is none of ${all.map((x) => x.key).join(', ')}`), { code: 'EPATHS' });
    const round = paths.filter((x) => x.key === key).length + 1;
    paths.push(round === 1 ? p : { ...p, label: `${p.label}, round ${round}` });
  }
  const results: Array<{ p: AudioPath; r: PathResult }> = [];
  for (const p of paths) {
    ctx.log(`${p.label}: ${2 * k + 1} bursts (${k} with the other core busy); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const r = await measure(p, k, ctx);
    ctx.log(`${p.label}: latencies (ms) ${r.calm.map((o) => o.latencyMs.toFixed(1)).join(' ')} | busy ${r.busy.map((o) => o.latencyMs.toFixed(1)).join(' ')}`);
    ctx.log(`${p.label}: onset p50 ${p50(r.calm).toFixed(1)} ms, p99 ${p99(r.calm).toFixed(1)} ms over ${r.calm.length}; busy: ${r.gaps} gaps, ${r.discontinuities} breaks, ${r.lost} bursts without an onset; ${layerNote(r.layers)}; graph at ${r.graphPct.toFixed(1)} % of real time; ${r.seconds.toFixed(0)} s`);
    // A path that lost bursts is reported with what it found (the notes say how many); no onset
    // at all means the measurement itself is broken.
    if (r.calm.length === 0) throw Object.assign(new Error(`${p.label}: no onset found after any of the first ${k} markers`), { code: 'EONSETS' });
    results.push({ p, r });
  }
  const base = results[0];
  const rows: BenchRow[] = [];
  const glitches = (r: PathResult): number => r.gaps + r.discontinuities + r.lost;
  for (const { p, r } of results) {
    // every row of a path against the same measure of the baseline path
    const versus = (name: string, unit: string, measure: (x: PathResult) => number, note?: string): BenchRow => ({
      name: `${name}, ${p.label}`,
      value: measure(r),
      unit,
      baseline: r === base.r ? undefined : { name: base.p.label, value: measure(base.r) },
      better: 'lower',
      note,
    });
    rows.push(
      versus(
        'guest sound start -> sink onset, p50',
        'ms',
        (x) => p50(x.calm),
        `p99 ${p99(r.calm).toFixed(1)} ms, min ${Math.min(...r.calm.map((o) => o.latencyMs)).toFixed(1)} ms over ${r.calm.length} onsets ` +
          `(${k - r.calm.length} of ${k} bursts without one); recorders and stamps ${r.realtime ? 'SCHED_FIFO' : 'NOT real-time (not root): stamps may be late and the recorders starved under load'}${r.bridgeCalm}`,
      ),
      versus('guest sound start -> sink onset, p99', 'ms', (x) => p99(x.calm)),
      versus(
        `glitches in ${r.countedBursts} bursts, other core busy`,
        'count',
        glitches,
        `${r.gaps} gaps >= 5 ms, ${r.discontinuities} breaks in the sine, ${r.lost} bursts not heard as one (no onset of their own); ${layerNote(r.layers)}; graph at ${r.graphPct.toFixed(1)} % of real time; ` +
          `underruns ${r.underruns === undefined ? "not reported by QEMU's backend" : String(r.underruns)}; ` +
          `guest xruns ${r.guestXruns} (${r.guestBroken} bursts the guest broke itself are not counted); ` +
          `onset busy p50 ${p50(r.busy).toFixed(1)} ms, p99 ${p99(r.busy).toFixed(1)} ms over ${r.busy.length}; no onset for ${r.missing.length} of ${2 * k + 1} bursts${r.stalled ? `; ${r.stalled}` : ''}${r.bridgeBusy}`,
      ),
    );
  }
  return rows;
}

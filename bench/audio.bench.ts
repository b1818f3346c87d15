// Speaker path (guest -> host sound server), with real PipeWire / PulseAudio / QEMU:
//   1. added latency at graph quantum 256 and 1024: Write arrival -> sample entering the graph
//      (time the block's last frame waits in our ring = fill after the Write / rate), next to
//      the graph's own delay from pw_stream_get_time (the baseline: what any client pays);
//   2. CPU per second of audio for the whole JS + native path, against the same QEMU-paced
//      feeding loop with a handler that does nothing (the cost of the feeder alone);
//   3. underruns over 60 s at the default prebuffer with the other core busy, against the
//      same run with the machine as it is;
//   4. clock drift: 60 s with QEMU's clock 0.3 % fast, fill change with drift control against
//      without (the test suite runs 15 s);
//   5. QEMU's own -audiodev pa backend on the same guest as the peer baseline: PulseAudio's
//      buffer latency of QEMU's stream vs ours (plus our ring) for the same guest tone.
// Blocks are fed like QEMU 7.2 sends them: 1024 frames, released on 10 ms ticks. The speaker runs
// its default policy (src/audio/out/prebuffer.ts: no --audio-latency) unless a row says otherwise.
// Rows 1, 3 and 4 send the Writes as QEMU does, over a real AudioOutListener connection served as
// the bridge serves it, so the speaker's intake thread takes them (the path users run); row 2
// calls Speaker.write on the JS thread (its baseline is a feeder calling a no-op handler). Each
// note says which path it measured.
import * as net from 'net';
import { PlaybackBackend, selectAudioBackend } from '../src/audio/backend';
import { Speaker } from '../src/audio/out/speaker';
import { socketpair } from '../src/native';
import type { AudioOutHandler, PcmFormat } from '../src/qemu/handlers';
import { audioOutOptions, PeerListener, QemuVm } from '../src/qemu';
import { answerHandshake, marshalledWrite } from '../test/harness/dbus-bytes';
import { startPipeWire } from '../test/harness/pipewire';
import { startPulseAudio, Pulse } from '../test/harness/pulseaudio';
import { startGuest } from '../test/harness/qemu';
import { BenchContext, BenchRow, busyCore, percentile } from './lib';

const RATE = 44100;
const BLOCK = 1024;
const FMT: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: RATE, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: RATE * 4, bigEndian: false };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One second of a 997 Hz sine in 1024-frame blocks, precomputed so the feeder costs no synthesis. */
function toneBlocks(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let b = 0; b < Math.ceil(RATE / BLOCK); b++) {
    const buf = Buffer.alloc(BLOCK * 4);
    for (let i = 0; i < BLOCK; i++) {
      const v = Math.round(16000 * Math.sin((2 * Math.PI * 997 * (b * BLOCK + i)) / RATE));
      buf.writeInt16LE(v, i * 4);
      buf.writeInt16LE(v, i * 4 + 2);
    }
    out.push(buf);
  }
  return out;
}

/** What the feeder gives each Write to: a handler (JS path), or QEMU's end of a listener connection. */
interface WriteSink {
  write(id: bigint, data: Uint8Array): void | Promise<void>;
}

/**
 * QEMU's end of a real AudioOutListener connection to `speaker`, served as the bridge serves it
 * (PeerListener with audioOutOptions: after the handshake the Speaker's intake thread reads the
 * socket and takes the Writes; a Write it hands over is dispatched in JS). `write` sends one Write
 * as QEMU does (NO_REPLY_EXPECTED); with `settle` it resolves once that Write was processed,
 * whichever thread took it (the connection's call count), so the stats read right after it see
 * the block, as they did when the bench called Speaker.write.
 */
async function listenerSink(speaker: Speaker, settle: boolean): Promise<{ sink: WriteSink; path(): string; close(): void }> {
  const [mine, theirs] = socketpair();
  const listener = new PeerListener(mine, audioOutOptions(speaker));
  const qemu = new net.Socket({ fd: theirs, readable: true, writable: true });
  qemu.on('error', () => undefined); // the listener's close ends it
  await answerHandshake(qemu);
  await listener.waitConnected(10_000);
  const marshalled = new Map<Uint8Array, Buffer>(); // the tone's blocks repeat
  let sent = 0;
  let unsettled = 0;
  const calls = (): number => listener.stats.calls;
  return {
    sink: {
      write: async (id, data) => {
        let m = marshalled.get(data);
        if (!m) marshalled.set(data, (m = marshalledWrite(1, Buffer.from(data), { body: [id, data] })));
        qemu.write(m);
        sent++;
        if (!settle) return;
        const until = performance.now() + 100;
        while (calls() < sent) {
          if (performance.now() > until) return void unsettled++;
          await new Promise((r) => setImmediate(r));
        }
      },
    },
    path: () => `Writes over a real listener connection: the intake thread took ${speaker.stats().intakeWrites} of ${sent}, JS ${calls() - speaker.stats().intakeWrites}${unsettled ? `, ${unsettled} not processed within 100 ms of sending` : ''}`,
    close: () => {
      listener.close();
      qemu.destroy();
    },
  };
}

interface FeedResult {
  cpuMs: number;
  seconds: number;
}

/**
 * QEMU 7.2 pacing, as audio/audio.c and audio/dbusaudio.c do it: the audio timer re-arms itself
 * `timer-period` (10 ms) after each tick RAN (audio_reset_timer: now + period_ticks, so a late
 * tick delays every later one: no fixed grid). Each tick mixes what QEMU's clock (off by `drift`)
 * allows since the voice was enabled (audio_rate_get_bytes from audio_rate_start at enable), at
 * most the mixing buffer's hw->samples = 1024 frames (audio_pcm_hw_get_free), into the dbus
 * buffer, which is sent as one Write each time it is full. So after a stall QEMU catches up at one
 * block per tick, not all at once. The first tick comes one period after enable. `onWrite` gets
 * each Write's lateness: its arrival minus the instant QEMU's clock allowed its last frame.
 */
async function feed(h: WriteSink, id: bigint, seconds: number, drift = 0, onWrite?: (phase: 'before' | 'after', lateMs: number) => void): Promise<FeedResult> {
  const blocks = toneBlocks();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let mixed = 0;
  let sent = 0;
  let n = 0;
  let tickAt = t0;
  for (;;) {
    const wait = tickAt + 10 - performance.now();
    if (wait > 0) await sleep(wait);
    tickAt = performance.now();
    const elapsed = (tickAt - t0) / 1000;
    if (elapsed >= seconds) break;
    const allowed = Math.floor(elapsed * RATE * (1 + drift));
    mixed += Math.min(allowed - mixed, BLOCK);
    while (mixed - sent >= BLOCK) {
      const lateMs = tickAt - (t0 + ((sent + BLOCK) / (RATE * (1 + drift))) * 1000);
      onWrite?.('before', lateMs);
      const w = h.write(id, blocks[n++ % blocks.length]);
      if (w) await w;
      sent += BLOCK;
      onWrite?.('after', lateMs);
    }
  }
  const c = process.cpuUsage(cpu0);
  return { cpuMs: (c.user + c.system) / 1000, seconds: sent / RATE };
}

const noopHandler: AudioOutHandler = { init: () => {}, fini: () => {}, setEnabled: () => {}, setVolume: () => {}, write: () => {} };

interface PlayResult {
  ringMs: number[];
  delayMs: number[];
  underruns: number;
  cpuMsPerAudioS: number;
  fills: Array<{ t: number; fill: number }>;
  trace: PlayTrace;
  /** which path took the Writes (for the row's note) */
  path: string;
}

/**
 * What the policy did, from outside (the bench reads the voice's stats; nothing in the bridge
 * records this): the level right before each Write (after the start-up), the start threshold
 * (margin) the voice held, each Write's lateness against QEMU's clock, and when playback began.
 */
interface PlayTrace {
  /** Ring fill right before each Write, ms, sorted. */
  levelBeforeMs: number[];
  /** Lateness of each Write against QEMU's clock (the feeder's own ticks and scheduling), ms, sorted. */
  lateMs: number[];
  /** Start threshold beyond one request, ms: at the first Write and at the end. */
  startMsFirst: number;
  startMsLast: number;
  /** ms from the first Write to the first one that found the stream playing (consumed > 0). */
  startAfterMs?: number;
  /** The first Write's lateness, ms: the level stays that much above the schedule's need. */
  firstLateMs?: number;
  /** Drift controller's rate ratio, sampled every 100 ms after the start-up: mean and largest. */
  ratioMean: number;
  ratioMax: number;
  /** The level the drift controller held at the end (voice stats driftTargetFrames), ms. */
  heldMs?: number;
}

/** `js`: the feeder calls Speaker.write; otherwise the Writes go over a listener connection (listenerSink). */
async function play(backend: PlaybackBackend, seconds: number, o: { latencyMs?: number; drift?: number; driftControl?: boolean; trace?: boolean; js?: boolean } = {}): Promise<PlayResult> {
  const speaker = new Speaker({ vmName: 'bench', backend, latencyMs: o.latencyMs, driftControl: o.driftControl });
  const wire = o.js ? undefined : await listenerSink(speaker, o.trace !== false);
  // Init and SetEnabled as the dispatcher calls them (QEMU sends them before the Writes).
  speaker.init(1n, FMT);
  speaker.setEnabled(1n, true);
  const voice = speaker.voice(1n)!;
  const ringMs: number[] = [];
  const delayMs: number[] = [];
  const fills: Array<{ t: number; fill: number }> = [];
  const msOf = (frames: number): number => (frames / RATE) * 1000;
  const trace: PlayTrace = { levelBeforeMs: [], lateMs: [], startMsFirst: msOf(voice.startFrames), startMsLast: 0, ratioMean: 1, ratioMax: 1 };
  const ratios: number[] = [];
  const t0 = Date.now();
  let firstWriteAt: number | undefined;
  let last = 0;
  const r = await feed(wire?.sink ?? speaker, 1n, seconds, o.drift ?? 0, (phase, lateMs) => {
    if (phase === 'before' && o.trace === false) return;
    const now = Date.now();
    const st = voice.nativeStats();
    if (phase === 'before') {
      if (firstWriteAt === undefined) {
        firstWriteAt = now;
        trace.firstLateMs = lateMs;
      }
      if (trace.startAfterMs === undefined && st && st.consumedFrames > 0) trace.startAfterMs = now - firstWriteAt;
      if (now - t0 < 2000 || !st) return;
      trace.levelBeforeMs.push(msOf(st.fillFrames));
      trace.lateMs.push(lateMs);
      return;
    }
    if (now - t0 < 2000) return; // start-up (linking, prebuffer) is not the steady state
    if (!st) return;
    // The block's average frame waits for what was queued before it plus half the block.
    ringMs.push(((st.fillFrames - BLOCK / 2) / RATE) * 1000);
    if (st.delayNs !== undefined) delayMs.push(st.delayNs / 1e6);
    if (now - last >= 100) {
      last = now;
      fills.push({ t: (now - t0) / 1000, fill: st.fillFrames });
      ratios.push(voice.stats().ratio);
    }
  });
  trace.startMsLast = msOf(voice.startFrames);
  if (ratios.length) {
    trace.ratioMean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    trace.ratioMax = Math.max(...ratios);
  }
  const held = voice.stats().driftTargetFrames;
  trace.heldMs = held === undefined ? undefined : msOf(held);
  trace.levelBeforeMs.sort((a, b) => a - b);
  trace.lateMs.sort((a, b) => a - b);
  const underruns = voice.stats().underruns;
  const path = wire ? wire.path() : 'Speaker.write on the JS thread';
  wire?.close();
  await speaker.close();
  return { ringMs: ringMs.sort((a, b) => a - b), delayMs: delayMs.sort((a, b) => a - b), underruns, cpuMsPerAudioS: r.cpuMs / r.seconds, fills, trace, path };
}

/** One line for a row's note: what the policy held and what the Writes needed. */
function describeTrace(t: PlayTrace): string {
  const p = (xs: number[], q: number): string => percentile(xs, q).toFixed(1);
  return (
    `level before a Write p1/p50 ${p(t.levelBeforeMs, 1)}/${p(t.levelBeforeMs, 50)} ms; Write lateness p50/p99/max ${p(t.lateMs, 50)}/${p(t.lateMs, 99)}/${t.lateMs[t.lateMs.length - 1]?.toFixed(1)} ms, ` +
    `first Write ${t.firstLateMs?.toFixed(1)} ms late; start threshold ${t.startMsFirst.toFixed(1)} -> ${t.startMsLast.toFixed(1)} ms; playing ${t.startAfterMs ?? '?'} ms after the first Write; ` +
    `drift ratio mean/max ${t.ratioMean.toFixed(4)}/${t.ratioMax.toFixed(4)}, level held at the end ${t.heldMs?.toFixed(1) ?? '-'} ms`
  );
}

function meanFill(fills: Array<{ t: number; fill: number }>, a: number, b: number): number {
  const xs = fills.filter((f) => f.t >= a && f.t < b).map((f) => f.fill);
  return xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
}

async function sinkInputLatencies(pa: Pulse, appName: string, samples: number): Promise<{ bufferMs: number; sinkMs: number }> {
  const buf: number[] = [];
  const sink: number[] = [];
  for (let i = 0; i < samples; i++) {
    const r = await pa.run('pactl', ['--format=json', 'list', 'sink-inputs']);
    const list = JSON.parse(r.stdout) as Array<{ properties?: Record<string, string>; buffer_latency_usec?: number; sink_latency_usec?: number }>;
    const s = list.find((x) => (x.properties?.['application.name'] ?? '').toLowerCase().includes(appName.toLowerCase()));
    if (s?.buffer_latency_usec !== undefined) buf.push(s.buffer_latency_usec / 1000);
    if (s?.sink_latency_usec !== undefined) sink.push(s.sink_latency_usec / 1000);
    await sleep(200);
  }
  buf.sort((a, b) => a - b);
  sink.sort((a, b) => a - b);
  return { bufferMs: percentile(buf, 50), sinkMs: percentile(sink, 50) };
}

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const secs = (s: number): number => Math.max(5, Math.round(s * ctx.durationScale));
  // QDB_BENCH_AUDIO=q256,busy256 (any of q256, busy256, q1024, cpu, underruns, drift, pa) runs only those
  // parts, for A/B runs of one policy change; unset (the default, and `npm run bench`) runs all.
  const only = (process.env.QDB_BENCH_AUDIO ?? '').split(',').filter(Boolean);
  const want = (part: string): boolean => only.length === 0 || only.includes(part);

  // 1 + 2: latency at two quanta, CPU.
  for (const quantum of [256, 1024]) {
    const q = `q${quantum}`;
    if (!want(q) && !(quantum === 256 ? want('busy256') : ['cpu', 'underruns', 'drift'].some(want))) continue;
    const pw = await startPipeWire({ quantum });
    try {
      const backend = (await selectAudioBackend('pipewire', { env: pw.env }))!;
      // The target (issue 17): one QEMU block + one quantum (at the graph's 48 kHz) + 2 ms.
      const targetMs = (BLOCK / RATE) * 1000 + (quantum / 48000) * 1000 + 2;
      const r = want(q) ? await play(backend, secs(20)) : undefined;
      if (r) ctx.log(`PipeWire quantum ${quantum}, ${secs(20)} s of QEMU-paced playback (${r.path}): ${describeTrace(r.trace)}`);
      if (r) {
        ctx.log(`same with --audio-latency 20 (the fixed prebuffer before issue 17), ${secs(20)} s`);
        const fixed = await play(backend, secs(20), { latencyMs: 20 });
        rows.push({
          name: `PipeWire Q=${quantum}: Write -> graph, ring wait of a frame, p50`,
          value: percentile(r.ringMs, 50),
          unit: 'ms',
          baseline: { name: 'graph delay (pw_stream_get_time)', value: percentile(r.delayMs, 50) },
          better: 'lower',
          note:
            `target <= ${targetMs.toFixed(1)} ms; ring wait p99 ${percentile(r.ringMs, 99).toFixed(1)} ms, max ${r.ringMs[r.ringMs.length - 1]?.toFixed(1)} ms; underruns ${r.underruns}; ` +
            `with --audio-latency 20: p50 ${percentile(fixed.ringMs, 50).toFixed(1)} ms, p99 ${percentile(fixed.ringMs, 99).toFixed(1)} ms, underruns ${fixed.underruns}; total added = ring + graph delay; ${describeTrace(r.trace)}; ${r.path}`,
        });
      }
      if (quantum === 256 && want('busy256')) {
        // 3a: the latency target holds only with no underrun at this quantum with the other core busy.
        ctx.log(`underruns at quantum 256: ${secs(60)} s with a busy core`);
        const hog = busyCore();
        try {
          const busy = await play(backend, secs(60));
          rows.push({
            name: `underruns in ${secs(60)} s at Q=256, other core busy (default prebuffer)`,
            value: busy.underruns,
            unit: 'count',
            baseline: r ? { name: `same machine as it is, ${secs(20)} s`, value: r.underruns } : undefined,
            better: 'lower',
            note: `ring wait p50/p99 busy ${percentile(busy.ringMs, 50).toFixed(1)}/${percentile(busy.ringMs, 99).toFixed(1)} ms, target <= ${targetMs.toFixed(1)} ms; ${describeTrace(busy.trace)}; ${busy.path}`,
          });
        } finally {
          hog.kill('SIGKILL');
        }
      }
      if (quantum === 1024 && want('cpu')) {
        // Its own run: the level trace reads the stats before every Write, which the bridge does not.
        ctx.log(`CPU: ${secs(20)} s without the level trace, then the feeder alone (no-op handler) for the baseline`);
        const cpu = await play(backend, secs(20), { trace: false, js: true });
        const base = await feed(noopHandler, 1n, secs(20));
        rows.push({
          name: 'CPU per second of audio (node: JS + native, 44.1 kHz S16 stereo)',
          value: cpu.cpuMsPerAudioS,
          unit: 'ms/s',
          baseline: { name: 'same QEMU-paced feeder, no-op handler', value: base.cpuMs / base.seconds },
          better: 'lower',
          note: `${cpu.path} (the baseline has no socket to write; the intake path's CPU is in the scale and wakeups benches, per bridge process and thread)`,
        });
      }
      if (quantum === 1024 && want('underruns')) {
        // 3: underruns with the other core busy, default 20 ms target.
        ctx.log(`underruns: ${secs(60)} s idle machine, then ${secs(60)} s with a busy core`);
        const calm = await play(backend, secs(60));
        const hog = busyCore();
        try {
          const busy = await play(backend, secs(60));
          rows.push({
            name: `underruns in ${secs(60)} s, other core busy (default prebuffer)`,
            value: busy.underruns,
            unit: 'count',
            baseline: { name: 'same, machine as it is', value: calm.underruns },
            better: 'lower',
            note: `ring wait p50/p99 busy ${percentile(busy.ringMs, 50).toFixed(1)}/${percentile(busy.ringMs, 99).toFixed(1)} ms vs ${percentile(calm.ringMs, 50).toFixed(1)}/${percentile(calm.ringMs, 99).toFixed(1)} ms; busy: ${describeTrace(busy.trace)}; ${busy.path}`,
          });
        } finally {
          hog.kill('SIGKILL');
        }
      }
      if (quantum === 1024 && want('drift')) {
        // 4: drift.
        ctx.log(`drift: ${secs(60)} s with QEMU 0.3 % fast, with and without control`);
        const d = secs(60);
        const ctl = await play(backend, d, { drift: 0.003 });
        const raw = await play(backend, d, { drift: 0.003, driftControl: false });
        const growth = (p: PlayResult): number => ((meanFill(p.fills, d - 5, d) - meanFill(p.fills, 2, 7)) / RATE) * 1000;
        rows.push({
          name: `fill growth over ${d} s, QEMU clock +0.3 %, drift control`,
          value: growth(ctl),
          unit: 'ms',
          baseline: { name: 'same without drift control', value: growth(raw) },
          better: 'lower',
          note: `underruns with control ${ctl.underruns}, without ${raw.underruns}; ${ctl.path}`,
        });
      }
    } finally {
      await pw.stop();
    }
  }

  // 5: QEMU's own PulseAudio backend vs the bridge, same guest tone, same PulseAudio.
  if (!want('pa')) return rows;
  const pa = await startPulseAudio();
  try {
    ctx.log('guest tone through QEMU -audiodev pa');
    const g1 = await startGuest({ scenario: 'tone', audiodev: { pa: pa.server }, params: { tone_hz: 1000, tone_ms: 8000 } });
    let qemuPa: { bufferMs: number; sinkMs: number };
    try {
      await g1.waitForSerial(/MARK play-start/, 120_000);
      await sleep(1000);
      // QEMU's pa backend names its client after -name (the VM), its stream after the audiodev.
      qemuPa = await sinkInputLatencies(pa, g1.name, 10);
    } finally {
      await g1.stop();
    }
    ctx.log('same guest tone through the bridge (-audiodev dbus)');
    const g2 = await startGuest({ scenario: 'tone', params: { tone_hz: 1000, tone_ms: 8000 } });
    try {
      const vm = await QemuVm.connect({ busAddress: g2.busAddress, name: g2.name });
      const backend = (await selectAudioBackend('pulse', { env: pa.env }))!;
      const speaker = new Speaker({ vmName: g2.name, backend });
      await vm.addAudioOutListener(speaker);
      await g2.waitForSerial(/MARK play-start/, 120_000);
      await sleep(1000);
      const ringMs: number[] = [];
      const timer = setInterval(() => {
        for (const v of speaker.stats().voices) ringMs.push((v.fillFrames / v.rate) * 1000);
      }, 50);
      const ours = await sinkInputLatencies(pa, g2.name, 10);
      clearInterval(timer);
      ringMs.sort((a, b) => a - b);
      // Our fillFrames on PulseAudio already counts the server-side queue; PulseAudio's buffer
      // latency is the same queue seen by the server: report the server's view for both.
      rows.push({
        name: 'guest tone on PulseAudio: server buffer latency of the stream',
        value: ours.bufferMs,
        unit: 'ms',
        baseline: { name: "QEMU's own -audiodev pa, same guest", value: qemuPa.bufferMs },
        better: 'lower',
        note: `sink latency ours ${ours.sinkMs.toFixed(1)} ms vs QEMU pa ${qemuPa.sinkMs.toFixed(1)} ms; our ring+server queue p50 ${percentile(ringMs, 50).toFixed(1)} ms (QEMU's own mixing buffer before the pa stream is not visible)`,
      });
      await speaker.close();
      await vm.close();
    } finally {
      await g2.stop();
    }
  } finally {
    await pa.stop();
  }
  return rows;
}

// End-to-end audio timing on ONE host clock (CLOCK_MONOTONIC), for
// bench/audio-e2e.bench.ts: when the guest started a sound (its marker line, timestamped as it
// arrives) and when that sound began at the PipeWire sink (its onset in a timed capture of the
// sink's monitor).
//
// Marker line: the `bursts` guest scenario writes "burst <i>" on its second serial port (ttyS1)
// right before it writes the burst's first frame (guest/tone-bursts.c). QEMU passes ttyS1 to a
// unix socket (`-serial unix:<path>,server=on,wait=off`) that we read here; a line is stamped when
// its bytes reach our event loop. What that costs, the same for every audio path: the guest's
// tty write and 8250 interrupt (microseconds of guest time; the line is shorter than the UART's
// 16-byte FIFO), QEMU's serial emulation writing the bytes to the socket from the vCPU thread
// (synchronous, no baud-rate pacing) and the stamper's read() returning (below).
//
// Stamps: on a loaded machine our event loop may not run for tens of milliseconds, so neither the
// marker lines nor the capture's chunks are stamped by it. A small reader (STAMPER, Python) does
// read() + clock_gettime(CLOCK_MONOTONIC) in a SCHED_FIFO process (when we may: root) and passes
// each piece on framed with its time; a stamp is then late by the wake-up of a real-time thread
// (microseconds), not by our event loop. CLOCK_MONOTONIC is also the graph driver's clock.
//
// Capture: pw-record on the sink's monitor (stream.capture.sink=true) at the graph rate (no
// resampling), raw samples to a pipe that we read (`-`: pw-record then writes no WAV header;
// under `stdbuf -o0`, as stdio would otherwise hold them back in 4 KiB pieces, it writes each
// quantum as it gets it). pw-record runs SCHED_FIFO like the stamper (when root). Its data thread
// is SCHED_FIFO 88 either way (PipeWire's module-rt); time-shared, its main thread, the one this
// changes, was starved on a loaded core and the recording lost or repeated exactly one quantum (a
// 256-frame phase step) at a graph cycle run late, at the sink's monitor and at a playback node's
// output alike: 53 of 66 and 21 of 32 breaks found in two paths' busy bursts at load 3-8, 1 of 14
// and 1 of 50 with the main thread SCHED_FIFO. Those were the recorder's, not what the sink
// played, counted against whichever path it was recording.
// Each chunk is stamped when it arrives. The frame count is NOT a clock: on a loaded machine the
// graph driver skips cycles (seen: 0.65-1.4 s lost in 30 s at load 10), so a frame is timed only
// from the chunks that arrived with it or shortly after it. The graph
// cycle that gave the sink the quantum [E - Q, E) began at  arrival - d  for the chunk ending at
// frame E, where d >= 0 is that chunk's delivery delay (pw-record's process call, one pipe write,
// the stamper's read()). Frame f of that quantum passed the sink at cycle start + (f - (E - Q))/rate,
// so  t(f) = arrival - d - (E - f)/rate + Q/rate  for the chunk holding f, and for a later chunk
// the same expression is late by the cycles the driver skipped in between. We take the smallest
// value over the chunk holding f and the next ~100 ms of chunks (the fastest delivered one). Error
// bound: late by that chunk's d plus any cycles skipped between f and it, never early; typically
// tens of microseconds to ~1 ms, the same for every path. Onset time = the start of the graph
// cycle in which the sink took the tone's first frame, plus the frame's offset in it. The graph
// quantum Q must not change during the capture (the bench forces it).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import type { Readable } from 'stream';
import { clientEnv, codedError, dieWithParent } from './audio-tools';
import { findDiscontinuities, findSilenceGaps } from './audio-capture';
import type { PipeWire } from './pipewire';
import { sleep, waitFor } from './procs';

// ---------------------------------------------------------------------------------------------
// Stamper: read() -> [u64 CLOCK_MONOTONIC ns][u32 length][bytes] on stdout

const STAMPER = `
import os, socket, struct, sys, time
src = sys.argv[1]
if src == '-':
    fd = 0
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(src)
    fd = s.fileno()
out = sys.stdout.buffer
while True:
    d = os.read(fd, 65536)
    t = time.monotonic_ns()
    if not d:
        break
    out.write(struct.pack('<QI', t, len(d)) + d)
    out.flush()
`;

interface Stamper {
  readonly proc: ChildProcess;
  /** whether it runs SCHED_FIFO */
  readonly realtime: boolean;
  stderr(): string;
  exited: Promise<void>;
}

/** Whether the stamper and the recorders run SCHED_FIFO: when we may (root). */
const REALTIME = process.getuid?.() === 0;

/**
 * The command line running `argv` (dying with us) SCHED_FIFO at priority 20 when REALTIME: below
 * PipeWire's own data threads (88), above everything time-shared (QEMU, the busy loop, the bridge's
 * main thread). Threads the program starts inherit the policy.
 */
function timingProcess(argv: string[]): [string, string[]] {
  return REALTIME ? dieWithParent('chrt', ['-f', '20', ...argv]) : dieWithParent(argv[0], argv.slice(1));
}

/** Starts the stamper on a unix socket (path) or on `stdin` (a child's stdout); `onPiece` gets CLOCK_MONOTONIC ms. */
function startStamper(source: string | Readable, onPiece: (atMs: number, data: Buffer) => void): Stamper {
  const realtime = REALTIME;
  const [cmd, args] = timingProcess(['python3', '-c', STAMPER, typeof source === 'string' ? source : '-']);
  const proc = spawn(cmd, args, { stdio: [typeof source === 'string' ? 'ignore' : source, 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  let buf: Buffer = Buffer.alloc(0);
  proc.stdout!.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 12) {
      const len = buf.readUInt32LE(8);
      if (buf.length < 12 + len) break;
      onPiece(Number(buf.readBigUInt64LE(0)) / 1e6, buf.subarray(12, 12 + len));
      buf = buf.subarray(12 + len);
    }
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return { proc, realtime, stderr: () => err, exited };
}

/** CLOCK_MONOTONIC in ms, the stamps' clock (libuv's hrtime reads the same clock). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Marker line

export interface StampedLine {
  text: string;
  /** CLOCK_MONOTONIC ms when the line's first byte was read */
  atMs: number;
}

export interface MarkerLine {
  readonly lines: readonly StampedLine[];
  /** whether the stamps come from a SCHED_FIFO reader */
  readonly realtime: boolean;
  /** Resolves with the first line matching `re` (already received or still to come). */
  waitFor(re: RegExp, timeoutMs: number): Promise<StampedLine>;
  close(): void;
}

/** Reads QEMU's listening serial socket (`-serial unix:<path>,server=on,wait=off`) through the stamper. */
export async function openMarkerLine(socketPath: string, timeoutMs = 30_000): Promise<MarkerLine> {
  await waitFor(`serial socket ${socketPath}`, timeoutMs, () => fs.existsSync(socketPath), 50);
  const lines: StampedLine[] = [];
  let partial = '';
  let partialAt = 0;
  let waiters: Array<() => void> = [];
  const st = startStamper(socketPath, (atMs, d) => {
    if (partial === '') partialAt = atMs;
    partial += d.toString('latin1');
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl).replace(/\r$/, '');
      partial = partial.slice(nl + 1);
      if (text) lines.push({ text, atMs: partialAt });
      partialAt = atMs; // what follows in this piece was read now
    }
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  let ended = false;
  void st.exited.then(() => (ended = true));
  return {
    lines,
    realtime: st.realtime,
    async waitFor(re, ms) {
      const end = Date.now() + ms;
      for (;;) {
        const hit = lines.find((l) => re.test(l.text));
        if (hit) return hit;
        if (Date.now() > end || ended) {
          const why = ended ? `the serial reader ended (${st.stderr().trim() || 'QEMU closed the socket'})` : `nothing within ${ms} ms`;
          throw codedError('EMARKER', `no marker line matching ${String(re)}: ${why} (got ${lines.length} lines, last '${lines.at(-1)?.text ?? ''}')`);
        }
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(Math.max(1, Math.min(500, end - Date.now())))]);
      }
    },
    close() {
      if (st.proc.exitCode === null) st.proc.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Timed capture of a sink's monitor

export interface TimedRecording {
  rate: number;
  quantum: number;
  /** Left channel. */
  left: Int16Array;
  /** One entry per chunk read from the pipe: its arrival (CLOCK_MONOTONIC ms) and the frame count after it. */
  chunks: Array<{ atMs: number; endFrame: number }>;
  /** whether the chunks were recorded and stamped SCHED_FIFO */
  realtime?: boolean;
}

export interface TimedCapture {
  readonly pid: number;
  /** Resolves once the recorder is linked to the sink's monitor. */
  readonly ready: Promise<void>;
  stop(): Promise<TimedRecording>;
}

/**
 * Records `pw`'s vm-sink monitor (stereo s16 at the graph rate) through a pipe, stamping each
 * chunk on arrival. `quantum` must be the graph's forced quantum (see forceQuantum). With
 * `node` (a playback stream's node.name), records what that node outputs instead: a second
 * consumer of its output ports, beside the sink (the same graph cycle feeds both).
 */
export function startTimedCapture(pw: PipeWire, quantum: number, o: { node?: string } = {}): TimedCapture {
  const rate = pw.rate;
  const name = `qdb-onset-${process.pid}-${Date.now()}`;
  const target = o.node ?? pw.sink;
  const props = o.node ? `{ node.name=${name} }` : `{ node.name=${name} stream.capture.sink=true }`;
  const args = ['--target', target, '-P', props, '--rate', String(rate), '--channels', '2', '--format', 's16', '-'];
  const [cmd, cmdArgs] = timingProcess(['stdbuf', '-o0', 'pw-record', ...args]);
  const proc: ChildProcess = spawn(cmd, cmdArgs, { env: clientEnv(pw.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const parts: Buffer[] = [];
  let bytes = 0;
  const chunks: Array<{ atMs: number; endFrame: number }> = [];
  const st = startStamper(proc.stdout!, (atMs, d) => {
    parts.push(d);
    bytes += d.length;
    chunks.push({ atMs, endFrame: Math.floor(bytes / 4) });
  });
  const exited = Promise.all([new Promise<void>((r) => proc.once('exit', () => r())), st.exited]);
  const ready = waitFor(`pw-record ${name} linked to ${target}`, 20_000, async () => {
    if (proc.exitCode !== null) throw new Error(`pw-record exited: ${stderr}`);
    const objs = await pw.pwDump();
    const node = objs.find((o) => o.type === 'PipeWire:Interface:Node' && o.info?.props?.['node.name'] === name);
    return node !== undefined && objs.some((o) => o.type === 'PipeWire:Interface:Link' && o.info?.['input-node-id'] === node.id);
  }, 100).then(() => undefined);
  ready.catch(() => undefined);
  return {
    pid: proc.pid ?? -1,
    ready,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGINT');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (bytes === 0) throw codedError('ENORECORDING', `pw-record delivered no audio: ${stderr} ${st.stderr()}`);
      const all = Buffer.concat(parts);
      const frames = Math.floor(all.length / 4);
      const left = new Int16Array(frames);
      for (let i = 0; i < frames; i++) left[i] = all.readInt16LE(i * 4);
      return { rate, quantum, left, chunks, realtime: st.realtime };
    },
  };
}

/** Pins the graph quantum (settings metadata clock.force-quantum), so every path runs the same graph. */
export async function forceQuantum(pw: PipeWire, quantum: number): Promise<void> {
  await pw.run('pw-metadata', ['-n', 'settings', '0', 'clock.force-quantum', String(quantum)]);
}

/** Chunks after the one holding a frame that still time it (~100 ms at 48 kHz, Q = 256). */
const TIMING_CHUNKS = 20;

/** CLOCK_MONOTONIC ms at which frame `frame` passed the sink (see the header for the estimate). */
export function frameTimeMs(rec: TimedRecording, frame: number): number {
  let best = Infinity;
  let used = 0;
  // chunks are in arrival order with growing endFrame: find the one holding the frame
  let i = rec.chunks.findIndex((c) => c.endFrame > frame);
  for (; i >= 0 && i < rec.chunks.length && used < TIMING_CHUNKS; i++, used++) {
    const c = rec.chunks[i];
    best = Math.min(best, c.atMs - ((c.endFrame - frame - rec.quantum) * 1000) / rec.rate);
  }
  if (!Number.isFinite(best)) throw codedError('ENOCHUNK', `no capture chunk holds frame ${frame}`);
  return best;
}

// ---------------------------------------------------------------------------------------------
// Onsets and glitches in the capture

/** Quiet: every sample within 1 % of full scale (a -6 dBFS tone is far above). */
const QUIET = 0.01 * 32768;

/** First frames of sounds that follow at least `quietMs` of quiet. */
export function findOnsets(rec: TimedRecording, quietMs: number): number[] {
  const need = Math.round((quietMs * rec.rate) / 1000);
  const out: number[] = [];
  let quiet = need; // the capture starts in silence
  for (let i = 0; i < rec.left.length; i++) {
    if (Math.abs(rec.left[i]) > QUIET) {
      if (quiet >= need) out.push(i);
      quiet = 0;
    } else quiet++;
  }
  return out;
}

export interface BurstGlitches {
  /** Silent runs of 5 ms or more inside the burst. */
  gaps: number;
  /** Breaks in the sine: dropped, repeated or zeroed frames (findDiscontinuities). */
  discontinuities: number;
  /** Where each gap and break begins, frames of the recording. */
  at: number[];
}

/** Gaps and discontinuities of one burst of a `hz` sine starting at `onset`, `ms` long as the guest wrote it. */
export function burstGlitches(rec: TimedRecording, onset: number, ms: number, hz: number): BurstGlitches {
  const seg = rec.left.subarray(onset, Math.min(rec.left.length, onset + Math.round((ms * rec.rate) / 1000)));
  const gaps = findSilenceGaps(seg, rec.rate);
  const breaks = findDiscontinuities(seg, rec.rate, hz);
  return { gaps: gaps.length, discontinuities: breaks.length, at: [...gaps.map((g) => onset + g.startFrame), ...breaks.map((d) => onset + d.frame)] };
}

/** A marker line matched with the onset that follows it. */
export interface Onset {
  burst: number;
  /** the guest's own underruns before this burst started (its marker's xruns=) */
  guestXruns: number;
  markerMs: number;
  /** onset time - marker arrival */
  latencyMs: number;
  frame: number;
}

/**
 * Pairs each "burst <i>" marker with the first onset at or after it, within `withinMs`. An onset
 * up to 20 ms before its marker is still taken (and shows as a negative latency, which would mean
 * the clocks are off), so it cannot be credited to the next marker instead.
 */
export function matchOnsets(markers: readonly StampedLine[], rec: TimedRecording, onsets: number[], withinMs: number): { matched: Onset[]; missing: number[] } {
  const times = onsets.map((f) => ({ f, t: frameTimeMs(rec, f) }));
  const matched: Onset[] = [];
  const missing: number[] = [];
  for (const m of markers) {
    const b = /^burst (\d+) xruns=(\d+)$/.exec(m.text);
    if (!b) continue;
    const hit = times.find((o) => o.t >= m.atMs - 20 && o.t < m.atMs + withinMs);
    if (hit) matched.push({ burst: Number(b[1]), guestXruns: Number(b[2]), markerMs: m.atMs, latencyMs: hit.t - m.atMs, frame: hit.f });
    else missing.push(Number(b[1]));
  }
  return { matched, missing };
}

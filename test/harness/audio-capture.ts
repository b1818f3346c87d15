// Getting audio in and out of the private sound servers with the stock tools, and the analysis the
// tests assert on. Recording: pw-record on the sink monitor (stream.capture.sink) or a source;
// parecord on <sink>.monitor or a source. Feeding the VM microphone: pw-play with autoconnect off
// plus pw-link into vm-mic (WirePlumber never links a playback stream into an Audio/Source/Virtual
// node), or paplay into PulseAudio's vm-mic-in null sink. Test tones come from sox.
import * as fs from 'fs';
import * as path from 'path';
import { AudioServer, clientEnv, codedError, dieWithParent, runTool, scratchDir } from './audio-tools';
import { Managed, spawnManaged, waitFor } from './procs';
import { pwDumpObjects } from './pipewire';

// ---------------------------------------------------------------------------------------------
// WAV files

export interface Wav {
  rate: number;
  channels: number;
  /** Interleaved signed 16-bit samples. */
  samples: Int16Array;
  /** samples.length / channels */
  frames: number;
}

/** Reads a 16-bit PCM WAV (plain or WAVE_FORMAT_EXTENSIBLE), tolerating a data size left unpatched by a killed writer. */
export function readWav(file: string): Wav {
  const buf = fs.readFileSync(file);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw codedError('EBADWAV', `${file}: not a RIFF/WAVE file (${buf.length} bytes)`);
  }
  let off = 12;
  let rate = 0;
  let channels = 0;
  let bits = 0;
  let format = 0;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      format = buf.readUInt16LE(body);
      channels = buf.readUInt16LE(body + 2);
      rate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === 0xfffe && size >= 26) format = buf.readUInt16LE(body + 24);
    } else if (id === 'data') {
      if (format !== 1 || bits !== 16 || channels < 1) {
        throw codedError('EBADWAV', `${file}: only 16-bit integer PCM is supported (format ${format}, ${bits} bits, ${channels} channels); record with format s16`);
      }
      // A writer killed before it patched the header leaves 0 or 0xffffffff here.
      if (size === 0 || size === 0xffffffff || body + size > buf.length) size = buf.length - body;
      const frameBytes = 2 * channels;
      const usable = size - (size % frameBytes);
      const samples = new Int16Array(usable / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(body + 2 * i);
      return { rate, channels, samples, frames: samples.length / channels };
    }
    off = body + size + (size & 1);
  }
  throw codedError('EBADWAV', `${file}: no data chunk`);
}

/** Writes interleaved 16-bit samples as a plain PCM WAV. */
export function writeWav(file: string, samples: Int16Array, rate: number, channels: number): void {
  const dataBytes = samples.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVEfmt ', 8, 'ascii');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(channels, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * channels * 2, 28);
  buf.writeUInt16LE(channels * 2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < samples.length; i++) buf.writeInt16LE(samples[i], 44 + 2 * i);
  fs.writeFileSync(file, buf);
}

export interface ToneOptions {
  hz: number;
  ms: number;
  rate?: number;
  channels?: number;
  /** Linear peak amplitude, 0..1 of full scale (default 0.5). */
  amplitude?: number;
  /** Silence before the tone (ms). PulseAudio loses the first ~10 ms of a new stream. */
  padBeforeMs?: number;
  /** Silence after the tone (ms). pw-play 0.3.65 drops its last ~1800 frames on exit. */
  padAfterMs?: number;
}

/** Generates a sine tone WAV (16-bit) with sox; -R keeps it reproducible (no dither). Returns file. */
export async function makeToneWav(file: string, o: ToneOptions): Promise<string> {
  const rate = o.rate ?? 48000;
  const channels = o.channels ?? 2;
  const amplitude = o.amplitude ?? 0.5;
  if (!(o.hz > 0 && o.hz < rate / 2)) throw codedError('EINVAL', `makeToneWav: hz ${o.hz} must be between 0 and rate/2 (${rate / 2})`);
  if (!(o.ms > 0)) throw codedError('EINVAL', `makeToneWav: ms ${o.ms} must be positive`);
  if (!(amplitude > 0 && amplitude <= 1)) throw codedError('EINVAL', `makeToneWav: amplitude ${amplitude} must be in (0, 1]`);
  const args = ['-R', '-n', '-r', String(rate), '-c', String(channels), '-b', '16', '-e', 'signed-integer', file];
  args.push('synth', String(o.ms / 1000), 'sine', String(o.hz), 'vol', String(amplitude));
  if (o.padBeforeMs || o.padAfterMs) args.push('pad', String((o.padBeforeMs ?? 0) / 1000), String((o.padAfterMs ?? 0) / 1000));
  await runTool('sox', args);
  return file;
}

// ---------------------------------------------------------------------------------------------
// Recording

export interface RecordOptions {
  /** Node/sink/source to record. Default: the server's sink (monitor) or source. */
  target?: string;
  rate?: number;
  channels?: number;
  /** Only s16 is supported: readWav reads 16-bit PCM. */
  format?: 's16';
  /** Directory for the WAV and the tool's log (default: a scratch dir removed at process exit, see scratchDir). */
  dir?: string;
  /** How long to wait for the recorder to be connected (default 20 s). */
  readyTimeoutMs?: number;
}

export interface Recording {
  file: string;
  samples: Int16Array;
  rate: number;
  channels: number;
  frames: number;
}

export interface RecordingHandle {
  readonly file: string;
  readonly pid: number;
  /** Resolves once the recorder is connected to its target (start playing after this). */
  readonly ready: Promise<void>;
  /** SIGINT (the tools finish the WAV header on SIGINT), wait for exit, read the file. */
  stop(): Promise<Recording>;
}

let seq = 0;
const uniqueName = (what: string): string => `qdb-${what}-${process.pid}-${++seq}`;

/** Records the monitor of a sink (default the server's vm-sink). */
export function recordSinkMonitor(server: AudioServer, opts: RecordOptions & { sink?: string } = {}): RecordingHandle {
  return startRecorder(server, opts.sink ?? opts.target ?? server.sink, true, opts);
}

/** Records a source (default the server's vm-mic), i.e. what the VM would hear. */
export function recordSource(server: AudioServer, opts: RecordOptions & { source?: string } = {}): RecordingHandle {
  return startRecorder(server, opts.source ?? opts.target ?? server.source, false, opts);
}

function startRecorder(server: AudioServer, target: string, monitor: boolean, opts: RecordOptions): RecordingHandle {
  const rate = opts.rate ?? 48000;
  const channels = opts.channels ?? 2;
  if ((opts.format ?? 's16') !== 's16') throw codedError('EINVAL', `record: format ${String(opts.format)} is not supported; use s16`);
  const dir = opts.dir ?? scratchDir('rec');
  const name = uniqueName('rec');
  const file = path.join(dir, `${name}.wav`);
  const logFile = path.join(dir, `${name}.log`);
  let proc: Managed;
  let ready: Promise<void>;
  const timeout = opts.readyTimeoutMs ?? 20_000;
  if (server.kind === 'pipewire') {
    const props = `{ node.name=${name} ${monitor ? 'stream.capture.sink=true' : ''} }`;
    const args = ['--target', target, '-P', props, '--rate', String(rate), '--channels', String(channels), '--format', 's16', file];
    proc = spawnManaged('pw-record', ...dieWithParent('pw-record', args), { env: clientEnv(server.env), logFile });
    // Connected = a link into our node exists (WirePlumber did the linking).
    ready = waitFor(`pw-record ${name} to be linked to ${target}`, timeout, async () => {
      if (!proc.isRunning()) throw new Error(`pw-record exited: ${proc.log().slice(-500)}`);
      return linkedInto(server, name);
    }, 100).then(() => undefined);
  } else {
    const device = monitor ? `${target}.monitor` : target;
    const args = [
      // Small latency: with the default 2 s buffer a monitor recording loses its start and end.
      '--latency-msec=10',
      ...['-d', device],
      `--client-name=${name}`,
      `--rate=${rate}`,
      `--channels=${channels}`,
      '--format=s16le',
      '--file-format=wav',
      file,
    ];
    proc = spawnManaged('parecord', ...dieWithParent('parecord', args), { env: clientEnv(server.env), logFile });
    ready = waitFor(`parecord ${name} to be connected to ${device}`, timeout, async () => {
      if (!proc.isRunning()) throw new Error(`parecord exited: ${proc.log().slice(-500)}`);
      return pulseStreamConnected(server, 'source-outputs', name);
    }, 100).then(() => undefined);
  }
  // Avoid an unhandled rejection when a caller never awaits ready; stop() reports failures itself.
  ready.catch(() => undefined);
  return {
    file,
    pid: proc.pid,
    ready,
    async stop() {
      if (proc.isRunning()) {
        proc.kill('SIGINT');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await proc.exited;
        clearTimeout(t);
      }
      if (!fs.existsSync(file)) throw codedError('ENORECORDING', `${proc.name} wrote no file ${file}: ${proc.log().slice(-1000)}`);
      const wav = readWav(file);
      return { file, ...wav };
    },
  };
}

async function linkedInto(server: AudioServer, nodeName: string): Promise<boolean> {
  const objs = await pwDumpObjects(server.env);
  const node = objs.find((o) => o.type === 'PipeWire:Interface:Node' && o.info?.props?.['node.name'] === nodeName);
  if (!node) return false;
  return objs.some((o) => o.type === 'PipeWire:Interface:Link' && (o.info?.['input-node-id'] === node.id || o.info?.['output-node-id'] === node.id));
}

async function pulseStreamConnected(server: AudioServer, kind: 'source-outputs' | 'sink-inputs', clientName: string): Promise<boolean> {
  const r = await runTool('pactl', ['--format=json', 'list', kind], { env: server.env });
  const streams = JSON.parse(r.stdout) as Array<{ properties?: Record<string, string> }>;
  return streams.some((s) => s.properties?.['application.name'] === clientName);
}

// ---------------------------------------------------------------------------------------------
// Playing into a sink

/**
 * paplay's server-side buffer. 10 ms underran on a loaded 2-core machine (5 ms of silence inserted
 * mid-tone); 100 ms has headroom. The start of a stream on a null sink is still cut by up to ~10 ms,
 * so tones for PulseAudio need leading silence (makeToneWav padBeforeMs).
 */
const PAPLAY_LATENCY_MS = 100;

/** Plays a WAV into a sink (default the server's vm-sink) and resolves when it has been played. */
export async function playToSink(server: AudioServer, wavFile: string, opts: { sink?: string; timeoutMs?: number } = {}): Promise<void> {
  if (!fs.existsSync(wavFile)) throw codedError('ENOENT', `playToSink: ${wavFile} does not exist; make one with makeToneWav()`);
  const sink = opts.sink ?? server.sink;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  if (server.kind === 'pipewire') await runTool('pw-play', ['--target', sink, wavFile], { env: server.env, timeoutMs });
  else await runTool('paplay', [`--latency-msec=${PAPLAY_LATENCY_MS}`, '-d', sink, wavFile], { env: server.env, timeoutMs });
}

// ---------------------------------------------------------------------------------------------
// Feeding the VM microphone

export interface FeedHandle {
  readonly pid: number;
  /** Resolves when the whole file has been played (the player exited with 0). */
  readonly done: Promise<void>;
  /** Stops playback early. */
  stop(): Promise<void>;
}

export interface FeedOptions {
  /** PipeWire: node to link into (default the server's vm-mic). PulseAudio: sink feeding the mic (default vm-mic-in). */
  target?: string;
  dir?: string;
  readyTimeoutMs?: number;
}

/** Plays wavFile into the VM microphone and resolves when it has been played. */
export async function feedSource(server: AudioServer, wavFile: string, opts: FeedOptions = {}): Promise<void> {
  const h = await startFeed(server, wavFile, opts);
  await h.done;
}

/** Starts playing wavFile into the VM microphone; resolves once audio is flowing into it. */
export async function startFeed(server: AudioServer, wavFile: string, opts: FeedOptions = {}): Promise<FeedHandle> {
  if (!fs.existsSync(wavFile)) throw codedError('ENOENT', `feedSource: ${wavFile} does not exist; make one with makeToneWav()`);
  const dir = opts.dir ?? scratchDir('feed');
  const name = uniqueName('feed');
  const logFile = path.join(dir, `${name}.log`);
  const timeout = opts.readyTimeoutMs ?? 20_000;
  let proc: Managed;
  if (server.kind === 'pipewire') {
    const target = opts.target ?? server.source;
    // autoconnect off: the stream waits unlinked (and does not run) until we link it into the mic.
    proc = spawnManaged('pw-play', ...dieWithParent('pw-play', ['--target', '0', '-P', `{ node.name=${name} node.autoconnect=false }`, wavFile]), {
      env: clientEnv(server.env),
      logFile,
    });
    const outPorts: string[] = await waitFor(`pw-play ${name} output ports`, timeout, async () => {
      if (!proc.isRunning()) throw new Error(`pw-play exited: ${proc.log().slice(-500)}`);
      const ports = await listPorts(server, '-o', name);
      return ports.length > 0 ? ports : undefined;
    }, 50).then((p) => p ?? []);
    const inPorts = await listPorts(server, '-i', target);
    if (inPorts.length === 0) throw codedError('ENOTARGET', `feedSource: PipeWire node ${target} has no input ports`);
    const channelOf = (port: string): string => port.slice(port.lastIndexOf('_') + 1);
    for (const out of outPorts) {
      const ch = channelOf(out);
      // A mono file (output_MONO) goes to every mic channel; otherwise channel to channel.
      const dests = ch === 'MONO' ? inPorts : inPorts.filter((p) => channelOf(p) === ch);
      for (const dest of dests) await runTool('pw-link', [out, dest], { env: server.env });
    }
  } else {
    const target = opts.target ?? (server as AudioServer & { micFeedSink?: string }).micFeedSink ?? 'vm-mic-in';
    proc = spawnManaged('paplay', ...dieWithParent('paplay', [`--latency-msec=${PAPLAY_LATENCY_MS}`, '-d', target, `--client-name=${name}`, wavFile]), {
      env: clientEnv(server.env),
      logFile,
    });
    await waitFor(`paplay ${name} to connect to ${target}`, timeout, async () => {
      // A short file may finish before we look: that still counts as connected when it exited with 0.
      if (!proc.isRunning()) return (await proc.exited) === 0 ? true : Promise.reject(new Error(`paplay failed: ${proc.log().slice(-500)}`));
      return pulseStreamConnected(server, 'sink-inputs', name);
    }, 50);
  }
  const done = proc.exited.then((code) => {
    if (code !== 0) throw codedError('EFEED', `${proc.name} ${wavFile} ended with ${code}: ${proc.log().slice(-1000)}`);
  });
  done.catch(() => undefined);
  return {
    pid: proc.pid,
    done,
    async stop() {
      await proc.stop(3000);
    },
  };
}

/** Port names ("node:port") of a node, from `pw-link -o` (outputs) or `-i` (inputs). */
async function listPorts(server: AudioServer, dirFlag: '-o' | '-i', nodeName: string): Promise<string[]> {
  const r = await runTool('pw-link', [dirFlag], { env: server.env });
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${nodeName}:`));
}

// ---------------------------------------------------------------------------------------------
// Analysis. Samples are interleaved Int16; `channels` says how many (default 1).

/** One channel of interleaved samples. */
export function channel(samples: Int16Array, channels: number, index = 0): Int16Array {
  if (channels === 1) return samples;
  const out = new Int16Array(Math.floor(samples.length / channels));
  for (let i = 0; i < out.length; i++) out[i] = samples[i * channels + index];
  return out;
}

/** Root mean square as a fraction of full scale (0..1). */
export function rms(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length) / 32768;
}

/** Peak absolute value as a fraction of full scale. */
export function peak(samples: Int16Array): number {
  let p = 0;
  for (let i = 0; i < samples.length; i++) p = Math.max(p, Math.abs(samples[i]));
  return p / 32768;
}

function checkThreshold(fn: string, threshold: number): number {
  if (!(threshold > 0 && threshold < 1)) {
    throw codedError('EINVAL', `${fn}: threshold ${threshold} must be a fraction of full scale in (0, 1), e.g. 0.01`);
  }
  return threshold * 32768;
}

export interface Span {
  /** First frame whose magnitude exceeds the threshold. */
  startFrame: number;
  /** One past the last such frame. */
  endFrame: number;
}

/** First to last frame above threshold (fraction of full scale); null when everything is below. */
export function nonSilentSpan(samples: Int16Array, threshold = 0.01, channels = 1): Span | null {
  const limit = checkThreshold('nonSilentSpan', threshold);
  const frames = Math.floor(samples.length / channels);
  const loud = (f: number): boolean => {
    for (let c = 0; c < channels; c++) if (Math.abs(samples[f * channels + c]) > limit) return true;
    return false;
  };
  let start = 0;
  while (start < frames && !loud(start)) start++;
  if (start === frames) return null;
  let end = frames;
  while (end > start && !loud(end - 1)) end--;
  return { startFrame: start, endFrame: end };
}

export interface Gap extends Span {
  ms: number;
}

/** Silent runs of at least minGapMs strictly inside the non-silent span (dropouts in a tone). */
export function findSilenceGaps(samples: Int16Array, rate: number, o: { channels?: number; threshold?: number; minGapMs?: number } = {}): Gap[] {
  const channels = o.channels ?? 1;
  const limit = checkThreshold('findSilenceGaps', o.threshold ?? 0.01);
  const minFrames = Math.max(1, Math.round(((o.minGapMs ?? 5) * rate) / 1000));
  const span = nonSilentSpan(samples, o.threshold ?? 0.01, channels);
  if (!span) return [];
  const gaps: Gap[] = [];
  let runStart = -1;
  for (let f = span.startFrame; f < span.endFrame; f++) {
    let loud = false;
    for (let c = 0; c < channels; c++) if (Math.abs(samples[f * channels + c]) > limit) loud = true;
    if (!loud && runStart < 0) runStart = f;
    if (loud && runStart >= 0) {
      if (f - runStart >= minFrames) gaps.push({ startFrame: runStart, endFrame: f, ms: ((f - runStart) * 1000) / rate });
      runStart = -1;
    }
  }
  return gaps;
}

export interface Discontinuity {
  frame: number;
  /** Size of the jump relative to the tone's peak. */
  severity: number;
}

/**
 * Places where a pure sine of expectedHz breaks: a sine obeys x[n+1] = 2cos(w)x[n] - x[n-1], so
 * the residual of that recurrence is ~0 (a few LSB of rounding) except where samples were dropped,
 * repeated or zeroed. Only the non-silent span is examined (its first and last period skipped:
 * that is where the tone starts and ends). A drop of exactly a whole number of periods cannot be
 * seen by any test on a steady sine.
 */
export function findDiscontinuities(samples: Int16Array, rate: number, expectedHz: number, o: { channels?: number; tolerance?: number } = {}): Discontinuity[] {
  const channels = o.channels ?? 1;
  const x = channel(samples, channels, 0);
  const span = nonSilentSpan(x, 0.01, 1);
  if (!span) return [];
  const a = 2 * Math.cos((2 * Math.PI * expectedHz) / rate);
  let pk = 0;
  for (let i = span.startFrame; i < span.endFrame; i++) pk = Math.max(pk, Math.abs(x[i]));
  const limit = (o.tolerance ?? 0.05) * pk;
  const period = Math.ceil(rate / expectedHz);
  const out: Discontinuity[] = [];
  let lastHit = -Infinity;
  for (let n = span.startFrame + period; n < span.endFrame - period; n++) {
    const r = Math.abs(x[n + 1] - a * x[n] + x[n - 1]);
    if (r > limit) {
      // One event per glitch: the residual stays high for a couple of samples around it.
      if (n - lastHit > period) out.push({ frame: n, severity: r / pk });
      else if (out.length > 0) out[out.length - 1].severity = Math.max(out[out.length - 1].severity, r / pk);
      lastHit = n;
    }
  }
  return out;
}

/**
 * Strongest frequency in Hz (0 for silence): Hann-windowed FFT over up to 65536 frames from the
 * middle of the non-silent span, zero-padded to at least 16384 points, with parabolic
 * interpolation between bins (accurate to well under 1 Hz for a clean tone of 100 ms or more).
 */
export function dominantFrequency(samples: Int16Array, rate: number, o: { channels?: number; minHz?: number; maxHz?: number } = {}): number {
  const x = channel(samples, o.channels ?? 1, 0);
  const span = nonSilentSpan(x, 0.001, 1);
  if (!span) return 0;
  const len = span.endFrame - span.startFrame;
  let n = 1;
  while (n * 2 <= Math.min(len, 65536)) n *= 2;
  const size = Math.max(16384, n);
  const re = new Float64Array(size);
  const im = new Float64Array(size);
  const from = span.startFrame + Math.floor((len - n) / 2);
  for (let i = 0; i < n; i++) re[i] = x[from + i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1 || 1)));
  fft(re, im);
  const lo = Math.max(1, Math.floor(((o.minHz ?? 20) * size) / rate));
  const hi = Math.min(size / 2 - 1, Math.ceil(((o.maxHz ?? rate / 2) * size) / rate));
  let best = lo;
  let bestMag = -1;
  const mag = (k: number): number => Math.hypot(re[k], im[k]);
  for (let k = lo; k <= hi; k++) {
    const m = mag(k);
    if (m > bestMag) {
      bestMag = m;
      best = k;
    }
  }
  if (bestMag <= 0) return 0;
  const l = Math.log(mag(best - 1) + 1e-12);
  const c = Math.log(bestMag + 1e-12);
  const r = Math.log(mag(best + 1) + 1e-12);
  const denom = l - 2 * c + r;
  const delta = denom === 0 ? 0 : (0.5 * (l - r)) / denom;
  return ((best + delta) * rate) / size;
}

/** In-place iterative radix-2 FFT; re.length must be a power of two. */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const ar = re[i + k + len / 2] * cr - im[i + k + len / 2] * ci;
        const ai = re[i + k + len / 2] * ci + im[i + k + len / 2] * cr;
        re[i + k + len / 2] = re[i + k] - ar;
        im[i + k + len / 2] = im[i + k] - ai;
        re[i + k] += ar;
        im[i + k] += ai;
        const t = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = t;
      }
    }
  }
}

export interface AlignedMatch {
  /** Frame in the recording where frame 0 of the reference lines up (may be negative). */
  offsetFrames: number;
  /** Reference frames (of the compared range) that have a counterpart in the recording. */
  comparedFrames: number;
  /** Of those, frames equal in every channel. */
  exactFrames: number;
  /** Largest absolute sample difference (int16 units) over the compared frames. */
  maxAbsErr: number;
}

/**
 * Lines a recording up with the reference it was made from and compares them sample by sample
 * (a PipeWire null-sink round trip of s16 is bit-exact). Alignment: the first 64 non-silent
 * reference frames are searched for verbatim in the recording; when they occur nowhere (the path
 * is not exact), the offset with the least squared error near the recording's own start of sound
 * is used. By default only the reference's non-silent span is compared (o.compare 'all': every
 * frame, padding included). Use a signal that does not repeat (e.g. a 997 Hz tone at 48 kHz) so the offset is unique.
 */
export function alignedMatch(reference: Int16Array, recording: Int16Array, channels: number, o: { compare?: 'sound' | 'all' } = {}): AlignedMatch | null {
  const refSpan = nonSilentSpan(reference, 0.01, channels);
  const recSpan = nonSilentSpan(recording, 0.01, channels);
  if (!refSpan || !recSpan) return null;
  const refFrames = reference.length / channels;
  const recFrames = recording.length / channels;
  const win = Math.min(64, refSpan.endFrame - refSpan.startFrame);
  const r0 = refSpan.startFrame;
  const matchesAt = (pos: number): boolean => {
    for (let i = 0; i < win * channels; i++) if (recording[pos * channels + i] !== reference[r0 * channels + i]) return false;
    return true;
  };
  let found = -1;
  for (let pos = 0; pos + win <= recFrames; pos++) {
    if (matchesAt(pos)) {
      found = pos;
      break;
    }
  }
  let offset: number;
  if (found >= 0) {
    offset = found - r0;
  } else {
    let best = Infinity;
    offset = recSpan.startFrame - r0;
    const center = recSpan.startFrame;
    for (let pos = Math.max(0, center - 2048); pos <= Math.min(recFrames - win, center + 2048); pos++) {
      let err = 0;
      for (let i = 0; i < win * channels && err < best; i++) {
        const d = recording[pos * channels + i] - reference[r0 * channels + i];
        err += d * d;
      }
      if (err < best) {
        best = err;
        offset = pos - r0;
      }
    }
  }
  let compared = 0;
  let exact = 0;
  let maxAbsErr = 0;
  // 'sound' (default): only the reference's non-silent span, so padding lost at the ends does not count.
  const [from, to] = (o.compare ?? 'sound') === 'sound' ? [refSpan.startFrame, refSpan.endFrame] : [0, refFrames];
  for (let f = Math.max(from, -offset); f < to && f + offset < recFrames; f++) {
    compared++;
    let same = true;
    for (let c = 0; c < channels; c++) {
      const d = Math.abs(recording[(f + offset) * channels + c] - reference[f * channels + c]);
      if (d !== 0) same = false;
      if (d > maxAbsErr) maxAbsErr = d;
    }
    if (same) exact++;
  }
  return { offsetFrames: offset, comparedFrames: compared, exactFrames: exact, maxAbsErr };
}

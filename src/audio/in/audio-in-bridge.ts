// AudioInHandler: the host microphone as QEMU's audio input (org.qemu.Display1.AudioInListener).
//
// QEMU's main loop is BLOCKED while it waits for our Read reply (the lab measured a 20 ms reply
// stretching a 1 s guest recording to 1.5 s), so read() answers at once with exactly `size`
// bytes: whatever the capture ring holds, then silence. Padding is counted, never waited out:
// under TCG QEMU asks ~1.37x faster than real time, so a real-time source cannot fill every
// Read.
//
// Privacy: a capture stream exists only while the guest has its input voice enabled
// (SetEnabled(true) .. SetEnabled(false)/Fini). No microphone is open while the guest is not
// recording.
//
// The stream is opened in the guest's format (the server converts and resamples), so the bytes
// from the ring are guest bytes, except S8/U16/U32, captured as their signed/unsigned twin and
// flipped back here. The guest's volume/mute (SetVolume) is applied to what the guest receives.
import type { AudioInHandler, PcmFormat } from '../../qemu/handlers';
import type { CaptureStream, OpenCapture } from './capture-source';
import { GuestSampleLayout, applyGains, fillSilence, flipSignBits, gainOf, layoutOf } from './pcm';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string) => void;
/** The service's Logger (src/log.ts) fits too. */
export type LogSink = LogFn | Record<'info' | 'warn' | 'error', (message: string) => void>;

export interface AudioInBridgeOptions {
  vmName: string;
  /** --audio-source NAME; undefined = the server's default source. */
  source?: string;
  /** PipeWire remote / PulseAudio server; undefined = from the environment. */
  remote?: string;
  openCapture: OpenCapture;
  log?: LogSink;
  /** Capture period asked of the server (default 10 ms: QEMU 7.2 reads ~10 ms per Read). */
  periodMs?: number;
  /** Ring capacity (default 500 ms): beyond it the native side drops the oldest audio. */
  ringMs?: number;
  /**
   * When more than this is queued (the guest reads slower than real time, or stalled), the
   * oldest audio is dropped down to `targetLatencyMs`, so the guest hears the present
   * (default 150 ms).
   */
  maxLatencyMs?: number;
  /** Default 40 ms. */
  targetLatencyMs?: number;
  /**
   * Queued audio needed before answering with microphone data, at the start and after every
   * underrun (default 30 ms).
   */
  prebufferMs?: number;
  /** Delay before reopening a capture stream the server failed (default 1000 ms, doubled up to 10 s). */
  retryMs?: number;
  /** `capturing` may have changed (a stream opened or closed): called from that event. */
  onChange?: () => void;
}

export interface VoiceInStats {
  id: bigint;
  format: string;
  enabled: boolean;
  muted: boolean;
  /** Linear gain per channel from the guest's last SetVolume (1 = 255). */
  gains: number[];
  state: string;
  error?: string;
  reads: number;
  requestedBytes: number;
  /** Bytes that came from the microphone. */
  capturedBytes: number;
  /** Bytes of silence added because the ring had less than QEMU asked for. */
  paddedBytes: number;
  /** Reads that needed any padding. */
  paddedReads: number;
  /** Times the ring ran dry while the guest recorded (each is one gap in what the guest hears). */
  underruns: number;
  /** Padding before the first microphone byte arrived after SetEnabled(true) (stream start-up). */
  startupPaddedBytes: number;
  /** Queued audio dropped to keep latency under maxLatencyMs. */
  discardedBytes: number;
  /** Native ring overruns (nobody read in time). */
  overrunBytes: number;
  opens: number;
  openErrors: number;
}

interface Voice {
  id: bigint;
  format: PcmFormat;
  layout?: GuestSampleLayout;
  enabled: boolean;
  muted: boolean;
  gains: number[];
  unity: boolean;
  stream?: CaptureStream;
  /** Bumped on every open/close so late events from an old stream are ignored. */
  generation: number;
  state: string;
  error?: string;
  sawData: boolean;
  /** Answering silence until prebufferMs is queued (start, and after an underrun). */
  priming: boolean;
  retryTimer?: NodeJS.Timeout;
  retryDelayMs: number;
  stats: Omit<VoiceInStats, 'id' | 'format' | 'enabled' | 'muted' | 'gains' | 'state' | 'error'>;
}

const defaultLog: LogFn = (level, message) => {
  if (level !== 'info') console.error(`audio-in: ${message}`);
};

export class AudioInBridge implements AudioInHandler {
  private readonly voices = new Map<bigint, Voice>();
  private readonly log: LogFn;
  private readonly periodMs: number;
  private readonly ringMs: number;
  private readonly maxLatencyMs: number;
  private readonly targetLatencyMs: number;
  private readonly prebufferMs: number;
  private readonly retryMs: number;
  /** Reused reply buffer: the D-Bus layer marshals the reply before read() is called again. */
  private scratch = new Uint8Array(8192);
  /** Reply for a voice we know nothing about (QEMU bug or race): zeros. */
  private unknownWarned = false;

  constructor(private readonly opts: AudioInBridgeOptions) {
    const sink = opts.log;
    this.log = typeof sink === 'function' ? sink : sink ? (level, message) => sink[level](message) : defaultLog;
    this.periodMs = opts.periodMs ?? 10;
    this.ringMs = opts.ringMs ?? 500;
    this.maxLatencyMs = opts.maxLatencyMs ?? 150;
    this.targetLatencyMs = Math.min(opts.targetLatencyMs ?? 40, this.maxLatencyMs);
    this.retryMs = opts.retryMs ?? 1000;
    this.prebufferMs = Math.min(opts.prebufferMs ?? 30, this.targetLatencyMs);
  }

  init(id: bigint, format: PcmFormat): void {
    const old = this.voices.get(id);
    if (old) this.closeStream(old);
    const v: Voice = {
      id,
      format,
      enabled: false,
      muted: false,
      gains: [],
      unity: true,
      generation: 0,
      state: 'idle',
      sawData: false,
      priming: true,
      retryDelayMs: this.retryMs,
      stats: {
        reads: 0,
        requestedBytes: 0,
        capturedBytes: 0,
        paddedBytes: 0,
        paddedReads: 0,
        underruns: 0,
        startupPaddedBytes: 0,
        discardedBytes: 0,
        overrunBytes: 0,
        opens: 0,
        openErrors: 0,
      },
    };
    try {
      v.layout = layoutOf(format);
    } catch (e) {
      v.state = 'error';
      v.error = (e as Error).message;
      this.log('error', `voice ${id}: ${v.error}; the guest will record silence`);
    }
    this.voices.set(id, v);
  }

  fini(id: bigint): void {
    const v = this.voices.get(id);
    if (!v) return;
    this.closeStream(v);
    this.voices.delete(id);
  }

  setEnabled(id: bigint, enabled: boolean): void {
    const v = this.voices.get(id);
    if (!v || v.enabled === enabled) return;
    v.enabled = enabled;
    if (enabled) this.openStream(v);
    else this.closeStream(v);
  }

  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void {
    const v = this.voices.get(id);
    if (!v) return;
    v.muted = mute;
    const channels = v.format.nchannels;
    v.gains = [];
    for (let c = 0; c < channels; c++) v.gains.push(gainOf(volume[c] ?? volume[volume.length - 1] ?? 255));
    v.unity = v.gains.every((g) => g === 1);
  }

  read(id: bigint, size: number): Uint8Array {
    if (this.scratch.byteLength < size) this.scratch = new Uint8Array(Math.max(size, this.scratch.byteLength * 2));
    const out = this.scratch.subarray(0, size);
    const v = this.voices.get(id);
    if (!v || !v.layout) {
      if (!v && !this.unknownWarned) {
        this.unknownWarned = true;
        this.log('warn', `Read for unknown voice ${id}: answering silence`);
      }
      out.fill(0);
      return out;
    }
    const l = v.layout;
    const s = v.stats;
    s.reads++;
    s.requestedBytes += size;
    let got = 0;
    if (v.enabled && v.stream) {
      const avail = v.stream.available();
      if (avail > this.bytesFor(v, this.maxLatencyMs)) s.discardedBytes += v.stream.discard(avail - this.bytesFor(v, this.targetLatencyMs));
      // Jitter buffer: after the start and after every underrun, answer silence until
      // prebufferMs is queued again. A reader faster than real time (QEMU under TCG) then sees
      // a few longer gaps instead of a crackle of tiny ones in every Read, and a real-time
      // reader keeps that cushion against the server's period jitter.
      if (v.priming && avail >= this.bytesFor(v, this.prebufferMs)) v.priming = false;
      if (!v.priming) {
        // Never ask the ring for more than it can hold: a Read of megabytes (QEMU asks for one
        // period) gets at most a ring's worth of microphone audio, the rest is silence below.
        const want = Math.min(size - (size % l.bytesPerFrame), this.ringFrames(v) * l.bytesPerFrame);
        got = v.stream.read(out, 0, want);
        if (got < want) {
          v.priming = true;
          if (v.sawData || got > 0) s.underruns++;
        }
      }
      if (got > 0) {
        v.sawData = true;
        s.capturedBytes += got;
        if (l.flipSign) flipSignBits(l, out, 0, got);
        if (v.muted) fillSilence(l, out, 0, got);
        else if (!v.unity) applyGains(l, out, 0, got, v.gains);
      }
    }
    if (got < size) {
      fillSilence(l, out, got, size);
      if (v.enabled) {
        // Silence while the guest records: padding. Counted apart until the first microphone
        // byte (stream start-up), so a steady-state figure is not hidden by the link-up time.
        if (v.sawData) {
          s.paddedBytes += size - got;
          s.paddedReads++;
        } else {
          s.startupPaddedBytes += size - got;
        }
      }
    }
    return out;
  }

  /** Per-voice counters (status line, bench, tests). */
  stats(): VoiceInStats[] {
    return [...this.voices.values()].map((v) => ({
      id: v.id,
      format: v.layout?.guest ?? 'unsupported',
      enabled: v.enabled,
      muted: v.muted,
      gains: v.gains.length ? [...v.gains] : new Array<number>(v.format.nchannels).fill(1),
      state: v.state,
      ...(v.error !== undefined ? { error: v.error } : {}),
      ...v.stats,
      overrunBytes: v.stats.overrunBytes + (v.stream?.stats().overrunBytes ?? 0),
    }));
  }

  /** Is any microphone stream open now? (privacy check for status and tests) */
  get capturing(): boolean {
    for (const v of this.voices.values()) if (v.stream) return true;
    return false;
  }

  /** Closes every stream (VM gone, service stopping). The handler can be reused after init(). */
  close(): void {
    for (const v of this.voices.values()) this.closeStream(v);
    this.voices.clear();
  }

  /** Capture ring size: also the most one Read takes from it (nothing beyond it is ever queued). */
  private ringFrames(v: Voice): number {
    return Math.max(256, Math.round((this.ringMs * v.format.freq) / 1000));
  }

  private bytesFor(v: Voice, ms: number): number {
    return Math.ceil((ms * v.format.freq) / 1000) * v.format.bytesPerFrame;
  }

  private openStream(v: Voice): void {
    if (!v.layout || v.stream) return;
    clearTimeout(v.retryTimer);
    v.retryTimer = undefined;
    const gen = ++v.generation;
    const rate = v.format.freq;
    v.sawData = false;
    v.priming = true;
    v.error = undefined;
    v.state = 'connecting';
    v.stats.opens++;
    try {
      const stream = this.opts.openCapture({
        format: v.layout.capture,
        rate,
        channels: v.layout.channels,
        ...(this.opts.source !== undefined ? { source: this.opts.source } : {}),
        ...(this.opts.remote !== undefined ? { remote: this.opts.remote } : {}),
        vmName: this.opts.vmName,
        latencyFrames: Math.max(16, Math.round((this.periodMs * rate) / 1000)),
        ringFrames: this.ringFrames(v),
        onState: (state, message) => this.onStreamState(v, gen, state, message),
      });
      // The server may have failed it synchronously (closeStream bumped the generation).
      if (gen !== v.generation) stream.close();
      else {
        v.stream = stream;
        this.opts.onChange?.();
      }
    } catch (e) {
      v.stats.openErrors++;
      v.state = 'error';
      v.error = (e as Error).message;
      this.log('error', `cannot open the microphone${this.opts.source ? ` '${this.opts.source}'` : ''}: ${v.error}; the guest records silence`);
      this.scheduleRetry(v);
    }
  }

  private onStreamState(v: Voice, gen: number, state: string, message: string): void {
    // A closed stream's late event. (May run before openCapture() has returned: a server is
    // free to report a state synchronously.)
    if (gen !== v.generation) return;
    v.state = state;
    if (state === 'streaming') {
      v.retryDelayMs = this.retryMs;
      return;
    }
    if (state === 'error') {
      v.error = message;
      this.log('error', `microphone stream failed: ${message}; retrying in ${v.retryDelayMs} ms (the guest records silence meanwhile)`);
      this.closeStream(v, true);
      this.scheduleRetry(v);
    }
  }

  private scheduleRetry(v: Voice): void {
    if (!v.enabled) return;
    const delay = v.retryDelayMs;
    v.retryDelayMs = Math.min(delay * 2, 10_000);
    v.retryTimer = setTimeout(() => {
      v.retryTimer = undefined;
      if (v.enabled && !v.stream && this.voices.get(v.id) === v) this.openStream(v);
    }, delay);
    v.retryTimer.unref();
  }

  private closeStream(v: Voice, keepState = false): void {
    if (!keepState) {
      clearTimeout(v.retryTimer);
      v.retryTimer = undefined;
    }
    v.generation++;
    if (v.stream) {
      v.stats.overrunBytes += v.stream.stats().overrunBytes;
      v.stream.close();
      v.stream = undefined;
      this.opts.onChange?.();
    }
    if (!keepState) v.state = 'idle';
  }
}

// One QEMU input voice = at most one native capture stream, the counterpart of OutVoice
// (src/audio/out/voice.ts). Owns the stream's lifetime (open on enable, close on disable: no
// microphone is open while the guest is not recording), the reopen policy (backoff after the
// server failed the stream), the jitter buffer in front of QEMU's Reads, and the guest's volume.
//
// read() runs while QEMU's main loop waits for our reply (src/qemu/handlers.ts): it never
// waits, never allocates (the caller's buffer is filled), and logs nothing per call.
import type { Logger } from '../../log';
import type { NativeCapture } from '../../native-api/capture';
import type { PcmFormat } from '../../qemu/handlers';
import { micIdentity } from '../../stream-identity';
import type { CaptureBackend } from '../backend';
import { CHANNEL_LAYOUTS, CaptureFormat, applyVolume, captureFormatFor, fillSilence, flipSignBits, gainsOf } from '../format';

export interface InVoiceOptions {
  vmName: string;
  backend: CaptureBackend;
  /** --audio-source NAME; undefined = the server's default source. */
  source?: string;
  log?: Logger;
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

export interface InVoiceStats {
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

const MAX_RETRY_MS = 10_000;

export class InVoice {
  /** Undefined when QEMU announced a format we cannot record: the guest gets silence. */
  readonly layout: CaptureFormat | undefined;
  private enabled = false;
  private muted = false;
  private gains: number[] = [];
  private stream: NativeCapture | undefined;
  /** Bumped on every open/close so late events from an old stream are ignored. */
  private generation = 0;
  private state = 'idle';
  private error: string | undefined;
  private sawData = false;
  /** Answering silence until prebufferMs is queued (start, and after an underrun). */
  private priming = true;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private closed = false;
  private readonly periodMs: number;
  private readonly ringMs: number;
  private readonly maxLatencyMs: number;
  private readonly targetLatencyMs: number;
  private readonly prebufferMs: number;
  private readonly retryMs: number;
  private readonly counters = {
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
  };

  constructor(
    readonly id: bigint,
    readonly format: PcmFormat,
    private readonly opts: InVoiceOptions,
  ) {
    this.periodMs = opts.periodMs ?? 10;
    this.ringMs = opts.ringMs ?? 500;
    this.maxLatencyMs = opts.maxLatencyMs ?? 150;
    this.targetLatencyMs = Math.min(opts.targetLatencyMs ?? 40, this.maxLatencyMs);
    this.prebufferMs = Math.min(opts.prebufferMs ?? 30, this.targetLatencyMs);
    this.retryMs = opts.retryMs ?? 1000;
    this.retryDelayMs = this.retryMs;
    try {
      this.layout = captureFormatFor(format);
    } catch (e) {
      this.state = 'error';
      this.error = (e as Error).message;
      opts.log?.error(`${this.error}; the guest will record silence`, { voice: id.toString() });
    }
  }

  /** Is a microphone stream open now? (privacy check for status and tests) */
  get capturing(): boolean {
    return this.stream !== undefined;
  }

  setEnabled(enabled: boolean): void {
    if (this.closed || this.enabled === enabled) return;
    this.enabled = enabled;
    if (enabled) this.open();
    else this.closeStream();
  }

  setVolume(mute: boolean, volume: Uint8Array): void {
    this.muted = mute;
    this.gains = gainsOf(volume, this.format.nchannels);
  }

  /** Fills `out` (QEMU's Read size) at once: microphone audio from the ring, then silence. */
  read(out: Uint8Array): void {
    const l = this.layout;
    if (!l) {
      out.fill(0);
      return;
    }
    const size = out.byteLength;
    const s = this.counters;
    s.reads++;
    s.requestedBytes += size;
    let got = 0;
    const stream = this.stream;
    if (this.enabled && stream) {
      const avail = stream.available();
      if (avail > this.bytesFor(this.maxLatencyMs)) s.discardedBytes += stream.discard(avail - this.bytesFor(this.targetLatencyMs));
      // Jitter buffer: after the start and after every underrun, answer silence until
      // prebufferMs is queued again. A reader faster than real time (QEMU under TCG) then sees
      // a few longer gaps instead of a crackle of tiny ones in every Read, and a real-time
      // reader keeps that cushion against the server's period jitter.
      if (this.priming && avail >= this.bytesFor(this.prebufferMs)) this.priming = false;
      if (!this.priming) {
        // Never ask the ring for more than it can hold: a Read of megabytes (QEMU asks for one
        // period) gets at most a ring's worth of microphone audio, the rest is silence below.
        const want = Math.min(size - (size % l.bytesPerFrame), this.ringFrames() * l.bytesPerFrame);
        got = stream.read(out, 0, want);
        if (got < want) {
          this.priming = true;
          if (this.sawData || got > 0) s.underruns++;
        }
      }
      if (got > 0) {
        this.sawData = true;
        s.capturedBytes += got;
        if (l.flipSign) flipSignBits(l, out, 0, got);
        applyVolume(l, out, 0, got, this.muted, this.gains);
      }
    }
    if (got < size) {
      fillSilence(l, out, got, size);
      if (this.enabled) {
        // Silence while the guest records: padding. Counted apart until the first microphone
        // byte (stream start-up), so a steady-state figure is not hidden by the link-up time.
        if (this.sawData) {
          s.paddedBytes += size - got;
          s.paddedReads++;
        } else {
          s.startupPaddedBytes += size - got;
        }
      }
    }
  }

  stats(): InVoiceStats {
    return {
      id: this.id,
      format: this.layout?.guest ?? 'unsupported',
      enabled: this.enabled,
      muted: this.muted,
      gains: this.gains.length ? [...this.gains] : new Array<number>(this.format.nchannels).fill(1),
      state: this.state,
      ...(this.error !== undefined ? { error: this.error } : {}),
      ...this.counters,
      overrunBytes: this.counters.overrunBytes + (this.stream?.stats().overrunBytes ?? 0),
    };
  }

  /** Closes the stream for good (Fini, a second Init of the id, the bridge closing). */
  close(): void {
    this.closed = true;
    this.closeStream();
  }

  /** Capture ring size: also the most one Read takes from it (nothing beyond it is ever queued). */
  private ringFrames(): number {
    return Math.max(256, Math.round((this.ringMs * this.format.freq) / 1000));
  }

  private bytesFor(ms: number): number {
    return Math.ceil((ms * this.format.freq) / 1000) * this.format.bytesPerFrame;
  }

  private open(): void {
    const l = this.layout;
    if (!l || this.stream || this.closed) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const gen = ++this.generation;
    const rate = this.format.freq;
    const backend = this.opts.backend;
    const source = this.opts.source;
    const identity = micIdentity(this.opts.vmName, backend.kind, source);
    this.sawData = false;
    this.priming = true;
    this.error = undefined;
    this.state = 'connecting';
    this.counters.opens++;
    try {
      const stream = backend.openCapture(
        {
          format: l.capture,
          rate,
          channels: l.channels,
          streamName: identity.streamName,
          props: identity.props,
          ...(source !== undefined && backend.kind === 'pulse' ? { device: source } : {}),
          latencyFrames: Math.max(16, Math.round((this.periodMs * rate) / 1000)),
          ringFrames: this.ringFrames(),
          // The same channel order as playback: one layout table, in TypeScript.
          ...(CHANNEL_LAYOUTS[l.channels] ? { positions: CHANNEL_LAYOUTS[l.channels] } : {}),
        },
        (state, message) => this.onStreamState(gen, state, message),
      );
      // The server may have failed it synchronously (closeStream bumped the generation).
      if (gen !== this.generation) stream.close();
      else {
        this.stream = stream;
        this.opts.onChange?.();
      }
    } catch (e) {
      this.counters.openErrors++;
      this.state = 'error';
      this.error = (e as Error).message;
      this.opts.log?.error(`cannot open the microphone${source ? ` '${source}'` : ''}: ${this.error}; the guest records silence`, { voice: this.id.toString() });
      this.scheduleRetry();
    }
  }

  private onStreamState(gen: number, state: string, message: string): void {
    // A closed stream's late event. (May run before openCapture() has returned: a server is
    // free to report a state synchronously.)
    if (gen !== this.generation) return;
    this.state = state;
    if (state === 'streaming') {
      this.retryDelayMs = this.retryMs;
      return;
    }
    if (state === 'error') {
      this.error = message;
      this.opts.log?.error(`microphone stream failed: ${message}; retrying in ${this.retryDelayMs} ms (the guest records silence meanwhile)`, { voice: this.id.toString() });
      this.closeStream(true);
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    if (!this.enabled || this.closed) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, MAX_RETRY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.enabled && !this.stream) this.open();
    }, delay);
    this.retryTimer.unref();
  }

  private closeStream(keepState = false): void {
    if (!keepState) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    this.generation++;
    const s = this.stream;
    if (s) {
      this.counters.overrunBytes += s.stats().overrunBytes;
      this.stream = undefined;
      s.close();
      this.opts.onChange?.();
    }
    if (!keepState) this.state = 'idle';
  }
}

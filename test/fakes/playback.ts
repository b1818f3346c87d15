// A NativePlayback without a sound server, for unit tests and fault injection: it consumes the
// ring on a timer at `rate * ratio` frames per second into `played` (what a listener would hear),
// with the same prebuffer / underrun / overflow / drain semantics as native/pw_audio.cc.
// `fail()` simulates the server going away. The playback contract
// (test/contracts/playback.contract.ts) runs against it and against the real streams.
import type { NativePlayback, NativePlaybackOptions, NativePlaybackStats, NativeSpeakerCore, SpeakerCoreOptions } from '../../src/native-api/audio';
import { native } from '../../src/native';

/**
 * The speaker's core for a fake backend: the real native one (native/speaker_core.h needs no
 * sound server), so a Speaker over FakePlayback runs the Writes through the same code as in use.
 * It hands the fake's write() each processed block.
 */
export function openSpeakerCore(o: SpeakerCoreOptions): NativeSpeakerCore {
  const Core = native.PwSpeakerCore;
  if (!Core) throw new Error('the PipeWire addon has no PwSpeakerCore: run npm run setup');
  return new Core(o);
}

const FORMATS = ['U8', 'S8', 'S16LE', 'S16BE', 'U16LE', 'U16BE', 'S32LE', 'S32BE', 'U32LE', 'U32BE', 'F32LE', 'F32BE'];
const POSITIONS = ['MONO', 'FL', 'FR', 'FC', 'LFE', 'RL', 'RR', 'RC', 'SL', 'SR', 'FLC', 'FRC'];

function einval(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'EINVAL' });
}

export class FakePlayback implements NativePlayback {
  readonly opts: NativePlaybackOptions;
  readonly bytesPerFrame: number;
  /** Every byte the "device" played, silence included (bytes of the stream format). */
  readonly played: number[] = [];
  private queue: Uint8Array[] = [];
  private fill = 0; // bytes
  private playing = false;
  private draining = false;
  private drained = false;
  private active = true;
  private closed = false;
  private error: string | undefined;
  private ratio = 1;
  private acc = 0;
  private timer: NodeJS.Timeout;
  private lastTick = Date.now();
  private startFrames: number;
  private nextDueMs: number | undefined;
  private playOutAsked = false;
  rates: number[] = [];
  private counters = { written: 0, consumed: 0, underruns: 0, underrunFrames: 0, overflow: 0, cycles: 0 };

  constructor(opts: NativePlaybackOptions, readonly periodMs = 10) {
    const bytes: Record<string, number> = { U8: 1, S8: 1 };
    const sample = bytes[opts.format] ?? (opts.format.includes('16') ? 2 : 4);
    // Same validation as the native constructors.
    if (!FORMATS.includes(opts.format)) throw einval(`FakePlayback: unknown sample format '${String(opts.format)}'`);
    if (!(opts.channels >= 1) || !Array.isArray(opts.positions) || opts.positions.length !== opts.channels) {
      throw einval('FakePlayback: positions must list one name per channel');
    }
    for (const p of opts.positions) if (!POSITIONS.includes(p)) throw einval(`FakePlayback: unknown channel position '${String(p)}'`);
    if (!Number.isInteger(opts.rate) || opts.rate < 1000 || opts.rate > 768000) throw einval('FakePlayback: option rate must be an integer in [1000, 768000]');
    for (const v of Object.values(opts.props ?? {})) if (typeof v !== 'string') throw einval('FakePlayback: option props values must be strings');
    this.opts = opts;
    this.startFrames = opts.startFrames;
    this.bytesPerFrame = sample * opts.channels;
    this.timer = setInterval(() => this.tick(), periodMs);
    this.timer.unref();
  }

  /** Simulate the sound server dying: the stream reports an error from now on. */
  fail(message = 'fake server went away'): void {
    this.error = message;
    clearInterval(this.timer);
  }

  private tick(): void {
    const now = Date.now();
    const dt = (now - this.lastTick) / 1000;
    this.lastTick = now;
    if (!this.active || this.closed || this.drained) return;
    this.acc += dt * this.opts.rate * this.ratio;
    const frames = Math.floor(this.acc);
    this.acc -= frames;
    if (frames === 0) return;
    this.counters.cycles++;
    const want = frames * this.bytesPerFrame;
    const playOut = this.playOutAsked;
    this.playOutAsked = false;
    if (!this.draining && !this.playing) this.playing = this.readyToStart(want, playOut, now);
    let got = 0;
    if (this.draining || this.playing) got = this.take(want);
    if (this.draining && this.fill === 0) {
      this.drained = true;
      return;
    }
    if (got < want) {
      if (this.playing && !this.draining) {
        this.counters.underruns++;
        this.counters.underrunFrames += (want - got) / this.bytesPerFrame;
        this.playing = false;
      }
      for (let i = got; i < want; i++) this.played.push(0);
    }
  }

  /** native/pw_audio.cc ReadyToStart: the threshold, projected to the next Write when one is due. */
  private readyToStart(want: number, playOut: boolean, now: number): boolean {
    if (playOut) return this.fill > 0;
    const start = this.startFrames * this.bytesPerFrame;
    if (this.nextDueMs === undefined) return this.fill >= start;
    const untilDue = Math.max(0, Math.floor(((this.nextDueMs - now) * this.opts.rate) / 1000)) * this.bytesPerFrame;
    return this.fill >= untilDue + start + want;
  }

  private take(n: number): number {
    let got = 0;
    while (got < n && this.queue.length) {
      const head = this.queue[0];
      const k = Math.min(head.length, n - got);
      for (let i = 0; i < k; i++) this.played.push(head[i]);
      if (k === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(k);
      got += k;
    }
    this.fill -= got;
    this.counters.consumed += got / this.bytesPerFrame;
    return got;
  }

  private check(): void {
    if (this.closed) {
      const e = new Error('FakePlayback: already closed') as Error & { code: string };
      e.code = 'ECLOSED';
      throw e;
    }
  }

  write(data: Uint8Array, nextDueInNs?: number): number {
    this.check();
    if (!(data instanceof Uint8Array)) throw einval('FakePlayback.write: Uint8Array required');
    if (nextDueInNs !== undefined && !(Math.abs(nextDueInNs) < 1e10)) throw einval('FakePlayback.write: nextDueInNs must be within 10 s');
    this.nextDueMs = nextDueInNs === undefined ? undefined : Date.now() + nextDueInNs / 1e6;
    const n = data.length - (data.length % this.bytesPerFrame);
    this.queue.push(Uint8Array.from(data.subarray(0, n)));
    this.fill += n;
    this.counters.written += n / this.bytesPerFrame;
    const cap = this.opts.ringFrames * this.bytesPerFrame;
    if (this.fill > cap) {
      // Drop the oldest whole frames, like SpscRing::WriteDropOldest.
      let excess = this.fill - cap;
      this.counters.overflow += excess / this.bytesPerFrame;
      while (excess > 0) {
        const head = this.queue[0];
        const k = Math.min(head.length, excess);
        if (k === head.length) this.queue.shift();
        else this.queue[0] = head.subarray(k);
        excess -= k;
        this.fill -= k;
      }
    }
    return n;
  }

  stats(): NativePlaybackStats {
    return {
      fillFrames: this.fill / this.bytesPerFrame,
      ringFillFrames: this.fill / this.bytesPerFrame,
      capacityFrames: this.opts.ringFrames,
      writtenFrames: this.counters.written,
      consumedFrames: this.counters.consumed,
      underruns: this.counters.underruns,
      underrunFrames: this.counters.underrunFrames,
      overflowFrames: this.counters.overflow,
      cycles: this.counters.cycles,
      drained: this.drained,
      state: this.error ? 'error' : this.active ? 'streaming' : 'paused',
      ...(this.error ? { error: this.error } : {}),
      delayNs: 0,
      nowNs: Date.now() * 1e6,
    };
  }

  setActive(active: boolean): void {
    this.check();
    if (typeof active !== 'boolean') throw einval('FakePlayback.setActive: active must be a boolean');
    if (active && !this.active) this.playing = false;
    this.active = active;
  }

  setRate(ratio: number): void {
    this.check();
    if (typeof ratio !== 'number' || !(ratio > 0.9 && ratio < 1.1)) throw einval('FakePlayback.setRate: ratio must be within 0.9..1.1');
    this.ratio = ratio;
    this.rates.push(ratio);
  }

  drain(): void {
    this.check();
    this.draining = true;
  }

  playOut(): void {
    this.check();
    this.playOutAsked = true;
  }

  /** Every threshold set after the constructor's, in order (unit tests check the policy). */
  readonly startFramesSet: number[] = [];

  setStartFrames(frames: number): void {
    this.check();
    if (!Number.isInteger(frames) || frames < 0) throw einval('FakePlayback.setStartFrames: frames must be an unsigned integer');
    this.startFrames = Math.min(frames, this.opts.ringFrames);
    this.startFramesSet.push(this.startFrames);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }
}

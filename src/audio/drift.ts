// Clock-drift control for playback. QEMU paces Write by its virtual clock, the sink consumes by
// the device clock; ±0.3 % apart means 3 ms more (or less) queued every second, i.e. latency
// that grows without bound or a ring that runs dry. We keep the ring fill near a target by
// nudging the native stream's resampling ratio (PipeWire SPA_PROP_rate, PulseAudio
// pa_stream_update_sample_rate).
//
// Pure: feed it (fill, time) samples, it returns the ratio. The fill seen at poll instants is a
// sawtooth (QEMU delivers 1024-frame blocks on a 10 ms timer), so the controller works on an
// exponential average over `smoothingS`. Loop: fill' = drift - (ratio - 1); controller
// ratio - 1 = kp*e + ki*∫e with e = (avgFill - target) in seconds. With the 1 s filter and
// kp = 0.5/s the loop is damped at ζ ≈ 0.7 (τ s² + s + kp = 0); ki removes the steady offset
// (a 0.3 % drift alone would leave e = drift/kp = 6 ms).

/** Largest rate correction by default: 0.5 %, about 9 cents of pitch. */
export const DEFAULT_MAX_RATE_ADJUST = 0.005;

export interface DriftOptions {
  /** Stream rate, frames per second. */
  rate: number;
  /** Fill (frames) to hold. */
  targetFrames: number;
  /** Largest |ratio - 1| (default 0.005 = 0.5 %, ~9 cents of pitch: inaudible on program audio). */
  maxAdjust?: number;
  /** Averaging time constant of the fill, seconds (default 1). */
  smoothingS?: number;
  /** Proportional gain per second of error (default 0.5). */
  kp?: number;
  /** Integral gain per second² of error (default 0.05). */
  ki?: number;
  /**
   * Excess fill that is ignored, seconds (default 0.008). The polled fill is a sawtooth one
   * block tall (~23 ms), so small errors are mostly noise; with equal clocks (most short sounds)
   * the ratio then stays (almost exactly) 1, so a clip plays for its length.
   */
  deadbandS?: number;
  /**
   * Seconds after a reset during which the ratio stays 1 and the average fill becomes the
   * target (default 2). Playback starts once the fill reaches the start threshold, but a Write
   * can overshoot it by up to a block, so the level a stream settles at is only known after
   * it started; holding THAT level (instead of pulling towards a nominal one) keeps equal
   * clocks at ratio 1 exactly. targetFrames applies when learning is off (0).
   */
  learnS?: number;
}

export class DriftController {
  private readonly rate: number;
  private readonly maxAdjust: number;
  private readonly smoothingS: number;
  private readonly kp: number;
  private readonly ki: number;
  private readonly deadband: number;
  private readonly learnS: number;
  private readonly nominalTarget: number;
  private learnedFor = 0;
  private learnSum = 0;
  private learnCount = 0;
  private target: number;
  private avg: number | undefined;
  private integral = 0;
  private lastMs: number | undefined;
  private ratioValue = 1;

  constructor(opts: DriftOptions) {
    if (!(opts.rate > 0) || !(opts.targetFrames >= 0)) throw new RangeError('DriftController: rate must be > 0 and targetFrames >= 0');
    this.rate = opts.rate;
    this.target = opts.targetFrames;
    this.maxAdjust = opts.maxAdjust ?? DEFAULT_MAX_RATE_ADJUST;
    this.smoothingS = opts.smoothingS ?? 1;
    this.kp = opts.kp ?? 0.5;
    this.ki = opts.ki ?? 0.05;
    this.deadband = opts.deadbandS ?? 0.008;
    this.learnS = opts.learnS ?? 2;
    this.nominalTarget = opts.targetFrames;
  }

  get ratio(): number {
    return this.ratioValue;
  }

  /** Smoothed fill in frames (undefined before the first sample). */
  get averageFill(): number | undefined {
    return this.avg;
  }

  get targetFrames(): number {
    return this.target;
  }

  setTarget(frames: number): void {
    this.target = frames;
    this.learnedFor = this.learnS;
  }

  /** Forget history (stream restarted, voice re-enabled): the ratio returns to 1. */
  reset(): void {
    this.avg = undefined;
    this.integral = 0;
    this.lastMs = undefined;
    this.ratioValue = 1;
    this.learnedFor = 0;
    this.learnSum = 0;
    this.learnCount = 0;
    this.target = this.nominalTarget;
  }

  /** One observation of the ring fill at `nowMs`; returns the consumption ratio to apply. */
  update(fillFrames: number, nowMs: number): number {
    if (this.lastMs === undefined || this.avg === undefined) {
      this.avg = fillFrames;
      this.lastMs = nowMs;
      return this.ratioValue;
    }
    const dt = (nowMs - this.lastMs) / 1000;
    if (dt <= 0) return this.ratioValue;
    this.lastMs = nowMs;
    // A long gap (process stalled, stream paused) makes old history meaningless.
    if (dt > 2) {
      this.avg = fillFrames;
      return this.ratioValue;
    }
    const a = 1 - Math.exp(-dt / this.smoothingS);
    this.avg += a * (fillFrames - this.avg);
    if (this.learnedFor < this.learnS) {
      // Plain mean over the window (the EMA is still settling from its first sample).
      this.learnedFor += dt;
      this.learnSum += fillFrames;
      this.learnCount++;
      if (this.learnedFor >= this.learnS) {
        // Never settle below the configured level: that one is what keeps the ring from running dry.
        this.target = Math.max(this.nominalTarget, this.learnSum / this.learnCount);
        this.avg = this.target;
      }
      return this.ratioValue;
    }
    const raw = (this.avg - this.target) / this.rate;
    // The deadband applies above the target only: too much queued costs latency, which can
    // wait; too little risks an underrun, so that is corrected at once.
    const e = raw < 0 ? raw : Math.max(0, raw - this.deadband);
    const unclamped = this.kp * e + this.ki * (this.integral + e * dt);
    // Anti-windup: integrate only while the output is not saturated in the same direction.
    if (Math.abs(unclamped) < this.maxAdjust || Math.sign(unclamped) !== Math.sign(e)) this.integral += e * dt;
    const adj = Math.max(-this.maxAdjust, Math.min(this.maxAdjust, this.kp * e + this.ki * this.integral));
    this.ratioValue = 1 + adj;
    return this.ratioValue;
  }
}

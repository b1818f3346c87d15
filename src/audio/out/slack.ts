// The level a scheduled voice holds once it plays: what the start threshold asked for, no more.
//
// Why (issue 17, ring wait 35 ms at quantum 256 against a model of 27): a scheduled stream
// (prebuffer.ts) starts once the fill projected to QEMU's next Write still holds the threshold
// beyond one request. But the level it then keeps is set by the instant it started, and that
// instant is often late: the graph links the stream only after a few Writes have queued (the
// bench measured the first sound playing 47 ms after its first Write, with two blocks queued), and
// the schedule itself is anchored on the first Write, which left on one of QEMU's 10 ms ticks
// 0-10 ms after its due time (the earliest later Write moves the anchor back: the ring then holds
// that much more than the schedule needs). The drift controller used to learn and hold whatever
// level the start produced: 12 ms more than the threshold before each Write, for the whole sound.
//
// The slack: the fill projected to when QEMU's next Write is due, fill - (due - now) * rate. It
// is what the start condition tests (native/pw_audio.cc ReadyToStart), and it does not follow the
// one-block sawtooth of the fill: between Writes both terms fall at the stream rate, at a Write
// both grow by a block. Only the graph's pulls show in it, one request (quantum) tall: just after
// a pull it is the threshold, just before the next it is the threshold + one request, so its mean
// over a poll window is the threshold + half a request. Holding that mean (DriftController, with
// the slack as its level) trims a late start's excess at up to 0.5 % of the rate (5 ms a second,
// inaudible), and keeps following the threshold as the lateness it covers rises (jitter.ts).
// The schedule is in the host's clock, which QEMU's audio clock also runs on, so the slack sees
// the sink's clock drifting either way; a QEMU clock running fast re-anchors the schedule earlier
// (more slack: played faster), one running slow shows as rising lateness (a higher threshold).
//
// Pure: the caller passes the clock (performance.now()) and the stream's stats. Real-time contract:
// noteWrite() is O(1), no allocation (per Write); sample() is per poll (50 ms).

/** Playing this long (since the stream started or resumed) before the slack is held: the schedule's anchor settles first. */
export const SLACK_HOLD_OFF_MS = 1000;
/**
 * No Write for this long after one was due: the run ended (WriteJitter's runGapMs), the schedule
 * is stale and the slack means nothing.
 */
export const SLACK_STALE_MS = 250;
/** Excess slack left alone, seconds (DriftController deadbandS): below a poll window's noise. */
export const SLACK_DEADBAND_S = 0.002;

export interface SlackSample {
  /** Fill projected to the next Write's due instant, frames (negative: the ring will run dry first). */
  slackFrames: number;
  /** The mean slack the threshold asks for: threshold + half a graph request, frames. */
  targetFrames: number;
}

export class ScheduleSlack {
  private dueAtMs: number | undefined;
  private playingSinceMs: number | undefined;
  private lastConsumed = 0;
  private lastCycles = 0;
  /** Frames per graph cycle while playing (the request), learned from the stream's counters. */
  private requestFrames = 0;

  constructor(private readonly rate: number) {}

  /** A Write was queued; QEMU's next one is due at `dueAtMs` (same clock as sample()). */
  noteWrite(dueAtMs: number): void {
    this.dueAtMs = dueAtMs;
  }

  /** The stream prebuffers again (underrun, uncork, reopen): the hold-off starts over. */
  reset(): void {
    this.playingSinceMs = undefined;
  }

  /**
   * One poll of a playing voice's stream. Undefined while there is nothing to hold: no schedule,
   * a stale one, the stream not consuming (prebuffering), or within the hold-off.
   */
  sample(st: { fillFrames: number; consumedFrames: number; cycles: number }, nowMs: number, startFrames: number, smoothed = false): SlackSample | undefined {
    const consumed = st.consumedFrames - this.lastConsumed;
    const cycles = st.cycles - this.lastCycles;
    this.lastConsumed = st.consumedFrames;
    this.lastCycles = st.cycles;
    if (consumed <= 0 || cycles <= 0) {
      this.playingSinceMs = undefined;
      return undefined;
    }
    // Every cycle of a playing stream takes one whole request (short of it is an underrun).
    this.requestFrames = consumed / cycles;
    if (this.playingSinceMs === undefined) this.playingSinceMs = nowMs;
    if (this.dueAtMs === undefined || nowMs - this.playingSinceMs < SLACK_HOLD_OFF_MS || nowMs - this.dueAtMs > SLACK_STALE_MS) return undefined;
    return {
      slackFrames: st.fillFrames - ((this.dueAtMs - nowMs) * this.rate) / 1000,
      // A fill smoothed over the cycle (voice.ts smoothFill) has no request-tall sawtooth to average.
      targetFrames: startFrames + (smoothed ? 0 : this.requestFrames / 2),
    };
  }
}

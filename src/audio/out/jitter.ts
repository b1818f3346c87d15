// How late QEMU's Writes reach us, learned per VM so a NEW voice (the guest reopened its device,
// or the VM restarted while the bridge kept running) starts with a prebuffer that covers it.
//
// Why (the ~50 ms dropout after a re-attach on QEMU 10.0): a voice prebuffers latency + one block
// before it plays. On 7.2 a block is 1024 frames (23 ms), on 10.0 Audio.NSamples = 480 (11 ms), so
// the 10.0 prebuffer is 31 ms against 43 ms. Writes pass through QEMU's audio timer and our event
// loop; on a loaded host both stall, worst when a sound starts (the guest and QEMU busy at once):
// 30-60 ms with the tone's first blocks then arriving in a burst were measured on 10.0 after a
// restart (test/integration/audio-out-reattach.test.ts). Stall minus prebuffer is the dropout,
// rounded up to the sink's cycle (21 ms at a 1024 quantum): ~20-70 ms heard.
//
// Lateness of a Write = its arrival minus when it was due if the run of Writes came at exactly
// the stream rate from the run's earliest-anchored start: the audio already received. A
// prebuffer of (block + the worst lateness) plays through the run without running dry. Runs end
// at a pause longer than `runGapMs` (the guest stopped its stream). The worst lateness decays
// with `halfLifeMs` so a calm host gets its low latency back, and is capped at `maxMs`.
//
// Pure: the caller passes the clock. Real-time contract: note() is O(1), no allocation.

/** Default cap on the lateness covered, ms. */
export const MAX_LATENESS_MS = 120;

export interface JitterOptions {
  /** A pause longer than this starts a new run (default 250 ms). */
  runGapMs?: number;
  /** Halving time of the remembered worst lateness (default 10 min: a VM restart or reboot is well within it). */
  halfLifeMs?: number;
  /** Cap on the lateness covered, ms (default 120). */
  maxMs?: number;
}

export class WriteJitter {
  private readonly runGapMs: number;
  private readonly halfLifeMs: number;
  private readonly maxMs: number;
  private origin = 0;
  /** Audio received in this run, ms. */
  private receivedMs = 0;
  private lastAt: number | undefined;
  private worst = 0;
  private worstAt = 0;

  constructor(o: JitterOptions = {}) {
    this.runGapMs = o.runGapMs ?? 250;
    this.halfLifeMs = o.halfLifeMs ?? 600_000;
    this.maxMs = o.maxMs ?? MAX_LATENESS_MS;
  }

  /** One Write carrying `audioMs` of audio (frames / rate) arriving at `nowMs`. */
  note(audioMs: number, nowMs: number): void {
    if (this.lastAt === undefined || nowMs - this.lastAt > this.runGapMs) {
      this.origin = nowMs;
      this.receivedMs = 0;
    }
    this.lastAt = nowMs;
    const late = nowMs - this.origin - this.receivedMs;
    // Early (QEMU's clock ran ahead, or the run began with a burst): re-anchor, nothing was late.
    if (late < 0) this.origin += late;
    else if (late > this.lateMs(nowMs)) {
      this.worst = Math.min(late, this.maxMs);
      this.worstAt = nowMs;
    }
    this.receivedMs += audioMs;
  }

  /**
   * When the next Write is due on this run's schedule (the earliest-anchored one: a Write is
   * never early against it), in the clock of note(); undefined before any Write.
   */
  nextDueMs(): number | undefined {
    return this.lastAt === undefined ? undefined : this.origin + this.receivedMs;
  }

  /** The worst lateness to cover now, ms (decayed since it was seen). */
  lateMs(nowMs: number): number {
    if (this.worst === 0) return 0;
    return this.worst * Math.pow(0.5, Math.max(0, nowMs - this.worstAt) / this.halfLifeMs);
  }
}

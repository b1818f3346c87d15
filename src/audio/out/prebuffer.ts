// How much a voice holds before it plays: the start threshold handed to the native stream.
//
// Why the ring waited 35-44 ms behind a Write at graph quantum 256 (QEMU 7.2, 1024-frame blocks):
// the old threshold was latency (20 ms) + one block, and playback began at the first graph cycle
// after the Write that crossed it. That Write lands anywhere within a block of the threshold, so
// the level right before each later Write -- what protects against a late one -- was anywhere
// from 20 ms to 20 ms + a block (23 ms), fixed for the whole sound by the phase of one Write. The
// wait of a frame is that level + half a block: 32-55 ms, 44 ms on average.
//
// What the ring must hold right before a Write: one graph request (the sink takes a whole quantum
// at once; short of it the stream underruns) plus how late the Write may come. On PipeWire the
// native stream is told, with each Write, when the next one is due (WriteJitter's schedule), and
// starts once the fill projected to that instant still holds `startFrames` beyond the current
// request (native/pw_audio.cc ReadyToStart): the level before each Write is then the margin,
// whatever the phase. The margin is the lateness measured on this host (WriteJitter), at least one
// period of QEMU's audio timer (Writes leave only on its 10 ms ticks: a 1024-frame block at
// 44.1 kHz is due every 23.2 ms and goes out 0-10 ms later), plus 2 ms for our own event loop.
// Expected wait of a frame at quantum 256 on 7.2: 5.3 + 12 - 5 (mean tick lateness) + 11.6 (half
// a block) + ~2.7 (the start lands within a cycle) = 27 ms, against the 30.5 ms target (block +
// quantum + 2 ms, issue 17) -- IF the stream starts when the schedule says. Measured (bench trace:
// the level right before each Write), it held 23-24 ms instead of ~12: a stream opened at the
// voice's Init was first seen playing at the third Write (47 ms after the first; the graph had
// not run it sooner), with two blocks queued, and the schedule's anchor (the first Write) itself
// left 0-10 ms after its due time. Whatever level the start produced stayed for the
// whole sound; slack.ts now trims it to what this threshold asks once playing.
//
// PulseAudio prebuffers on the server (prebuf), which knows no schedule: there, as with an explicit
// --audio-latency on either server, the threshold stays latency + one block + the lateness seen.
//
// Pure: no clock, no I/O.

/** Cap on the lateness of Writes covered (the Speaker's WriteJitter, native/write_jitter.h), ms. */
export const MAX_LATENESS_MS = 120;
/** QEMU's audio timer period (timer-period default, 10 ms): Writes leave only on its ticks. */
export const QEMU_TIMER_MS = 10;
/** Our own event loop's share of a Write's lateness, ms. */
export const LOOP_MARGIN_MS = 2;
/** Graph request asked of the server when no --audio-latency is given (node.latency / tlength share). */
export const DEFAULT_LATENCY_MS = 20;
/**
 * Largest block taken from QEMU (Audio.NSamples or what its Writes show), frames: 10.0's default
 * is 480, 7.2's fixed 1024; beyond this a block only grows the ring (memory), so it is capped.
 */
export const MAX_BLOCK_FRAMES = 8192;

export interface PrebufferInput {
  rate: number;
  /** Frames per QEMU Write. */
  blockFrames: number;
  /** Lateness of Writes to cover, ms (the Speaker's WriteJitter: native/write_jitter.h). */
  jitterMs: number;
  /** An explicit --audio-latency, ms; undefined = the default policy. */
  latencyMs?: number;
  /** Whether the stream can follow QEMU's schedule (PipeWire: yes; PulseAudio: no). */
  scheduled: boolean;
}

export interface Prebuffer {
  /** The stream's start threshold (with a schedule: frames beyond one request when the next Write is due). */
  startFrames: number;
  /** True when Writes carry the next one's due time (the threshold is then relative to it). */
  scheduled: boolean;
  /** Frames per QEMU Write, clamped (saneBlockFrames). */
  blockFrames: number;
  /** Graph request asked of the server, frames. */
  latencyFrames: number;
  /** What the ring holds right after a Write once playing (status "target latency"), frames. */
  targetFrames: number;
  /** Ring capacity: the fill at the largest threshold lateness can reach, one more block and 250 ms of excess. */
  ringFrames: number;
}

const framesOf = (ms: number, rate: number): number => Math.round((ms * rate) / 1000);

/** Clamps a block size QEMU announced or showed to what a voice can hold (guest-untrusted). */
export function saneBlockFrames(frames: number | undefined): number {
  if (frames === undefined || !Number.isFinite(frames) || frames < 1) return 1024;
  return Math.min(Math.floor(frames), MAX_BLOCK_FRAMES);
}

export function prebufferFor(p: PrebufferInput): Prebuffer {
  const block = saneBlockFrames(p.blockFrames);
  const jitterMs = Math.min(Math.max(0, p.jitterMs), MAX_LATENESS_MS);
  const explicit = p.latencyMs !== undefined;
  const latencyFrames = Math.max(64, framesOf(p.latencyMs ?? DEFAULT_LATENCY_MS, p.rate));
  const scheduled = p.scheduled && !explicit;
  const start = (j: number): number => (scheduled ? framesOf(Math.max(j, QEMU_TIMER_MS) + LOOP_MARGIN_MS, p.rate) : latencyFrames + block + framesOf(j, p.rate));
  const startFrames = start(jitterMs);
  return {
    startFrames,
    scheduled,
    blockFrames: block,
    latencyFrames,
    targetFrames: scheduled ? startFrames + block : startFrames,
    // Sized for the largest threshold lateness can raise this voice to (setStartFrames while it
    // plays; not with an explicit latency, which stays fixed): a ring sized for the first one
    // overflowed, dropping audio, when a loaded host raised it. Beyond that, one more block and
    // 250 ms of excess, the oldest audio is dropped: latency stays bounded after a stall.
    ringFrames: start(explicit ? jitterMs : MAX_LATENESS_MS) + (scheduled ? latencyFrames + block : 0) + block + Math.round(0.25 * p.rate),
  };
}

// One QEMU playback voice = one native stream. Owns the stream's lifetime: open (and reopen
// with backoff after a sound-server restart), enable/cork, volume (applied to the PCM here:
// src/audio/format.ts says why), drift control, drain on Fini. InVoice
// (src/audio/in/voice.ts) is its counterpart for the microphone.
//
// Where the tail of a sound goes (why the lab lost the last 25-48 ms of every clip). Three
// places can drop it; only the last is ours:
//  1. hda-codec (QEMU's HDA codec, timer mode, the default): guest DMA is copied into an
//     8192-byte buffer kept about half full (B_SIZE/2 = 1024 S16 stereo frames, 23 ms at
//     44.1 kHz) and fed to the mixing engine from there. When the guest stops the stream,
//     hda_audio_set_running(false) deletes the timer and deactivates the voice: what is still in
//     that buffer is never played (rpos/wpos are reset on the next start).
//  2. QEMU 7.2's dbus audio driver accumulates mixed PCM in a buffer of hw->samples = 1024
//     frames and emits Write only when that buffer is FULL (dbus_put_buffer_out returns early
//     while buf_pos < buf_size). The last 0..1023 frames (0..23 ms) wait there until the guest
//     plays again (then they are prepended to the next sound) or are freed at Fini. No client
//     can get them; QEMU 10's nsamples option (default 480) shrinks this part.
//     1 + 2 = the 25-48 ms the lab measured (the guest test saw 2116 frames = 48 ms kept back).
//     Guests running a sound server keep their stream open for seconds after a sound, so
//     silence flushes both buffers and nothing is lost there.
//  3. A client that stops or closes its stream without draining drops what it has queued
//     (pw-play 0.3.65 lost ~1792 frames = 37 ms in the lab; closing right at PipeWire's
//     `drained` still cut 7-29 ms in our tests, see native/pw_audio.cc).
// So this voice never drops what it has received: SetEnabled(false) lets the ring play out
// before corking, and Fini drains (pw_stream_flush(drain) after a few cycles of silence /
// pa_stream_drain) before closing. test/integration/audio-out-guest.test.ts checks that the
// captured sound is exactly as long as what QEMU sent.
import type { Logger } from '../../log';
import type { NativePlayback, NativePlaybackStats, NativeSpeakerCore, SpeakerVoiceCounters } from '../../native-api/audio';
import type { PlaybackBackend } from '../backend';
import { DriftController } from '../drift';
import { StreamFormat, gainsOf } from '../format';
import { Prebuffer, prebufferFor } from './prebuffer';
import { SLACK_DEADBAND_S, ScheduleSlack } from './slack';
import { speakerIdentity } from '../../stream-identity';

export interface VoiceOptions {
  vmName: string;
  backend: PlaybackBackend;
  /**
   * The Speaker's native core (native/speaker_core.h): it takes every Write of this voice (sign
   * flip, volume, silence skip, the ring write with the due time) and counts them; the voice
   * registers its stream, volume and skip threshold there and reads the counters at each poll.
   */
  core: NativeSpeakerCore;
  /** The clock the core's callers share (the Speaker's): performance.now() on CLOCK_MONOTONIC. */
  coreNowMs: () => number;
  /** Sink to play to; undefined follows the default device. */
  sink?: string;
  /**
   * Explicit latency target in ms (--audio-latency): ring fill on top of one QEMU block, on either
   * server. Undefined: the default policy of prebuffer.ts (on PipeWire, what QEMU's schedule needs).
   */
  latencyMs?: number;
  /** Frames per QEMU Write (7.2: 1024; 10.0+: Audio.NSamples). Default 1024. */
  blockFrames?: number;
  /** Extra prebuffer for the lateness of Writes seen on this host (the core's WriteJitter), ms. Default 0. */
  jitterMs?: number;
  /** Stats poll / drift control period. Default 50 ms. */
  pollMs?: number;
  /** Drift control on/off (tests compare). Default on. */
  driftControl?: boolean;
  log?: Logger;
}

export interface VoiceStats {
  state: 'open' | 'reconnecting' | 'closed';
  nativeState?: string;
  fillFrames: number;
  targetFrames: number;
  /**
   * Level the drift controller holds, frames: the fill learned after start, or with QEMU's schedule
   * (PipeWire, default policy) the mean slack the threshold asks for (slack.ts).
   */
  driftTargetFrames?: number;
  rate: number;
  ratio: number;
  writtenFrames: number;
  /** Underruns while the guest had the voice enabled. */
  underruns: number;
  overflowFrames: number;
  /** Frames of digital silence not queued because the ring held too much (see OutVoice.overQueued). */
  silenceSkippedFrames: number;
  /** Frames that arrived while no stream was open (server down). */
  droppedFrames: number;
  reconnects: number;
  /** Exceptions caught in this voice's timers (each distinct one logged once). */
  timerErrors: number;
  delayMs?: number;
  lastError?: string;
}

const BACKOFF_MS = [100, 200, 400, 800, 1000];
/** After a start, how long the level may overshoot before excess silence is dropped (overQueued), ms. */
const SETTLE_MS = 2000;
/** While Writes flow, the poll timer looks whether they still do every this many poll periods. */
const QUIET_CHECKS = 10;

export class OutVoice {
  private stream: NativePlayback | undefined;
  private readonly drift: DriftController | undefined;
  /** With QEMU's schedule: the level held is the slack at the next Write (slack.ts), not the fill. */
  private readonly slack: ScheduleSlack | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly pollMs: number;
  /** PipeWire: the Writes run the poll while they flow (see armPoll). */
  private readonly pollFromWrites: boolean;
  /** performance.now() of the last poll (a Write's or the timer's) and of the last Write. */
  private lastPollAt = -Infinity;
  private lastWriteAt = -Infinity;
  private reopenTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  private enabled = false;
  private active = true;
  private emptySinceMs: number | undefined;
  /** The Speaker replaced or finished this voice: the core's entry for the id is no longer ours. */
  private detached = false;
  /** The core's counters at the last read (kept once detached). */
  private counters: SpeakerVoiceCounters = { writtenFrames: 0, skippedFrames: 0, droppedFrames: 0 };
  /** The skip threshold last pushed to the core (overQueued), frames; 0 = off. */
  private skipAbove = 0;
  private wasStreaming = false;
  private lastNativeUnderruns = 0;
  private underruns = 0;
  private overflowBase = 0;
  private overflowFrames = 0;
  /** When the stream last (re)started (performance.now()): overQueued() waits SETTLE_MS after it. */
  private startedAtMs: number | undefined;
  private reconnects = 0;
  private timerErrors = 0;
  private lastError: string | undefined;
  private lastStats: NativePlaybackStats | undefined;
  readonly latencyFrames: number;
  /** The start threshold now (prebuffer.ts); grows or shrinks with the lateness noted. */
  private prebuffer: Prebuffer;
  /** The lateness the threshold was last computed for, ms. */
  private jitterMs: number;
  readonly ringFrames: number;

  constructor(
    readonly id: bigint,
    readonly format: StreamFormat,
    private readonly opts: VoiceOptions,
  ) {
    // Writes arrive one block at a time, late by QEMU's timer ticks and a loaded host: the start
    // threshold covers that (prebuffer.ts), including how late Writes have been arriving on this
    // host (jitter.ts: the dropout after a re-attach on 10.0's small blocks).
    this.jitterMs = opts.jitterMs ?? 0;
    this.prebuffer = this.prebufferWith(this.jitterMs);
    this.latencyFrames = this.prebuffer.latencyFrames;
    this.ringFrames = this.prebuffer.ringFrames;
    // The controller holds the level the stream settles at (learned after start); nominally the
    // fill after a Write less half a block (the polled fill is a sawtooth one block tall).
    // With QEMU's schedule it holds the slack instead, at what the threshold asks (slack.ts):
    // nothing to learn, and a late start's excess is trimmed.
    const nominal = this.prebuffer.targetFrames - this.prebuffer.blockFrames / 2;
    const scheduled = this.prebuffer.scheduled && opts.driftControl !== false;
    this.slack = scheduled ? new ScheduleSlack(format.rate) : undefined;
    this.drift =
      opts.driftControl === false
        ? undefined
        : scheduled
          ? new DriftController({ rate: format.rate, targetFrames: this.prebuffer.startFrames, learnS: 0, deadbandS: SLACK_DEADBAND_S })
          : new DriftController({ rate: format.rate, targetFrames: nominal });
    opts.core.addVoice(id, { format: format.nativeFormat, channels: format.channels, rate: format.rate, convert: format.convert, scheduled: this.prebuffer.scheduled });
    this.open();
    this.pollMs = opts.pollMs ?? 50;
    this.pollFromWrites = opts.backend.kind === 'pipewire';
    this.armPoll(this.pollMs);
  }

  private prebufferWith(jitterMs: number): Prebuffer {
    const o = this.opts;
    return prebufferFor({ rate: this.format.rate, blockFrames: o.blockFrames ?? 1024, jitterMs, latencyMs: o.latencyMs, scheduled: o.backend.kind === 'pipewire' });
  }

  /** The start threshold now, frames (prebuffer.ts). */
  get startFrames(): number {
    return this.prebuffer.startFrames;
  }

  /**
   * How late Writes have been arriving on this host (the core's WriteJitter), ms: with the default
   * policy, sets the start threshold for the next time the stream prebuffers. Per poll; the stream
   * is told only when the threshold moved by a millisecond or more.
   */
  private noteJitter(jitterMs: number): void {
    // An explicit --audio-latency is a fixed prebuffer (the lateness known when the voice opened
    // included). Nothing is computed (or allocated) unless the lateness moved by 1 ms.
    if (this.opts.latencyMs !== undefined || Math.abs(jitterMs - this.jitterMs) < 1) return;
    this.jitterMs = jitterMs;
    const next = this.prebufferWith(jitterMs);
    if (Math.abs(next.startFrames - this.prebuffer.startFrames) * 1000 < this.format.rate) return;
    this.prebuffer = next;
    this.stream?.setStartFrames(next.startFrames);
  }

  private open(): void {
    if (this.closed) return;
    const id = speakerIdentity(this.opts.vmName, this.opts.backend.kind, this.opts.sink);
    try {
      this.stream = this.opts.backend.openPlayback({
        format: this.format.nativeFormat,
        rate: this.format.rate,
        channels: this.format.channels,
        positions: this.format.positions,
        ringFrames: this.ringFrames,
        startFrames: this.startFrames,
        latencyFrames: this.latencyFrames,
        streamName: id.streamName,
        props: id.props,
        device: this.opts.sink,
      });
    } catch (err) {
      this.stream = undefined;
      this.noteError(`cannot open the ${this.opts.backend.kind} stream at ${this.opts.backend.where}: ${(err as Error).message}`);
      this.scheduleReopen();
      return;
    }
    if (!this.detached) this.opts.core.setStream(this.id, this.stream);
    this.attempt = 0;
    this.wasStreaming = false;
    this.lastNativeUnderruns = 0;
    this.overflowBase = this.overflowFrames;
    this.levelRestarts();
    this.noteActive(true);
    if (!this.enabled) this.emptySinceMs = undefined;
    this.opts.log?.info('speaker stream open', { voice: this.id.toString(), format: this.format.describe, backend: this.opts.backend.kind });
  }

  /** Timer callbacks have no caller to throw to: a throw would end the process. Counted, told once. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.timerErrors++;
      this.noteError(`audio voice: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private noteError(msg: string): void {
    if (msg !== this.lastError) this.opts.log?.warn(msg, { voice: this.id.toString() });
    this.lastError = msg;
  }

  private scheduleReopen(): void {
    if (this.closed || this.reopenTimer) return;
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt++;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      this.reconnects++;
      this.guarded(() => this.open());
    }, delay);
    this.reopenTimer.unref();
  }

  private dropStream(): void {
    const s = this.stream;
    this.stream = undefined;
    // Unregistered first: once setStream returns, no Write goes to `s` (then it may be closed).
    if (s && !this.detached) this.opts.core.setStream(this.id, null);
    if (s) {
      this.overflowFrames = this.overflowBase + (this.lastStats?.overflowFrames ?? 0);
      try {
        s.close();
      } catch {
        // Already torn down by the server going away: nothing left to release.
      }
    }
    this.lastStats = undefined;
  }

  /** The stream (re)starts from its prebuffer: the level is held from scratch, and overQueued() waits SETTLE_MS. */
  private levelRestarts(): void {
    this.drift?.reset();
    this.slack?.reset();
    this.startedAtMs = performance.now();
  }

  /**
   * Who polls. Writes taken by the intake thread (native/speaker_intake.h, the usual case) never
   * reach JS: the timer then finds no recent Write and polls every pollMs. While Writes do come
   * through JS (100/s on QEMU 10; a meter or tap in front of the speaker, test fakes) on PipeWire,
   * the Write that finds the last poll pollMs old runs it, and the timer only looks every QUIET_CHECKS polls' time whether they still flow: a
   * timer firing between the Writes cost a main-thread wakeup 20 times a second, each as dear as
   * a Write's (issue 17: ten bridges' CPU). When they stop, the timer polls every pollMs again.
   * Node wakes for a timer at the time it was first due even if it was moved (refresh() or
   * clear + set), so the timer is re-armed only from its own callback (and at SetEnabled(false),
   * where the poll must notice the played-out ring soon to cork).
   * A poll right after a Write sees the fill at one phase of QEMU's block. The graph's own step (a
   * quantum taken at once) would beat against that phase at the drift rate and swing the ratio:
   * drift control and the slack take smoothFill() instead. PulseAudio's stats carry no cycle time,
   * so there the timer keeps polling at its own phase.
   */
  private armPoll(ms: number): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => this.onPollTimer(), ms);
    this.pollTimer.unref();
  }

  private onPollTimer(): void {
    this.pollTimer = undefined;
    if (this.closed) return;
    if (this.pollFromWrites && performance.now() - this.lastWriteAt < this.pollMs) return this.armPoll(this.pollMs * QUIET_CHECKS);
    this.pollNow();
    this.armPoll(this.pollMs);
  }

  private pollNow(): void {
    this.lastPollAt = performance.now();
    this.guarded(() => this.poll());
  }

  /** The Speaker replaced or finished this voice: from now on it leaves the core's entry for its id alone. */
  detach(): void {
    this.readCounters();
    this.detached = true;
  }

  private readCounters(): void {
    if (this.detached) return;
    const c = this.opts.core.voiceStats(this.id, this.opts.coreNowMs());
    if (c) this.counters = c;
  }

  private poll(): void {
    this.readCounters();
    // What the core saw since the last poll: the schedule's next due time (slack.ts), the lateness.
    const c = this.counters;
    if (c.nextDueInMs !== undefined) this.slack?.noteWrite(performance.now() + c.nextDueInMs);
    if (!this.detached) this.noteJitter(this.opts.core.jitter(this.opts.coreNowMs()).lateMs);
    const s = this.stream;
    if (!s) return;
    let st: NativePlaybackStats;
    try {
      st = s.stats();
    } catch (err) {
      st = { state: 'error', error: (err as Error).message } as NativePlaybackStats;
    }
    this.lastStats = st;
    if (st.state === 'streaming' || st.state === 'paused') this.wasStreaming = true;
    if (st.error || st.state === 'error' || (this.wasStreaming && st.state === 'unconnected')) {
      this.noteError(`${this.opts.backend.kind} stream lost: ${st.error ?? st.state}; reconnecting`);
      this.dropStream();
      this.scheduleReopen();
      return;
    }
    const du = (st.underruns ?? 0) - this.lastNativeUnderruns;
    this.lastNativeUnderruns = st.underruns ?? 0;
    if (this.enabled && this.active) this.underruns += du;
    const now = Date.now();
    if (du > 0 && this.slack) {
      // The stream prebuffers again and starts anew: hold the slack from that start on.
      this.levelRestarts();
    }
    if (this.enabled && this.active && st.state === 'streaming' && this.drift) {
      if (this.slack) {
        // Smoothed, the slack no longer shows the graph's pulls (one request tall): it is held at
        // the threshold itself, whatever the phase of the poll against them (slack.ts).
        const smoothed = cycleAgeNs(st) !== undefined;
        const x = this.slack.sample({ ...st, fillFrames: smoothFill(st, this.format.rate) }, performance.now(), this.prebuffer.startFrames, smoothed);
        if (x) {
          if (x.targetFrames !== this.drift.targetFrames) this.drift.setTarget(x.targetFrames);
          s.setRate(this.drift.update(x.slackFrames, now));
        } else {
          // Nothing to hold (prebuffering, the hold-off, a stale schedule): play at the stream's
          // rate, and hold from scratch when there is again.
          this.drift.reset();
          s.setRate(1);
        }
      } else {
        s.setRate(this.drift.update(smoothFill(st, this.format.rate), now));
      }
    }
    // Disabled by the guest: cork once the ring has played out (plus a margin for what the
    // server still holds), never before, so the end of the sound is heard.
    if (!this.enabled && this.active) {
      if (st.fillFrames > 0) this.emptySinceMs = undefined;
      else if (this.emptySinceMs === undefined) this.emptySinceMs = now;
      else if (now - this.emptySinceMs >= 100 + (st.delayNs ?? 0) / 1e6) {
        // The core first: from here a Write comes through JS, which uncorks (beforeWrite).
        this.noteActive(false);
        s.setActive(false);
      }
    }
    this.pushSkipThreshold(st);
  }

  /** A Write for this voice is about to go to the core: a corked stream is uncorked first. */
  beforeWrite(): void {
    const s = this.stream;
    if (s && !this.active) {
      s.setActive(true);
      this.noteActive(true);
    }
  }

  /** The stream is (un)corked: the core takes this voice's Writes without JS only while it plays. */
  private noteActive(active: boolean): void {
    this.active = active;
    if (!this.detached) this.opts.core.setActive(this.id, active);
  }

  /** A Write was handled (queued or skipped): Writes still flow, and one runs the poll when due (armPoll). */
  wrote(): void {
    const now = performance.now();
    this.lastWriteAt = now;
    if (this.pollFromWrites && now - this.lastPollAt >= this.pollMs) this.pollNow();
  }

  /**
   * Pushes to the core the fill above which a Write of digital silence is not queued (0 = off):
   * two blocks more than the ring needs, the level right after a Write once playing
   * (prebuffer.ts targetFrames, which grows with the lateness seen on this host) plus one graph
   * request. QEMU's dbus audio sends at QEMU's clock whoever listens: a sink that takes less (a
   * graph skipping cycles on a loaded host: 72-98 % of real time was measured in bench/audio-e2e)
   * queues the difference here, more than the drift controller's ±0.5 % can take back, and a
   * frame then waited 150-260 ms in the ring instead of ~35 (until the ring overflows and drops
   * the oldest frames mid-sound). So a Write of digital silence that arrives while the ring is that
   * full is not queued: the excess goes where nobody hears it. Not in the first SETTLE_MS after a
   * start (enable, stream open, an underrun's restart): a start may overshoot by a block or two
   * until the level settles. The core compares the ring's real fill at each Write; what the server
   * holds beyond the ring (PulseAudio) is taken off the threshold as of this poll. Per poll.
   */
  private pushSkipThreshold(st: NativePlaybackStats): void {
    let frames = 0;
    const settled = this.startedAtMs !== undefined && performance.now() - this.startedAtMs >= SETTLE_MS;
    if (this.drift && st.state === 'streaming' && settled) {
      const needs = this.prebuffer.targetFrames + this.latencyFrames + 2 * this.prebuffer.blockFrames;
      const serverHeld = Math.max(0, st.fillFrames - (st.ringFillFrames ?? st.fillFrames));
      frames = Math.max(1, Math.round(needs - serverHeld));
    }
    if (frames === this.skipAbove || this.detached) return;
    this.skipAbove = frames;
    this.opts.core.setSkipAbove(this.id, frames);
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.emptySinceMs = undefined;
    if (!enabled && !this.closed) this.armPoll(this.pollMs); // the Writes stop: cork once played out
    // The guest stopped: what is queued is the end of its sound, however short. Without this, a
    // tail below the start threshold (after an underrun or an uncork re-armed the prebuffer) waited
    // in the ring for the next sound, and the poll never corked (the ring never ran out).
    if (!enabled && this.stream && this.active) this.stream.playOut();
    if (enabled) {
      this.levelRestarts();
      if (this.stream && !this.active) {
        this.stream.setActive(true);
        this.noteActive(true);
      }
    }
  }

  /** Applies from the next Write on: what is already queued plays at the volume it was written with. */
  setVolume(mute: boolean, volume: Uint8Array): void {
    if (!this.detached) this.opts.core.setVolume(this.id, mute, gainsOf(volume, this.format.channels));
  }

  stats(): VoiceStats {
    this.readCounters();
    const c = this.counters;
    const st = this.lastStats ?? (this.stream ? this.stream.stats() : undefined);
    return {
      state: this.closed ? 'closed' : this.stream ? 'open' : 'reconnecting',
      nativeState: st?.state,
      fillFrames: st?.fillFrames ?? 0,
      targetFrames: this.prebuffer.targetFrames,
      driftTargetFrames: this.drift?.targetFrames,
      rate: this.format.rate,
      ratio: this.drift?.ratio ?? 1,
      writtenFrames: c.writtenFrames,
      underruns: this.underruns,
      overflowFrames: this.overflowBase + (st?.overflowFrames ?? 0),
      silenceSkippedFrames: c.skippedFrames,
      droppedFrames: c.droppedFrames,
      reconnects: this.reconnects,
      timerErrors: this.timerErrors,
      delayMs: st?.delayNs !== undefined ? st.delayNs / 1e6 : undefined,
      lastError: this.lastError,
    };
  }

  /** Live native stats (tests and the bench read server timing through this). */
  nativeStats(): NativePlaybackStats | undefined {
    return this.stream?.stats();
  }

  /**
   * Plays out everything received, then closes. Resolves when done (or after `timeoutMs` when
   * the server does not confirm the drain, e.g. it went away).
   */
  async fini(timeoutMs?: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pollTimer);
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const s = this.stream;
    if (s) {
      try {
        const st = s.stats();
        if (st.fillFrames > 0 || this.active) {
          if (!this.active) s.setActive(true);
          s.drain();
          const limit = timeoutMs ?? 1000 + (st.fillFrames / this.format.rate) * 1000 + (st.delayNs ?? 0) / 1e6;
          const t0 = Date.now();
          while (!s.stats().drained && Date.now() - t0 < limit) await sleep(5);
        }
      } catch (err) {
        this.noteError(`drain failed: ${(err as Error).message}`);
      }
    }
    this.dropStream();
  }

  /** Immediate close without draining (bridge shutting down hard). */
  abort(): void {
    this.closed = true;
    clearTimeout(this.pollTimer);
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.dropStream();
  }
}

/** Longest time since the stream's last graph cycle that smoothFill() accounts for (a graph that stalled is not running). */
const MAX_CYCLE_AGE_NS = 100e6;

/** ns since the stream's last graph cycle began, when the stats say (PipeWire) and it is within MAX_CYCLE_AGE_NS. */
function cycleAgeNs(st: NativePlaybackStats): number | undefined {
  if (st.timeNs === undefined) return undefined;
  const since = st.nowNs - st.timeNs;
  return since >= 0 && since <= MAX_CYCLE_AGE_NS ? since : undefined;
}

/**
 * The fill as if the graph took its frames continuously instead of a quantum at each cycle: the
 * ring only drops when the stream's cycle runs, so the frames the graph has used since the last
 * cycle began are taken off (PipeWire stats; others have no cycle time and are returned as is).
 */
export function smoothFill(st: NativePlaybackStats, rate: number): number {
  const since = cycleAgeNs(st);
  return since === undefined ? st.fillFrames : st.fillFrames - (since * rate) / 1e9;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// Types of the addon's playback streams (native/pw_audio.cc PwPlayback, native/pulse_audio.cc
// PulsePlayback). Both share one shape so src/audio/out can drive either, and a test fake.

/**
 * Sample formats the native streams (playback and capture) accept. PulseAudio lacks S8/U16/U32
 * and PipeWire never negotiates U16/U32: src/audio/format.ts converts.
 */
export type NativeSampleFormat =
  | 'U8'
  | 'S8'
  | 'S16LE'
  | 'S16BE'
  | 'U16LE'
  | 'U16BE'
  | 'S32LE'
  | 'S32BE'
  | 'U32LE'
  | 'U32BE'
  | 'F32LE'
  | 'F32BE';

/** Channel position names (SPA short names; pulse_audio.cc maps them to pa_channel_position). */
export type ChannelPosition = 'MONO' | 'FL' | 'FR' | 'FC' | 'LFE' | 'RL' | 'RR' | 'RC' | 'SL' | 'SR' | 'FLC' | 'FRC';

export interface NativePlaybackOptions {
  format: NativeSampleFormat;
  rate: number;
  channels: number;
  positions: ChannelPosition[];
  /** Ring capacity; when full, write() drops the oldest frames. */
  ringFrames: number;
  /** The RT thread stays silent (no underrun counted) until this many frames are queued (see write()). */
  startFrames: number;
  /** PipeWire node.latency numerator / PulseAudio tlength, in frames of `rate`. */
  latencyFrames: number;
  /** Stream / media name. */
  streamName: string;
  /** Stream properties (PipeWire props or PulseAudio proplist): src/stream-identity.ts. */
  props: Record<string, string>;
  /** PipeWire remote (socket name or absolute path) or PulseAudio server string; '' = default. */
  remote?: string;
  /** PulseAudio only: sink name to connect to ('' = default). PipeWire uses target.object in props. */
  device?: string;
}

export interface NativePlaybackStats {
  /** What the stream holds: the ring plus what the server took ahead of playback (PulseAudio). */
  fillFrames: number;
  /** The ring alone. */
  ringFillFrames: number;
  capacityFrames: number;
  writtenFrames: number;
  consumedFrames: number;
  /** Cycles where the ring ran dry while playing (silence was inserted). */
  underruns: number;
  /** Silence frames inserted (PipeWire); 0 where the server does not tell (PulseAudio). */
  underrunFrames: number;
  /** Frames dropped (oldest first) because write() found the ring full. */
  overflowFrames: number;
  cycles: number;
  /** True once drain() has completed: everything written has been played. */
  drained: boolean;
  /** 'error' | 'unconnected' | 'connecting' | 'paused' | 'streaming' ('ready'/'creating'/... on Pulse mapped to these). */
  state: string;
  /** First error reported by the server or the stream (then state is 'error' or 'unconnected'). */
  error?: string;
  /** Delay from the stream's queue to the device, in ns (server timing), when known. */
  delayNs?: number;
  /** CLOCK_MONOTONIC ns when these stats were taken. */
  nowNs: number;
  /** PipeWire: start of the graph cycle the stream last ran in, same clock as nowNs. */
  timeNs?: number;
}

export interface NativePlayback {
  /**
   * Returns bytes accepted (all whole frames). Never blocks. `nextDueInNs`: when the next Write is
   * due, from now; PipeWire then starts playing once the fill projected to that instant still
   * holds startFrames beyond one graph request (PulseAudio prebuffers server-side and ignores it).
   */
  write(data: Uint8Array, nextDueInNs?: number): number;
  /** The guest stopped: play what is queued even below the start threshold. */
  playOut(): void;
  /** A new start threshold for the next time the stream prebuffers (capped at the ring). */
  setStartFrames(frames: number): void;
  stats(): NativePlaybackStats;
  setActive(active: boolean): void;
  /** Consumption speed factor for drift control, 1.0 nominal (>1 consumes the ring faster). */
  setRate(ratio: number): void;
  /** Starts draining; poll stats().drained. */
  drain(): void;
  close(): void;
}

export type NativePlaybackCtor = new (opts: NativePlaybackOptions) => NativePlayback;

/**
 * What SpeakerCore.write did with a Write (native/speaker_core.h SpeakerWriteResult): 0 queued,
 * 1 digital silence not queued (setSkipAbove), 2 dropped (no stream), 3 no voice with that id.
 */
export type SpeakerWriteResult = 0 | 1 | 2 | 3;

/** The WriteJitter constants (src/audio/out/speaker.ts). */
export interface SpeakerCoreOptions {
  /** A pause longer than this starts a new run of Writes, ms. */
  runGapMs: number;
  /** Halving time of the remembered worst lateness, ms. */
  halfLifeMs: number;
  /** Cap on the lateness covered, ms. */
  maxMs: number;
}

export interface SpeakerVoiceSpec {
  /** the stream's format (after the sign flip) */
  format: NativeSampleFormat;
  channels: number;
  rate: number;
  /** flip the sign bit of every sample (src/audio/format.ts StreamFormat.convert) */
  convert: boolean;
  /** pass the stream when the next Write is due (prebuffer.ts scheduled) */
  scheduled: boolean;
}

export interface SpeakerVoiceCounters {
  writtenFrames: number;
  /** silence not queued (setSkipAbove) */
  skippedFrames: number;
  /** arrived while no stream was registered */
  droppedFrames: number;
  /** when the Write after the last one queued is due, ms from the `nowMs` asked about (undefined: none) */
  nextDueInMs?: number;
}

/**
 * The speaker's per-Write work (native/speaker_core.h), one per Speaker: a table of voices, each
 * with its stream, and the Speaker's WriteJitter. Every Write goes through write(), whoever took it.
 * `nowMs`: the caller's clock, CLOCK_MONOTONIC ms (performance.now() plus the offset jitter()
 * gives away), or a unit test's fake one; omitted: CLOCK_MONOTONIC now. The times the core keeps
 * are in whatever clock its callers pass.
 */
export interface NativeSpeakerCore {
  /** Adds (or replaces) voice `id`, without a stream. */
  addVoice(id: bigint, spec: SpeakerVoiceSpec): void;
  removeVoice(id: bigint): void;
  /**
   * Where the voice's Writes go: one of this addon's playback streams (its ring is filled
   * directly), or any other NativePlayback (a test fake: its write() is called); null = none.
   * Once this returns, the old stream is no longer written to.
   */
  setStream(id: bigint, stream: NativePlayback | null): void;
  /** false while the stream is corked: a Write must then come through JS (which uncorks). */
  setActive(id: bigint, active: boolean): void;
  /** The guest's volume: one gain (0..1) per channel. */
  setVolume(id: bigint, mute: boolean, gains: readonly number[]): void;
  /** A Write of digital silence is not queued while the ring holds at least `frames`; 0 = off. */
  setSkipAbove(id: bigint, frames: number): void;
  write(id: bigint, data: Uint8Array, nowMs?: number): SpeakerWriteResult;
  voiceStats(id: bigint, nowMs?: number): SpeakerVoiceCounters | undefined;
  /**
   * The lateness to cover now, the run's schedule (when the next Write is due; undefined before
   * any), the block size QEMU really sends (0: not seen), Writes to unknown voices, and the clock read.
   */
  jitter(nowMs?: number): { lateMs: number; nextDueMs?: number; blockFrames: number; unknownWrites: number; nowMs: number };
}

export type NativeSpeakerCoreCtor = new (opts: SpeakerCoreOptions) => NativeSpeakerCore;

/**
 * The speaker's intake (native/speaker_intake.h): a thread reading an AudioOutListener connection
 * (a dup of `fd`, after `pending`) that takes the Writes through `core` and hands everything else
 * to `onEvent` (src/qemu/handlers.ts ListenerIntakeListener).
 */
export interface NativeSpeakerIntake {
  resume(): void;
  stop(): void;
  /**
   * Writes processed natively, their PCM bytes, ms since the last one (Infinity: none yet), and
   * messages handed to JS.
   */
  stats(): { taken: number; takenBytes: number; sinceTakenMs: number; handed: number };
}

export type NativeSpeakerIntakeCtor = new (core: NativeSpeakerCore, fd: number, pending: Uint8Array, onEvent: (kind: 0 | 1 | 2 | 3, data: Buffer | string) => void) => NativeSpeakerIntake;

export interface AudioNativeApi {
  /** Absent when the addon was built without it (feature reported as unavailable). */
  PwPlayback?: NativePlaybackCtor;
  PulsePlayback?: NativePlaybackCtor;
  PwSpeakerCore?: NativeSpeakerCoreCtor;
  PulseSpeakerCore?: NativeSpeakerCoreCtor;
  PwSpeakerIntake?: NativeSpeakerIntakeCtor;
  PulseSpeakerIntake?: NativeSpeakerIntakeCtor;
}

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
  fillFrames: number;
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

export interface AudioNativeApi {
  /** Absent when the addon was built without it (feature reported as unavailable). */
  PwPlayback?: NativePlaybackCtor;
  PulsePlayback?: NativePlaybackCtor;
}

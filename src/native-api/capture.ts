// Types of the addon's microphone capture streams (native/pw_capture.cc PwCapture,
// native/pulse_capture.cc PulseCapture, shared code in native/capture_common.h). Both have one
// shape so src/audio/in can drive either, or a test fake (test/fakes/capture.ts).
import type { ChannelPosition, NativeSampleFormat } from './audio';

/**
 * State events from the server thread: 'connecting' | 'paused' | 'streaming' | 'error' |
 * 'closed'. `message` carries the server's reason for 'error'.
 */
export type CaptureStateListener = (state: string, message: string) => void;

export interface NativeCaptureOptions {
  /** Format the server delivers (it converts from the source): the guest's own. */
  format: NativeSampleFormat;
  rate: number;
  channels: number;
  /** Stream / media name. */
  streamName: string;
  /** Stream properties (identity, and PipeWire's target.object): src/stream-identity.ts micIdentity. */
  props: Record<string, string>;
  /** PulseAudio only: source to record from ('' or omitted = default). PipeWire: target.object in props. */
  device?: string;
  /** PipeWire remote (socket name or absolute path) / PulseAudio server string; omitted = the environment's. */
  remote?: string;
  /** Capture period asked of the server (PipeWire node.latency, PulseAudio fragsize), frames. */
  latencyFrames: number;
  /** Ring capacity in frames; when full the oldest audio is dropped (counted as overrun). */
  ringFrames: number;
  /** One channel position name per channel (src/audio/format.ts CHANNEL_LAYOUTS); omitted = unpositioned. */
  positions?: readonly ChannelPosition[];
}

export interface NativeCaptureStats {
  /** Bytes queued in the ring now. */
  available: number;
  capacity: number;
  capturedBytes: number;
  /** Bytes dropped (oldest first) because nobody read them before the ring filled. */
  overrunBytes: number;
  /** Server callbacks that delivered data. */
  callbacks: number;
  state: string;
  /** PipeWire only: the stream's node id. */
  nodeId?: number;
  /** PulseAudio only: the source-output index. */
  streamIndex?: number;
}

export interface NativeCapture {
  /** Copies up to `length` queued bytes (whole frames) into into[offset...]; returns the count. Never waits. */
  read(into: Uint8Array, offset?: number, length?: number): number;
  /** Drops up to `bytes` of the oldest queued audio; returns bytes dropped. */
  discard(bytes: number): number;
  available(): number;
  stats(): NativeCaptureStats;
  /** Disconnects and stops the server thread. Idempotent. */
  close(): void;
}

export type NativeCaptureCtor = new (opts: NativeCaptureOptions, onState: CaptureStateListener) => NativeCapture;

export interface CaptureNativeApi {
  /** Absent only in an addon built before capture existed: src/audio/in reports that. */
  PwCapture?: NativeCaptureCtor;
  PulseCapture?: NativeCaptureCtor;
}

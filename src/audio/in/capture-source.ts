// The hardware boundary of the microphone path: a capture stream that fills a ring on the
// server's thread and is drained synchronously. Real implementations are the addon's PwCapture
// and PulseCapture; tests use FakeCaptureSource (fake-capture.ts). One contract suite
// (test/unit/audio-in-capture-contract.test.ts, test/integration/audio-in-capture.test.ts) runs
// against both.
import type { CaptureSampleFormat, NativeCapture, NativeCaptureStats } from '../../native-api/capture';

export type CaptureBackend = 'pipewire' | 'pulse';

export interface CaptureRequest {
  format: CaptureSampleFormat;
  rate: number;
  channels: number;
  /** Source name (--audio-source); undefined = the server's default source. */
  source?: string;
  /** Server to use (PipeWire remote / PulseAudio server); undefined = from the environment. */
  remote?: string;
  /** VM name: node.name qemu-<vm>-mic, node.description "<vm> microphone". */
  vmName: string;
  /** Capture period asked of the server, in frames. */
  latencyFrames: number;
  ringFrames: number;
  /** Server state changes ('connecting' | 'paused' | 'streaming' | 'error' | 'closed'). */
  onState(state: string, message: string): void;
}

/** A capture stream: the NativeCapture shape. */
export type CaptureStream = NativeCapture;
export type CaptureStats = NativeCaptureStats;

/** Opens a capture stream; throws (with a `code`) when the server cannot be reached. */
export type OpenCapture = (req: CaptureRequest) => CaptureStream;

export const APP_NAME = 'qemu-dbus-bridge';

/** node.name of the capture stream for a VM (what pw-dump / pactl show). */
export function micNodeName(vmName: string): string {
  return `qemu-${vmName}-mic`;
}

export function micDescription(vmName: string): string {
  return `${vmName} microphone`;
}

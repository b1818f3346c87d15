// What the camera pipeline hands frames to. One interface for the real sinks (v4l2loopback,
// PipeWire node, raw file/FIFO); test/contracts/camera-sink.contract.ts is what every sink (and
// the unit tests' fake) must do, run against the fake and the real ones.

import { CameraError } from '../errors';

export const CAMERA_PIXEL_FORMATS = ['YUY2', 'I420', 'NV12'] as const;

export type CameraPixelFormat = (typeof CAMERA_PIXEL_FORMATS)[number];

/** Bytes of one frame of tightly packed planes (YUY2: w*h*2; I420/NV12: w*h*3/2). */
export function frameBytes(format: CameraPixelFormat, width: number, height: number): number {
  return format === 'YUY2' ? width * height * 2 : width * height + 2 * ((width / 2) * (height / 2));
}

export const FORMAT_CODE: Record<CameraPixelFormat, 0 | 1 | 2> = { YUY2: 0, I420: 1, NV12: 2 };

export interface SinkStats {
  written: number;
  /** frames not written because the previous write was still in flight */
  dropped: number;
}

export type CameraSinkKind = 'v4l2' | 'pipewire' | 'file';

export interface CameraSink {
  readonly kind: CameraSinkKind;
  /** human-readable target (device path, node name, file) for status lines */
  readonly target: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /**
   * true when the sink repeats the last frame by itself (PipeWire driver node): the pipeline
   * then writes only changed frames. false (v4l2, file): the pipeline writes every tick.
   */
  readonly repeatsItself: boolean;
  /** Format frames must be in right now; null while nobody consumes (the pipeline idles). */
  wantedFormat(): CameraPixelFormat | null;
  /**
   * Hands over one frame (frameBytes(format, width, height) bytes; copied or written before the
   * next call may reuse it... see each sink). Returns false if the frame was dropped.
   * Throws ECLOSED after close(), ERANGE on a wrong size, EFORMAT on a format other than wantedFormat().
   */
  writeFrame(frame: Uint8Array, format: CameraPixelFormat): boolean;
  stats(): SinkStats;
  /** Idempotent. Waits for a write in flight. */
  close(): Promise<void>;
}

/** Shared argument checks, so every sink fails the same way (the contract suite tests this). */
export function checkFrame(sink: CameraSink, closed: boolean, frame: Uint8Array, format: CameraPixelFormat): void {
  if (closed) throw new CameraError('ECLOSED', `camera sink ${sink.target} is closed`);
  const want = sink.wantedFormat();
  if (want !== null && format !== want) throw new CameraError('EFORMAT', `camera sink ${sink.target} wants ${want} frames, got ${format}`);
  const n = frameBytes(format, sink.width, sink.height);
  if (frame.byteLength !== n) {
    throw new CameraError('ERANGE', `camera sink ${sink.target}: a ${format} ${sink.width}x${sink.height} frame is ${n} bytes, got ${frame.byteLength}`);
  }
}

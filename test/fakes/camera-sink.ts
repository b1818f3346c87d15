// In-memory sink for unit tests and fault injection: keeps copies of the frames it was given,
// can pretend nobody watches (wantedFormat null) or switch format like a PipeWire consumer.
// It passes the camera sink contract (test/contracts/camera-sink.contract.ts) like the real sinks.
import { CameraPixelFormat, CameraSink, CameraSinkKind, SinkStats, checkFrame } from '../../src/camera/sinks/types';

export interface FakeSinkOptions {
  width: number;
  height: number;
  fps: number;
  /** null = nobody watches; default YUY2 */
  format?: CameraPixelFormat | null;
  repeatsItself?: boolean;
  /** the real sink it stands in for; default 'file' (it keeps the bytes, like a file) */
  kind?: CameraSinkKind;
  /** keep at most this many frames (oldest dropped); default 100 */
  keep?: number;
}

export class FakeSink implements CameraSink {
  readonly kind: CameraSinkKind;
  readonly target = 'memory';
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly repeatsItself: boolean;
  /** copies of the frames written, oldest first, with performance.now() */
  readonly frames: { data: Buffer; format: CameraPixelFormat; at: number }[] = [];
  /** null = nobody watches */
  format: CameraPixelFormat | null;
  /** the next N writes throw this (fault injection) */
  failWrites: { count: number; error: Error } | null = null;
  private closed = false;
  private written = 0;
  private readonly keep: number;

  constructor(o: FakeSinkOptions) {
    this.kind = o.kind ?? 'file';
    this.width = o.width;
    this.height = o.height;
    this.fps = o.fps;
    this.format = o.format === undefined ? 'YUY2' : o.format;
    this.repeatsItself = o.repeatsItself ?? false;
    this.keep = o.keep ?? 100;
  }

  wantedFormat(): CameraPixelFormat | null {
    return this.closed ? null : this.format;
  }

  writeFrame(frame: Uint8Array, format: CameraPixelFormat): boolean {
    checkFrame(this, this.closed, frame, format);
    if (this.failWrites && this.failWrites.count > 0) {
      this.failWrites.count--;
      throw this.failWrites.error;
    }
    this.frames.push({ data: Buffer.from(frame), format, at: performance.now() });
    if (this.frames.length > this.keep) this.frames.shift();
    this.written++;
    return true;
  }

  stats(): SinkStats {
    return { written: this.written, dropped: 0 };
  }

  async close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

// Raw frame sink: writes exactly the bytes a v4l2loopback device would get (one whole frame of
// tightly packed planes after another, no header) to a regular file or a FIFO. For tests, and
// for piping into tools: `--camera file:/tmp/cam.yuv` then e.g.
//   ffplay -f rawvideo -pixel_format yuyv422 -video_size 1280x720 /tmp/cam.yuv
// One write is in flight at a time (libuv thread pool, so a slow FIFO reader never blocks the
// event loop); a frame that comes while the previous one is still being written is dropped.
import * as fs from 'fs';
import { CameraError } from '../errors';
import { CameraPixelFormat, CameraSink, SinkStats, checkFrame, frameBytes } from './types';

export interface FileSinkOptions {
  path: string;
  width: number;
  height: number;
  fps: number;
  format: CameraPixelFormat;
}

export class FileSink implements CameraSink {
  readonly kind = 'file';
  readonly target: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly repeatsItself = false;
  readonly format: CameraPixelFormat;
  private fd: number;
  private readonly copy: Buffer;
  private inFlight: Promise<void> | null = null;
  private closed = false;
  private written = 0;
  private dropped = 0;
  /** first write error (the sink stops writing after it) */
  error: Error | undefined;

  constructor(o: FileSinkOptions) {
    this.target = o.path;
    this.width = o.width;
    this.height = o.height;
    this.fps = o.fps;
    this.format = o.format;
    let isFifo = false;
    try {
      isFifo = fs.statSync(o.path).isFIFO();
    } catch {
      /* does not exist yet: created below */
    }
    try {
      // O_RDWR on a FIFO does not wait for a reader to appear (Linux), O_WRONLY would.
      this.fd = fs.openSync(o.path, isFifo ? 'r+' : 'w');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new CameraError(e.code ?? 'EIO', `camera file sink: cannot open ${o.path} for writing: ${e.message}`, 'give a writable file or FIFO path', { cause: err });
    }
    this.copy = Buffer.alloc(frameBytes(o.format, o.width, o.height));
  }

  wantedFormat(): CameraPixelFormat | null {
    return this.closed || this.error ? null : this.format;
  }

  writeFrame(frame: Uint8Array, format: CameraPixelFormat): boolean {
    checkFrame(this, this.closed, frame, format);
    if (this.inFlight || this.error) {
      this.dropped++;
      return false;
    }
    this.copy.set(frame);
    this.inFlight = this.writeAll().finally(() => {
      this.inFlight = null;
    });
    return true;
  }

  private async writeAll(): Promise<void> {
    let off = 0;
    while (off < this.copy.length) {
      const n = await new Promise<number>((resolve, reject) =>
        fs.write(this.fd, this.copy, off, this.copy.length - off, null, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      ).catch((err: Error) => {
        this.error = err;
        return -1;
      });
      if (n < 0) return;
      off += n;
    }
    this.written++;
  }

  stats(): SinkStats {
    return { written: this.written, dropped: this.dropped };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.inFlight) await this.inFlight;
    fs.closeSync(this.fd);
  }
}

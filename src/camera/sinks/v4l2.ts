// v4l2loopback sink: the producer side of a loopback device (v4l2loopback 0.12.7; run on the real
// module by the kernel tier, test/kernel/v4l2.test.ts):
// open O_RDWR -> VIDIOC_QUERYCAP (must offer VIDEO_OUTPUT) -> VIDIOC_S_FMT(OUTPUT) and CHECK what
// the driver kept (v4l2loopback silently substitutes formats[0] for unknown fourccs and returns
// the locked format once a producer is active) -> VIDIOC_S_PARM(OUTPUT, 1/fps) ->
// VIDIOC_STREAMON(OUTPUT) -> write() one whole frame per call. STREAMON moves no frame (write()
// does), but v4l2loopback 0.12.7 makes an opener its writer only there, and only a writer's
// close() gives the device its OUTPUT capability back: a write()-only producer leaves the device
// dead for the next one (the restarted bridge) until the module is reloaded.
// Every failure is one CameraError with a `code`, the problem and the command that fixes it.
import * as fs from 'fs';
import { native } from '../../native';
import { CameraError } from '../errors';
import { CameraPixelFormat, CameraSink, SinkStats, checkFrame, frameBytes } from './types';
import { silentLogger, type Logger } from '../../log';

export const V4L2_CAP_VIDEO_CAPTURE = 0x1;
export const V4L2_CAP_VIDEO_OUTPUT = 0x2;

/** V4L2 fourccs of our formats (videodev2.h): YUYV, YU12 (I420), NV12. */
export const V4L2_FOURCC: Record<CameraPixelFormat, number> = { YUY2: 0x56595559, I420: 0x32315559, NV12: 0x3231564e };

export function fourccName(v: number): string {
  return String.fromCharCode(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
}

export function modprobeLine(path: string): string {
  const nr = /^\/dev\/video(\d+)$/.exec(path)?.[1] ?? '10';
  return `sudo modprobe v4l2loopback exclusive_caps=1 video_nr=${nr} card_label="VM Camera"`;
}

export interface V4l2SinkOptions {
  path: string;
  width: number;
  height: number;
  fps: number;
  format: CameraPixelFormat;
  /** warnings when the device kept another frame rate. Default: silent. */
  log?: Logger;
}

/**
 * The camera's backend seam: the device calls V4l2Sink makes, nothing else. Failures throw an
 * Error with the errno `code` (ENOENT, EACCES, ENOTTY, EINVAL, EBUSY...), as fs and the addon do.
 * The real one is v4l2Backend (fs + the addon's ioctls); test/fakes/v4l2-loopback.ts plays
 * v4l2loopback 0.12.7, and the camera sink contract runs V4l2Sink over both.
 */
export interface V4l2Backend {
  open(path: string): number;
  close(fd: number): void;
  write(fd: number, data: Uint8Array): number;
  queryCap: typeof native.v4l2QueryCap;
  setFormat: typeof native.v4l2SetOutputFormat;
  setFps: typeof native.v4l2SetOutputFps;
  streamOn: typeof native.v4l2StreamOn;
}

export const v4l2Backend: V4l2Backend = {
  // libuv adds O_CLOEXEC itself
  open: (p) => fs.openSync(p, fs.constants.O_RDWR),
  close: (fd) => fs.closeSync(fd),
  write: (fd, d) => fs.writeSync(fd, d),
  queryCap: (fd) => native.v4l2QueryCap(fd),
  setFormat: (...a) => native.v4l2SetOutputFormat(...a),
  setFps: (fd, fps) => native.v4l2SetOutputFps(fd, fps),
  streamOn: (fd) => native.v4l2StreamOn(fd),
};

function describeFile(path: string): string {
  try {
    const st = fs.statSync(path);
    return st.isFIFO() ? 'a FIFO' : st.isFile() ? 'a regular file' : st.isCharacterDevice() ? 'a character device' : st.isDirectory() ? 'a directory' : 'not a device';
  } catch {
    return 'unknown';
  }
}

function groupOf(path: string): string {
  try {
    const gid = fs.statSync(path).gid;
    const line = fs
      .readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(gid));
    return line ? line.split(':')[0] : `gid ${gid}`;
  } catch {
    return 'video';
  }
}

export class V4l2Sink implements CameraSink {
  readonly kind = 'v4l2';
  readonly target: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly repeatsItself = false;
  readonly format: CameraPixelFormat;
  /** what QUERYCAP said, for status lines */
  readonly card: string;
  readonly driver: string;
  /** timeperframe the driver kept (numerator/denominator), or null if S_PARM failed */
  readonly keptFrameInterval: { numerator: number; denominator: number } | null;
  private readonly fd: number;
  private readonly deps: V4l2Backend;
  private closed = false;
  private written = 0;
  private dropped = 0;
  error: Error | undefined;

  /** Opens and configures the device; throws one clear Error (see codes below) on failure. */
  constructor(o: V4l2SinkOptions, deps: V4l2Backend = v4l2Backend) {
    this.target = o.path;
    this.width = o.width;
    this.height = o.height;
    this.fps = o.fps;
    this.format = o.format;
    this.deps = deps;
    const log = o.log ?? silentLogger;
    const p = o.path;

    try {
      this.fd = deps.open(p);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT')
        throw new CameraError('ECAMERA_NODEVICE', `camera: ${p} does not exist; the v4l2loopback module is not loaded (or uses another video_nr)`, `load it with: ${modprobeLine(p)}`);
      if (e.code === 'EACCES' || e.code === 'EPERM')
        throw new CameraError(
          'ECAMERA_PERMISSION',
          `camera: permission denied opening ${p} (group ${groupOf(p)})`,
          `add your user to that group (sudo usermod -aG ${groupOf(p)} $USER) and log in again`,
        );
      if (e.code === 'EBUSY') throw new CameraError('ECAMERA_BUSY', `camera: ${p} is busy (another program holds it exclusively)`, 'stop the other program or use another device');
      throw new CameraError(e.code ?? 'EIO', `camera: cannot open ${p}: ${e.message}`, '', { cause: err });
    }

    try {
      let cap;
      try {
        cap = deps.queryCap(this.fd);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ENOTTY' || code === 'EINVAL')
          throw new CameraError(
            'ECAMERA_NOTV4L2',
            `camera: ${p} is not a V4L2 device (${describeFile(p)}; VIDIOC_QUERYCAP: ${code})`,
            `give the v4l2loopback device, e.g. /dev/video10 (list them: v4l2-ctl --list-devices; create one: ${modprobeLine('/dev/video10')})`,
          );
        throw new CameraError(code ?? 'EIO', `camera: VIDIOC_QUERYCAP on ${p} failed: ${(err as Error).message}`, '', { cause: err });
      }
      this.card = cap.card;
      this.driver = cap.driver;
      if (!(cap.deviceCaps & V4L2_CAP_VIDEO_OUTPUT)) {
        const loopback = /loopback/i.test(cap.driver);
        throw loopback
          ? new CameraError(
              'ECAMERA_NOTOUTPUT',
              `camera: ${p} (v4l2loopback "${cap.card}") offers no video output: another producer is already writing to it (with exclusive_caps=1 the device turns capture-only once a producer runs)`,
              'stop the other producer or use another device',
            )
          : new CameraError(
              'ECAMERA_NOTOUTPUT',
              `camera: ${p} is a "${cap.driver}" device ("${cap.card}") without video output, not a v4l2loopback device`,
              `load v4l2loopback: ${modprobeLine(p)}`,
            );
      }

      const fourcc = V4L2_FOURCC[o.format];
      const bytesperline = o.format === 'YUY2' ? o.width * 2 : o.width;
      const sizeimage = frameBytes(o.format, o.width, o.height);
      let kept;
      try {
        kept = deps.setFormat(this.fd, o.width, o.height, fourcc, bytesperline, sizeimage);
      } catch (err) {
        throw new CameraError(
          'ECAMERA_FORMAT',
          `camera: ${p} refused ${fourccName(fourcc)} ${o.width}x${o.height} (VIDIOC_S_FMT: ${(err as Error).message}); v4l2loopback keeps the format of a running producer/consumer and limits sizes to max_width x max_height`,
          `close the other program, or reload the module (sudo modprobe -r v4l2loopback; ${modprobeLine(p)})`,
        );
      }
      if (kept.pixelformat !== fourcc || kept.width !== o.width || kept.height !== o.height) {
        throw new CameraError(
          'ECAMERA_FORMAT',
          `camera: ${p} refused ${fourccName(fourcc)} ${o.width}x${o.height}: the driver kept ${fourccName(kept.pixelformat)} ${kept.width}x${kept.height}; ` +
            `another program has locked the format, or the size is over the module's max_width/max_height`,
          `close it, or reload the module (sudo modprobe -r v4l2loopback; ${modprobeLine(p)})`,
        );
      }
      if (kept.sizeimage < sizeimage) {
        throw new CameraError('ECAMERA_FORMAT', `camera: ${p} kept sizeimage ${kept.sizeimage} < ${sizeimage} bytes per ${o.format} frame`, `reload the module (sudo modprobe -r v4l2loopback; ${modprobeLine(p)})`);
      }

      try {
        this.keptFrameInterval = deps.setFps(this.fd, o.fps);
        const k = this.keptFrameInterval;
        if (k.numerator * o.fps !== k.denominator) log.warn(`${p} kept ${k.denominator}/${k.numerator} fps instead of ${o.fps}; frames are still written at ${o.fps}/s`);
      } catch (err) {
        this.keptFrameInterval = null;
        log.warn(`${p} did not take the frame rate (VIDIOC_S_PARM: ${(err as Error).message}); frames are still written at ${o.fps}/s`);
      }

      // Last, so that a producer refused above never became the writer (its close() changes nothing).
      try {
        deps.streamOn(this.fd);
      } catch (err) {
        throw new CameraError(
          'ECAMERA_STREAMON',
          `camera: ${p} refused to start its output queue (VIDIOC_STREAMON: ${(err as { code?: string }).code ?? (err as Error).message})`,
          `reload the module: sudo modprobe -r v4l2loopback; ${modprobeLine(p)}`,
        );
      }
    } catch (err) {
      deps.close(this.fd);
      throw err;
    }
  }

  wantedFormat(): CameraPixelFormat | null {
    return this.closed || this.error ? null : this.format;
  }

  writeFrame(frame: Uint8Array, format: CameraPixelFormat): boolean {
    checkFrame(this, this.closed, frame, format);
    if (this.error) return false;
    try {
      // v4l2loopback copies the frame into its ring and returns: a blocking write is ~a memcpy.
      const n = this.deps.write(this.fd, frame);
      if (n !== frame.byteLength) throw new CameraError('EIO', `short write: ${n} of ${frame.byteLength} bytes`);
      this.written++;
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EAGAIN') {
        this.dropped++;
        return false;
      }
      this.error = new CameraError(e.code ?? 'EIO', `camera: writing a frame to ${this.target} failed: ${e.message}`, '', { cause: err });
      throw this.error;
    }
  }

  stats(): SinkStats {
    return { written: this.written, dropped: this.dropped };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.close(this.fd);
    return Promise.resolve();
  }
}

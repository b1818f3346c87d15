// A fake v4l2loopback 0.12.7 device behind the V4l2Backend seam, for unit tests of V4l2Sink: the
// behaviour the sink must cope with, from the driver's source (v4l2loopback.c of 0.12.7; the kernel tier,
// test/kernel/v4l2.test.ts, checks the real sink on the real module). Two device flags decide what QUERYCAP announces with
// exclusive_caps=1: ready_for_output (OUTPUT; set at load, cleared by STREAMON(OUTPUT) and by
// write(), set again ONLY when an opener that did STREAMON(OUTPUT) - the "writer" - closes) and
// ready_for_capture (CAPTURE; set by STREAMON(OUTPUT)/write(), cleared when the last opener
// closes). So a write()-only producer leaves the device with no capability at all once it
// closes, and every later producer fails until the module is reloaded. While ready_for_capture,
// S_FMT returns the format in use (locked); an unknown fourcc is silently replaced by formats[0]
// (BGR4); sizes are clamped to max_width x max_height; write() = one frame.
import type { V4l2Backend } from '../../src/camera/sinks/v4l2';

const V4L2_CAP_VIDEO_CAPTURE = 0x1;
const V4L2_CAP_VIDEO_OUTPUT = 0x2;
const V4L2_CAP_READWRITE = 0x01000000;
const V4L2_CAP_STREAMING = 0x04000000;
const BGR4 = 0x34524742;
const KNOWN = new Set([0x56595559, 0x32315559, 0x3231564e, 0x33424752, 0x33524742, BGR4, 0x34424752, 0x47504a4d]);

function errno(code: string, what: string): Error & { code: string } {
  return Object.assign(new Error(`${what}: ${code}`), { code });
}

export interface FakeLoopbackOptions {
  path?: string;
  exclusiveCaps?: boolean;
  maxWidth?: number;
  maxHeight?: number;
  /** open() fails with this errno code (EACCES to play a missing `video` group membership) */
  openError?: string;
  /** pretend to be another kind of V4L2 device (e.g. a real webcam: capture only) */
  driver?: string;
  caps?: number;
  /** VIDIOC_STREAMON(OUTPUT) fails with this errno code */
  streamOnError?: string;
}

export class FakeV4l2Loopback implements V4l2Backend {
  readonly path: string;
  readonly frames: Buffer[] = [];
  /** the driver's pix_format: set by S_FMT, locked while readyForCapture */
  pixFormat: { width: number; height: number; pixelformat: number; bytesperline: number; sizeimage: number } | null = null;
  readyForOutput = true;
  readyForCapture = false;
  /** open fds -> whether that opener did STREAMON(OUTPUT) (v4l2loopback's WRITER) */
  readonly openers = new Map<number, { writer: boolean }>();
  private nextFd = 1000;
  private readonly o: FakeLoopbackOptions;

  constructor(o: FakeLoopbackOptions = {}) {
    this.o = o;
    this.path = o.path ?? '/dev/video10';
  }

  get openFds(): ReadonlySet<number> {
    return new Set(this.openers.keys());
  }

  open(path: string): number {
    if (path !== this.path) throw errno('ENOENT', `open ${path}`);
    if (this.o.openError) throw errno(this.o.openError, `open ${path}`);
    const fd = this.nextFd++;
    this.openers.set(fd, { writer: false });
    return fd;
  }

  close(fd: number): void {
    const opener = this.openers.get(fd);
    if (!opener) throw errno('EBADF', 'close');
    this.openers.delete(fd);
    if (this.openers.size === 0) {
      // try_free_buffers (no keep_format): buffers freed, the format no longer locked
      this.readyForCapture = false;
    }
    if (opener.writer) this.readyForOutput = true;
  }

  private check(fd: number): void {
    if (!this.openers.has(fd)) throw errno('EBADF', 'ioctl');
  }

  queryCap(fd: number) {
    this.check(fd);
    let caps = this.o.caps;
    if (caps === undefined) {
      const io =
        this.o.exclusiveCaps === false
          ? V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT
          : (this.readyForCapture ? V4L2_CAP_VIDEO_CAPTURE : 0) | (this.readyForOutput ? V4L2_CAP_VIDEO_OUTPUT : 0);
      caps = io | V4L2_CAP_READWRITE | V4L2_CAP_STREAMING;
    }
    return { driver: this.o.driver ?? 'v4l2 loopback', card: 'VM Camera', busInfo: 'platform:v4l2loopback-000', version: 0x60100, capabilities: caps | 0x80000000, deviceCaps: caps };
  }

  setFormat(fd: number, width: number, height: number, fourcc: number, bytesperline: number, sizeimage: number) {
    this.check(fd);
    if (this.readyForCapture && this.pixFormat) return { ...this.pixFormat, field: 1, colorspace: 8 };
    const w = Math.max(48, Math.min(this.o.maxWidth ?? 8192, width));
    const h = Math.max(32, Math.min(this.o.maxHeight ?? 8192, height));
    const pf = KNOWN.has(fourcc) ? fourcc : BGR4;
    const bpl = pf === fourcc && w === width ? bytesperline : w * 4;
    const size = pf === fourcc && w === width && h === height ? sizeimage : bpl * h;
    this.pixFormat = { width: w, height: h, pixelformat: pf, bytesperline: bpl, sizeimage: size };
    return { ...this.pixFormat, field: 1, colorspace: 8 };
  }

  setFps(fd: number, fps: number) {
    this.check(fd);
    const f = Math.max(1, Math.min(1000, fps));
    return { numerator: 1, denominator: f };
  }

  streamOn(fd: number): void {
    this.check(fd);
    if (this.o.streamOnError) throw errno(this.o.streamOnError, 'VIDIOC_STREAMON(OUTPUT)');
    const opener = this.openers.get(fd)!;
    opener.writer = true;
    this.becomeProducer();
  }

  write(fd: number, data: Uint8Array): number {
    this.check(fd);
    this.becomeProducer();
    const n = Math.min(data.byteLength, this.pixFormat!.sizeimage);
    this.frames.push(Buffer.from(data.subarray(0, n)));
    return n;
  }

  private becomeProducer(): void {
    this.readyForOutput = false;
    if (!this.readyForCapture) {
      // allocate_buffers() needs the buffer size S_FMT computed
      if (!this.pixFormat) throw errno('EINVAL', 'no format set');
      this.readyForCapture = true;
    }
  }
}

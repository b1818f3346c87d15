// PipeWire camera node sink: a Video/Source with media.role=Camera (what the camera portal and
// WirePlumber's access-portal filter on) and node.description "<vm> screen". The node drives
// itself at the camera rate and repeats the last frame (native/pw_video.cc), so the pipeline
// only pushes changed frames. The consumer picks YUY2, I420 or NV12; while nobody is linked the
// stream is paused and wantedFormat() is null, so nothing is converted.
import { callNative, native } from '../../native';
import type { PwCameraHandle } from '../../native-api/video';
import { cameraDescription, cameraIdentity, cameraNodeName } from '../../stream-identity';
import { CameraPixelFormat, CameraSink, SinkStats, checkFrame } from './types';
import { type Logger, silentLogger } from '../../log';

export interface PipeWireSinkOptions {
  /** VM name: node.name "qemu-<vm>-camera", node.description "<vm> screen" */
  vmName: string;
  width: number;
  height: number;
  fps: number;
  /** preferred first; default YUY2, I420, NV12 */
  formats?: CameraPixelFormat[];
  /** default cameraNodeName(vmName) */
  nodeName?: string;
  /** default "<vm> screen" (cameraDescription) */
  description?: string;
  /** PipeWire socket (name or absolute path); default: PIPEWIRE_REMOTE / XDG_RUNTIME_DIR */
  remote?: string;
  /** a warning when the connection is lost, an info line when it is back. Default: silent. */
  log?: Logger;
}

const RETRY_MS = [500, 1000, 2000, 5000];

export { cameraNodeName };

export class PipeWireSink implements CameraSink {
  readonly kind = 'pipewire';
  readonly target: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly repeatsItself = true;
  readonly description: string;
  private cam: PwCameraHandle | null;
  private closed = false;
  private pushed = 0;
  private dropped = 0;
  private readonly o: PipeWireSinkOptions;
  private readonly log: Logger;
  private lostAt = 0;
  private retries = 0;
  private nextTry = 0;
  /** times the node was re-created after the daemon went away */
  reconnects = 0;

  constructor(o: PipeWireSinkOptions) {
    this.target = o.nodeName ?? cameraNodeName(o.vmName);
    this.description = o.description ?? cameraDescription(o.vmName);
    this.width = o.width;
    this.height = o.height;
    this.fps = o.fps;
    this.o = o;
    this.log = o.log ?? silentLogger;
    this.cam = this.create(); // the first connection fails loudly (EPIPEWIRE)
  }

  private create(): PwCameraHandle {
    return callNative(() => new native.PwCamera({
      ...cameraIdentity(this.target, this.description),
      width: this.o.width,
      height: this.o.height,
      fps: this.o.fps,
      formats: this.o.formats ?? ['YUY2', 'I420', 'NV12'],
      remote: this.o.remote,
      }),
      { EPIPEWIRE: 'is PipeWire running for this user? Check XDG_RUNTIME_DIR / PIPEWIRE_REMOTE, or choose another --camera' },
    );
  }

  /** Polled by the pipeline every tick: notices a lost daemon and re-creates the node, with backoff. */
  private live(): PwCameraHandle | null {
    if (this.closed) return null;
    const now = performance.now();
    if (this.cam && this.cam.state().state === 'error') {
      this.log.warn(`PipeWire node ${this.target} failed (${this.cam.state().error ?? 'unknown error'}); reconnecting`);
      this.cam.close();
      this.cam = null;
      this.lostAt = now;
      this.nextTry = now + RETRY_MS[0];
      this.retries = 0;
    }
    if (!this.cam && now >= this.nextTry) {
      try {
        this.cam = this.create();
        this.reconnects++;
        this.log.info(`PipeWire node ${this.target} is back after ${((now - this.lostAt) / 1000).toFixed(1)} s`);
      } catch {
        this.retries++;
        this.nextTry = now + RETRY_MS[Math.min(this.retries, RETRY_MS.length - 1)];
      }
    }
    return this.cam;
  }

  wantedFormat(): CameraPixelFormat | null {
    const cam = this.live();
    if (!cam || cam.state().state !== 'streaming') return null;
    return cam.format();
  }

  /** 'paused' while nobody watches, 'streaming' while a consumer is linked, 'reconnecting' after a daemon loss */
  state(): { state: string; error?: string } {
    if (this.closed) return { state: 'closed' };
    return this.cam ? this.cam.state() : { state: 'reconnecting' };
  }

  nodeId(): number {
    return this.cam?.nodeId() ?? 0xffffffff;
  }

  nativeStats(): { pushed: number; sent: number; repeated: number; noBuffer: number; waiting: number } {
    return this.cam?.stats() ?? { pushed: 0, sent: 0, repeated: 0, noBuffer: 0, waiting: 0 };
  }

  writeFrame(frame: Uint8Array, format: CameraPixelFormat): boolean {
    checkFrame(this, this.closed, frame, format);
    if (!this.cam) {
      this.dropped++; // reconnecting
      return false;
    }
    this.cam.push(frame, format);
    this.pushed++;
    return true;
  }

  stats(): SinkStats {
    return { written: this.pushed, dropped: this.dropped };
  }

  /** Buffers the stream produced: fresh frames and its repeats of the last one. */
  delivered(): number {
    const s = this.nativeStats();
    return s.sent + s.repeated;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cam?.close();
    this.cam = null;
    return Promise.resolve();
  }
}

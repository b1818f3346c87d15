// PipeWire camera node sink: a Video/Source with media.role=Camera (what the camera portal and
// WirePlumber's access-portal filter on) and node.description "<vm> screen". The node drives
// itself at the camera rate and repeats the last frame (native/pw_video.cc), so the pipeline
// only pushes changed frames. The consumer picks YUY2, I420 or NV12; while nobody is linked the
// stream is paused and wantedFormat() is null, so nothing is converted.
import { native } from '../../native';
import type { PwCameraHandle } from '../../native-api/video';
import { CameraPixelFormat, CameraSink, SinkStats, checkFrame } from './types';

export interface PipeWireSinkOptions {
  /** VM name: node.name "qemu-<vm>-camera", node.description "<vm> screen" */
  vmName: string;
  width: number;
  height: number;
  fps: number;
  /** preferred first; default YUY2, I420, NV12 */
  formats?: CameraPixelFormat[];
  nodeName?: string;
  /** PipeWire socket (name or absolute path); default: PIPEWIRE_REMOTE / XDG_RUNTIME_DIR */
  remote?: string;
}

export function cameraNodeName(vmName: string): string {
  return `qemu-${vmName.replace(/[^A-Za-z0-9_.-]/g, '_')}-camera`;
}

export class PipeWireSink implements CameraSink {
  readonly kind = 'pipewire';
  readonly target: string;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly repeatsItself = true;
  readonly description: string;
  private readonly cam: PwCameraHandle;
  private closed = false;
  private pushed = 0;

  constructor(o: PipeWireSinkOptions) {
    this.target = o.nodeName ?? cameraNodeName(o.vmName);
    this.description = `${o.vmName} screen`;
    this.width = o.width;
    this.height = o.height;
    this.fps = o.fps;
    this.cam = new native.PwCamera({
      nodeName: this.target,
      description: this.description,
      width: o.width,
      height: o.height,
      fps: o.fps,
      formats: o.formats ?? ['YUY2', 'I420', 'NV12'],
      remote: o.remote,
    });
  }

  wantedFormat(): CameraPixelFormat | null {
    if (this.closed) return null;
    if (this.cam.state().state !== 'streaming') return null;
    return this.cam.format();
  }

  /** 'paused' while nobody watches, 'streaming' while a consumer is linked */
  state(): { state: string; error?: string } {
    return this.closed ? { state: 'closed' } : this.cam.state();
  }

  nodeId(): number {
    return this.cam.nodeId();
  }

  nativeStats(): { pushed: number; sent: number; repeated: number; noBuffer: number; waiting: number } {
    return this.cam.stats();
  }

  writeFrame(frame: Uint8Array, format: CameraPixelFormat): boolean {
    checkFrame(this, this.closed, frame, format);
    this.cam.push(frame, format);
    this.pushed++;
    return true;
  }

  stats(): SinkStats {
    return { written: this.pushed, dropped: 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cam.close();
    return Promise.resolve();
  }
}

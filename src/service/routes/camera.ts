// Route adapter: guest screen -> webcam (src/camera: listener + pipeline + sink). `auto` picks
// the first v4l2loopback device when the module is loaded, else a PipeWire camera node.
import * as fs from 'fs';
import { pinGuestResolution, startCamera, type Camera, type CameraConfig, type CameraTarget } from '../../camera';
import type { BridgeConfig } from '../../config/schema';
import { CodedError } from '../../errors';
import { parseSize } from '../../config/schema';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { Route, RouteContext } from '../route';

const V4L2LOOPBACK_SYS = '/sys/devices/virtual/video4linux';

export function resolveCameraTarget(device: string, sysDir = V4L2LOOPBACK_SYS): CameraTarget {
  if (device === 'none') return { kind: 'none' };
  if (device === 'pipewire') return { kind: 'pipewire' };
  if (device.startsWith('file:')) return { kind: 'file', path: device.slice(5) };
  if (device === 'auto') {
    let nodes: string[] = [];
    try {
      nodes = fs.readdirSync(sysDir).filter((n) => /^video\d+$/.test(n));
    } catch {
      nodes = [];
    }
    nodes.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
    return nodes.length ? { kind: 'v4l2', path: `/dev/${nodes[0]}` } : { kind: 'pipewire' };
  }
  return { kind: 'v4l2', path: device };
}

export function cameraConfigOf(config: BridgeConfig, sysDir?: string): CameraConfig {
  const c = config.camera;
  const { width, height } = parseSize(c.size);
  return {
    target: resolveCameraTarget(c.device, sysDir),
    width,
    height,
    fps: c.fps,
    format: c.format,
    pinResolution: c.pin_resolution,
    cursor: c.cursor,
  };
}

export class CameraRoute implements Route<QemuSession> {
  readonly name = 'camera' as const;
  private camera: Camera | undefined;
  private handle: ListenerHandle | undefined;
  private cfg: CameraConfig | undefined;

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const cfg = cameraConfigOf(this.config);
    this.cfg = cfg;
    const log = (line: string): void => ctx.log.info(line);
    const camera = startCamera(cfg, ctx.vm.name, { log });
    if (!camera) throw new CodedError('EDISABLED', 'camera is off (--camera none)', '', { permanent: true });
    this.camera = camera;
    const console = ctx.vm.qemu.console();
    this.handle = await ctx.vm.qemu.addConsoleListener(camera.listener, { console: console.id });
    if (cfg.pinResolution) await pinGuestResolution(console.proxy, cfg.width, cfg.height, log);
  }

  async stop(): Promise<void> {
    const handle = this.handle;
    const camera = this.camera;
    this.handle = undefined;
    this.camera = undefined;
    await handle?.remove();
    await camera?.stop();
  }

  /** Frames written so far (demo fps, tests). */
  stats(): Camera['pipeline']['stats'] | undefined {
    return this.camera?.pipeline.stats;
  }

  status(): string {
    const c = this.cfg;
    if (!c) return 'camera';
    const t = c.target;
    const where = t.kind === 'v4l2' ? t.path : t.kind === 'file' ? t.path : t.kind === 'pipewire' ? 'PipeWire camera' : 'none';
    return `camera ${c.width}x${c.height}@${c.fps} → ${where}`;
  }
}

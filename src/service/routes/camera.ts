// Route adapter: guest screen -> webcam (src/camera: listener + pipeline + sink). `auto` picks
// the first v4l2loopback device when the module is loaded, else a PipeWire camera node.
import * as fs from 'fs';
import { pinGuestResolution, startCamera, type Camera, type CameraConfig, type CameraTarget } from '../../camera';
import type { BridgeConfig } from '../../config/schema';
import { parseSize } from '../../config/schema';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { CameraCounters, Route, RouteContext } from '../route';

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
  private lastRead = { at: 0, written: 0 };

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const cfg = cameraConfigOf(this.config);
    this.cfg = cfg;
    const log = (line: string): void => ctx.log.info(line);
    // A viewer coming or going is this route's state change (the status says whether anyone watches).
    const camera = startCamera(cfg, ctx.vm.name, { log, onViewerChange: () => ctx.statusChanged() });
    if (!camera) throw Object.assign(new Error('camera is off (--camera none)'), { code: 'EDISABLED' });
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

  private target(): string {
    const t = this.cfg?.target ?? resolveCameraTarget(this.config.camera.device);
    return t.kind === 'v4l2' ? t.path : t.kind === 'file' ? t.path : t.kind === 'pipewire' ? 'PipeWire camera' : 'none';
  }

  status(): string {
    const c = this.cfg;
    if (!c) return 'camera';
    return `camera ${c.width}x${c.height}@${c.fps} → ${this.target()}`;
  }

  counters(): CameraCounters {
    const p = this.camera?.pipeline;
    const now = performance.now();
    const written = this.camera?.sink.delivered?.() ?? p?.stats.written ?? 0;
    // fps and latencies over the interval since the previous reading (the status bus reads once a second).
    const dt = (now - this.lastRead.at) / 1000;
    const fps = p && dt > 0 && written >= this.lastRead.written ? (written - this.lastRead.written) / dt : 0;
    this.lastRead = { at: now, written };
    const lat = p?.takeLatencies().sort((a, b) => a - b) ?? [];
    const pct = (q: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] : 0);
    return {
      route: 'camera',
      target: this.target(),
      fps,
      converted: p?.stats.converted ?? 0,
      repeated: p?.stats.repeated ?? 0,
      dropped: p?.stats.dropped ?? 0,
      latencyP50Ms: pct(0.5),
      latencyP99Ms: pct(0.99),
      viewer: p?.viewer ?? false,
    };
  }
}

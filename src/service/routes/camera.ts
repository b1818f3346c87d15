// Route adapter: guest screen -> webcam (src/camera: listener + pipeline + sink). The camera part
// turns the [camera] table into its config (`auto`: src/camera/options.ts resolveCameraTarget).
import { cameraConfigOf, parseCameraDevice, pinGuestResolution, resolveCameraTarget, startCamera, type Camera, type CameraConfig } from '../../camera';
import type { BridgeConfig } from '../../config/schema';
import { CodedError } from '../../errors';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { CameraCounters, Route, RouteContext } from '../route';

export class CameraRoute implements Route<QemuSession> {
  readonly name = 'camera' as const;
  private camera: Camera | undefined;
  private handle: ListenerHandle | undefined;
  private cfg: CameraConfig | undefined;
  private lastRead = { at: 0, written: 0 };

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const cfg = cameraConfigOf(this.config.camera);
    this.cfg = cfg;
    // [camera] console / --camera-console, else the first graphic console; ECONSOLE_UNKNOWN names those there are.
    const console = await ctx.vm.qemu.chooseConsole(this.config.camera.console, '--camera-console');
    // A viewer coming or going is this route's state change (the status says whether anyone watches).
    const camera = startCamera(cfg, ctx.vm.name, { log: ctx.log, onViewerChange: () => ctx.statusChanged() });
    if (!camera) throw new CodedError('EDISABLED', 'camera is off (--camera none)', '', { permanent: true });
    this.camera = camera;
    this.handle = await ctx.vm.qemu.addConsoleListener(camera.listener, { console: console.id });
    if (cfg.pinResolution) await pinGuestResolution(console.proxy, cfg.width, cfg.height, ctx.log);
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
    const t = this.cfg?.target ?? resolveCameraTarget(parseCameraDevice(this.config.camera.device));
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

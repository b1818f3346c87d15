// Route adapter: guest screen -> webcam (src/camera: listener + pipeline + sink). The camera part
// turns the [camera] table into its config (`auto`: src/camera/options.ts resolveCameraTarget).
import { cameraConfigOf, pinGuestResolution, startCamera, type Camera, type CameraConfig } from '../../camera';
import type { BridgeConfig } from '../../config/schema';
import { CodedError } from '../../errors';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { Route, RouteContext } from '../route';

export class CameraRoute implements Route<QemuSession> {
  readonly name = 'camera' as const;
  private camera: Camera | undefined;
  private handle: ListenerHandle | undefined;
  private cfg: CameraConfig | undefined;

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const cfg = cameraConfigOf(this.config.camera);
    this.cfg = cfg;
    const camera = startCamera(cfg, ctx.vm.name, { log: ctx.log });
    if (!camera) throw new CodedError('EDISABLED', 'camera is off (--camera none)', '', { permanent: true });
    this.camera = camera;
    const console = ctx.vm.qemu.console();
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

  status(): string {
    const c = this.cfg;
    if (!c) return 'camera';
    const t = c.target;
    const where = t.kind === 'v4l2' ? t.path : t.kind === 'file' ? t.path : t.kind === 'pipewire' ? 'PipeWire camera' : 'none';
    return `camera ${c.width}x${c.height}@${c.fps} → ${where}`;
  }
}

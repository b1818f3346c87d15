// Route adapter: guest screen -> webcam (src/camera: listener + pipeline + sink). The camera part
// turns the [camera] table, or one [[camera]] entry, into its config (`auto`: src/camera/options.ts
// resolveCameraTarget). One route per camera: each entry of several is its own route (camera-N,
// its own state, counters and retries), so a bad entry keeps only itself off.
import { cameraConfigOf, parseCameraDevice, pinGuestResolution, pipewireNodeName, resolveCameraTarget, startCamera, type Camera, type CameraConfig } from '../../camera';
import type { CameraEntry, CameraTable } from '../../config/schema';
import { CodedError } from '../../errors';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import { routeIdOf, type CameraCounters, type Route, type RouteContext, type RouteId } from '../route';

export class CameraRoute implements Route<QemuSession> {
  readonly name = 'camera' as const;
  readonly id: RouteId;
  private readonly settings: CameraTable;
  /** set for a [[camera]] entry: the console it shows names its PipeWire node */
  private readonly console: number | undefined;
  /** the [[camera]] entry's position, undefined for the one [camera] */
  private readonly entry: number | undefined;
  private camera: Camera | undefined;
  private handle: ListenerHandle | undefined;
  private cfg: CameraConfig | undefined;
  private vmName = '';
  private lastRead = { at: 0, written: 0 };

  constructor(camera: CameraEntry) {
    this.settings = camera.settings;
    this.id = camera.index === undefined ? 'camera' : routeIdOf('camera', camera.index);
    this.entry = camera.index;
    this.console = camera.index === undefined ? undefined : camera.settings.console;
  }

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const cfg: CameraConfig = { ...cameraConfigOf(this.settings), console: this.console };
    this.cfg = cfg;
    this.vmName = ctx.vm.name;
    // [camera] console / --camera-console / the entry's console, else the first graphic console;
    // ECONSOLE_UNKNOWN names those there are.
    const console = await ctx.vm.qemu.chooseConsole(this.settings.console, this.entry === undefined ? '--camera-console' : `camera[${this.entry}].console in the config`);
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
    const c = this.cfg;
    const t = c?.target ?? resolveCameraTarget(parseCameraDevice(this.settings.device));
    if (t.kind !== 'pipewire') return t.kind === 'none' ? 'none' : t.path;
    // one camera: 'PipeWire camera' (as ever); one of several, or a named node: which node
    if (t.node === undefined && this.console === undefined) return 'PipeWire camera';
    const node = c ? pipewireNodeName(c, this.vmName) : t.node;
    return node !== undefined ? `PipeWire camera ${node}` : `PipeWire camera of console ${String(this.console)}`;
  }

  status(): string {
    const c = this.cfg;
    if (!c) return this.id;
    const console = this.console === undefined ? '' : ` console ${this.console}`;
    return `${this.id}${console} ${c.width}x${c.height}@${c.fps} → ${this.target()}`;
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

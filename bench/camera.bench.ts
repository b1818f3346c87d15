// Guest screen -> camera. The guest sends 1920x1080 full-frame updates at 60/s (each one a
// Scanout through the real CameraConsoleListener, i.e. the pixman->ARGB framebuffer copy), the
// camera clock runs at 30/s and converts (scale + letterbox + YUV) only when the picture changed.
// Measured per configuration: CPU % of one core (process.cpuUsage over wall time), latency from
// the update's arrival to the frame handed to the sink (p50/p99), RSS growth.
// Baselines measured in the same run, paced the same way: a plain memcpy of the same frames at
// 60/s (the least any bridge must do), and the bare libyuv conversion (yuvCompose on a ready
// framebuffer, no listener/pipeline/timers) at 30/s.
// A last configuration sends Updates of one 1920x68 band (1/16 of the screen, a scrolling
// terminal or a progress bar) instead of whole Scanouts: the camera converts only what changed.
import { CameraConsoleListener } from '../src/camera/listener';
import { letterbox } from '../src/camera/letterbox';
import { CameraPipeline } from '../src/camera/pipeline';
import { CameraPixelFormat, CameraSink, FORMAT_CODE, SinkStats, frameBytes } from '../src/camera/sinks/types';
import { native } from '../src/native';
import { BenchContext, BenchRow, percentile } from './lib';
import { lineLogger } from '../test/fakes/logger';

const GW = 1920;
const GH = 1080;
const XRGB = 0x20020888;

/** The hand-over point: counts frames, keeps nothing (what the sink does after is not ours). */
export class CountingSink implements CameraSink {
  readonly kind = 'file'; // writes every tick, like the file and v4l2 sinks (repeatsItself false)
  readonly target = 'bench';
  readonly repeatsItself = false;
  written = 0;
  constructor(
    readonly width: number,
    readonly height: number,
    readonly fps: number,
    private readonly format: CameraPixelFormat,
  ) {}
  wantedFormat(): CameraPixelFormat {
    return this.format;
  }
  writeFrame(): boolean {
    this.written++;
    return true;
  }
  stats(): SinkStats {
    return { written: this.written, dropped: 0 };
  }
  async close(): Promise<void> {}
}

/** Two different full frames (so every update really changes the picture). */
function guestFrames(): Buffer[] {
  const frames: Buffer[] = [];
  for (let k = 0; k < 2; k++) {
    const b = Buffer.alloc(GW * GH * 4);
    for (let y = 0; y < GH; y++)
      for (let x = 0; x < GW; x += 8) {
        const i = (y * GW + x) * 4;
        b[i] = (x + k * 64) & 0xff;
        b[i + 1] = y & 0xff;
        b[i + 2] = (x ^ y) & 0xff;
      }
    frames.push(b);
  }
  return frames;
}

interface Measured {
  cpuPct: number;
  rssGrowthMb: number;
  wallMs: number;
}

/** Runs fn at hz for durationMs (drift-free deadlines), measuring CPU of the whole process. */
async function paced(hz: number, durationMs: number, fn: (i: number) => void): Promise<Measured> {
  if (global.gc) global.gc();
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const period = 1000 / hz;
  let i = 0;
  await new Promise<void>((resolve) => {
    const step = () => {
      const now = performance.now();
      if (now - t0 >= durationMs) return resolve();
      fn(i++);
      if (i % 16 === 0) rssMax = Math.max(rssMax, process.memoryUsage().rss);
      const next = t0 + i * period;
      setTimeout(step, Math.max(0, next - performance.now()));
    };
    step();
  });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100, rssGrowthMb: (rssMax - rss0) / 1048576, wallMs };
}

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const durationMs = Math.max(1500, 6000 * ctx.durationScale);
  const frames = guestFrames();
  const rows: BenchRow[] = [];

  // Baseline 1: plain memcpy of the same frames at 60/s.
  const copyDst = Buffer.alloc(GW * GH * 4);
  for (let i = 0; i < 4; i++) frames[i & 1].copy(copyDst); // first-touch page faults out of the measurement
  const memcpy = await paced(60, durationMs, (i) => frames[i & 1].copy(copyDst));
  ctx.log(`memcpy 1080p at 60/s: ${memcpy.cpuPct.toFixed(1)} % CPU`);

  const configs: [number, number, CameraPixelFormat][] = [
    [1280, 720, 'YUY2'],
    [1280, 720, 'NV12'],
    [1920, 1080, 'YUY2'],
    [1920, 1080, 'NV12'],
  ];
  for (const [cw, ch, format] of configs) {
    const label = `1080p60 -> ${cw}x${ch}@30 ${format === 'YUY2' ? 'YUYV' : format}`;

    // Baseline 2: the bare libyuv work for this output at 30/s (fb already in ARGB).
    const out = Buffer.alloc(frameBytes(format, cw, ch));
    const scratch = Buffer.alloc(cw * ch * 4);
    const rect = letterbox(GW, GH, cw, ch);
    const timesMs: number[] = [];
    const bare = await paced(30, durationMs, (i) => {
      const t = performance.now();
      native.yuvCompose({ fb: frames[i & 1], fbStride: GW * 4, fbWidth: GW, fbHeight: GH, scratch, camWidth: cw, camHeight: ch, rect, format: FORMAT_CODE[format], out });
      timesMs.push(performance.now() - t);
    });
    timesMs.sort((a, b) => a - b);

    // The bridge path: listener at 60/s + camera clock at 30/s.
    const listener = new CameraConsoleListener({ log: lineLogger((l) => ctx.log(l)) });
    const sink = new CountingSink(cw, ch, 30, format);
    const pipeline = new CameraPipeline({ source: listener, sink, log: lineLogger((l) => ctx.log(l)) });
    listener.scanout(GW, GH, GW * 4, XRGB, frames[1]);
    pipeline.tick();
    pipeline.takeLatencies();
    pipeline.start();
    const bridge = await paced(60, durationMs, (i) => listener.scanout(GW, GH, GW * 4, XRGB, frames[i & 1]));
    pipeline.stop();
    const lat = pipeline.takeLatencies().sort((a, b) => a - b);
    const conv = pipeline.stats.converted;
    ctx.log(`${label}: ${bridge.cpuPct.toFixed(1)} % CPU, ${conv} conversions, ${sink.written} frames, latency p50 ${percentile(lat, 50).toFixed(1)} ms p99 ${percentile(lat, 99).toFixed(1)} ms`);

    const fpsOut = (sink.written / bridge.wallMs) * 1000;
    rows.push(
      { name: `${label}: CPU (% of one core)`, value: bridge.cpuPct, unit: '%', better: 'lower', baseline: { name: 'memcpy of the same frames at 60/s', value: memcpy.cpuPct } },
      {
        name: `${label}: CPU vs bare libyuv`,
        value: bridge.cpuPct,
        unit: '%',
        better: 'lower',
        baseline: { name: 'bare libyuv scale+convert at 30/s', value: bare.cpuPct },
        note: `bare conversion per frame p50 ${percentile(timesMs, 50).toFixed(2)} ms; camera delivered ${fpsOut.toFixed(1)} frames/s`,
      },
      {
        name: `${label}: latency p50 (update -> sink)`,
        value: percentile(lat, 50),
        unit: 'ms',
        better: 'lower',
        baseline: { name: 'bare conversion time p50', value: percentile(timesMs, 50) },
        note: `the camera's frames follow the guest's updates: against 60 updates/s every other update is shown at once, the one between waits one update interval (16.7 ms); the floor is the conversion time plus 0 or 16.7 ms`,
      },
      { name: `${label}: latency p99 (update -> sink)`, value: percentile(lat, 99), unit: 'ms', better: 'lower', baseline: { name: 'bare conversion time p99', value: percentile(timesMs, 99) } },
      { name: `${label}: RSS growth`, value: bridge.rssGrowthMb, unit: 'MB', better: 'lower', baseline: { name: 'RSS growth, memcpy run', value: memcpy.rssGrowthMb } },
    );
  }

  // Partial updates: a band of 1920x68 redrawn at 60/s (its place walks down the screen).
  {
    const label = '1080p, 60 Updates/s of a 1920x68 band -> 1280x720@30 YUYV';
    const band = Buffer.alloc(GW * 68 * 4, 0x80);
    const listener = new CameraConsoleListener({ log: lineLogger((l) => ctx.log(l)) });
    const sink = new CountingSink(1280, 720, 30, 'YUY2');
    const pipeline = new CameraPipeline({ source: listener, sink, log: lineLogger((l) => ctx.log(l)) });
    listener.scanout(GW, GH, GW * 4, XRGB, frames[1]);
    listener.update(0, 0, GW, 68, GW * 4, XRGB, band); // from here on the framebuffer is drawn over
    pipeline.tick();
    pipeline.takeLatencies();
    pipeline.start();
    const bridge = await paced(60, durationMs, (i) => {
      band[0] = i & 0xff;
      listener.update(0, ((i * 68) % (GH - 68)) & ~1, GW, 68, GW * 4, XRGB, band);
    });
    pipeline.stop();
    const lat = pipeline.takeLatencies().sort((a, b) => a - b);
    const full = rows.find((r) => r.name === '1080p60 -> 1280x720@30 YUYV: CPU vs bare libyuv')!;
    ctx.log(`${label}: ${bridge.cpuPct.toFixed(1)} % CPU, ${pipeline.stats.converted} conversions, latency p50 ${percentile(lat, 50).toFixed(1)} ms p99 ${percentile(lat, 99).toFixed(1)} ms`);
    rows.push(
      { name: `${label}: CPU (% of one core)`, value: bridge.cpuPct, unit: '%', better: 'lower', baseline: { name: 'bare libyuv scale+convert of whole frames at 30/s', value: full.baseline!.value }, note: 'only the band and the rows its scaling reaches are converted again' },
      { name: `${label}: latency p99 (update -> sink)`, value: percentile(lat, 99), unit: 'ms', better: 'lower', baseline: { name: 'the same, whole Scanouts', value: rows.find((r) => r.name === '1080p60 -> 1280x720@30 YUYV: latency p99 (update -> sink)')!.value } },
    );
  }
  return rows;
}

// The camera clock: every 1/fps it hands the sink a frame. It converts (scale + letterbox +
// cursor + YUV, one native call) only when the picture, the cursor or the wanted format changed
// since the last frame; otherwise it writes the last frame again (v4l2/file) or does nothing
// (PipeWire repeats by itself). While nobody consumes (wantedFormat() null) it converts nothing.
//
// Frame pacing follows the guest. A fixed clock shows a change up to one period after it arrives,
// plus the conversion: against a guest drawing at 60/s, whichever phase the two clocks happen to
// have decides whether p99 is 20 or 37 ms. So a change that arrives at least a period minus SLACK
// after the last frame is shown at once (on the next turn of the event loop, so that one burst
// of messages makes one frame), and the clock counts on from there; one that arrives sooner
// from a steady guest (its previous change came within a period) holds the next tick back to a
// period plus SLACK after the last frame, where the guest's next change arrives and takes the
// frame with it (never more than SLACK past the steady clock's tick, which goes on from where it
// was); a lone change waits for the regular tick. Against 60 updates/s the frames then come right
// after every other update (latency at most half a period + conversion) at exactly 30/s. Frames
// are never closer than a period minus SLACK, and early ones need a credit earned at the camera
// rate (+ RATE_MARGIN): against a guest at 40/s the camera makes 32 frames/s, not 40.
import { native } from '../native';
import { CameraError } from './errors';
import { letterbox, Rect } from './letterbox';
import type { PictureSource } from './listener';
import { CameraPixelFormat, CameraSink, FORMAT_CODE, frameBytes } from './sinks/types';
import { type Logger, silentLogger } from '../log';

export interface CameraPipelineOptions {
  source: PictureSource;
  sink: CameraSink;
  /** Conversion and write failures, each distinct one once, as warnings. Default: silent. */
  log?: Logger;
  /** Somebody started or stopped consuming the camera (see `viewer`): called from that tick. */
  onViewerChange?: () => void;
}

export interface CameraPipelineStats {
  ticks: number;
  /** frames converted (something changed) */
  converted: number;
  /** frames handed to the sink */
  written: number;
  /** of those, frames written again unchanged (the guest screen did not change) */
  repeated: number;
  /** ticks where the sink had nobody consuming */
  idle: number;
  /** frames the sink dropped (write in flight) */
  dropped: number;
  /** conversion or write errors (each logged once per distinct message); the frame is skipped */
  errors: number;
}

const MAX_LATENCIES = 100_000;
/** How far (as a fraction of the period) a frame may move to follow the guest's changes. */
const SLACK = 1 / 4;
/** How much faster than fps early frames may come on average (against a guest at 40/s: 32/s). */
const RATE_MARGIN = 1 / 16;

export class CameraPipeline {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  private readonly source: PictureSource;
  private readonly sink: CameraSink;
  private readonly log: Logger;
  private readonly outs = new Map<CameraPixelFormat, Buffer>();
  private scratch: Buffer | undefined;
  private cursorWork = Buffer.alloc(66 * 66 * 4);
  private lastVersion = -1;
  private lastFormat: CameraPixelFormat | null = null;
  private lastFrame: Buffer | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** the next tick of the steady clock (drift-free: each one a period after the one before) */
  private nextAt = 0;
  /** how long the pending tick is held back after nextAt (see the top); the clock goes on from nextAt */
  private holdBack = 0;
  /** a change is being shown early: the tick runs on the next turn of the event loop */
  private early: NodeJS.Immediate | null = null;
  /** when the last frame was handed to the sink (performance.now()) */
  private lastFrameAt = -Infinity;
  /** when the last change arrived */
  private lastChangeAt = -Infinity;
  /**
   * Frames earned at the camera rate (plus RATE_MARGIN, so that a clock locked to the guest at
   * exactly fps earns its margin back), at most 1 + SLACK; every frame spends one, an early one
   * needs 1 - SLACK.
   */
  private credit = 1 + SLACK;
  private creditAt = 0;
  private unwatch: (() => void) | undefined;
  /**
   * What the out buffer of `composed.format` holds (the sinks copy every frame they are handed,
   * so it stays ours): the next conversion may then redo only what changed. null: nothing usable.
   */
  private composed: { format: CameraPixelFormat; data: Uint8Array; width: number; height: number; stride: number; cursor: Rect | null } | null = null;
  private readonly arrivals: number[] = [];
  private latencies: number[] = [];
  private readonly loggedErrors = new Set<string>();
  readonly stats: CameraPipelineStats = { ticks: 0, converted: 0, written: 0, repeated: 0, idle: 0, dropped: 0, errors: 0 };
  private viewing = false;
  private readonly onViewerChange: (() => void) | undefined;

  constructor(o: CameraPipelineOptions) {
    this.source = o.source;
    this.sink = o.sink;
    this.width = o.sink.width;
    this.height = o.sink.height;
    this.fps = o.sink.fps;
    this.log = o.log ?? silentLogger;
    this.onViewerChange = o.onViewerChange;
    if (this.width % 2 || this.height % 2) throw new CameraError('EUSAGE', `camera size ${this.width}x${this.height} must be even`);
  }

  /** Starts the steady 1/fps clock (drift-free: deadlines are counted from the start). */
  start(): void {
    if (this.timer) return;
    this.nextAt = performance.now();
    this.unwatch = this.source.onChange?.(() => this.changeArrived());
    this.onTimer();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.early) clearImmediate(this.early);
    this.early = null;
    this.unwatch?.();
    this.unwatch = undefined;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Latencies (ms, change arrival -> frame handed to the sink) since the last call. */
  takeLatencies(): number[] {
    const l = this.latencies;
    this.latencies = [];
    return l;
  }

  /** The letterbox rectangle for the current picture (for status and tests). */
  geometry(): Rect | null {
    const p = this.source.picture();
    return p ? letterbox(p.width, p.height, this.width, this.height) : null;
  }

  /** Is somebody consuming the camera (as of the last tick)? */
  get viewer(): boolean {
    return this.viewing;
  }

  /** One camera frame. Public so tests and benchmarks can drive the clock themselves. */
  tick(): void {
    this.stats.ticks++;
    const format = this.sink.wantedFormat();
    if ((format !== null) !== this.viewing) {
      this.viewing = format !== null;
      this.onViewerChange?.();
    }
    if (format === null) {
      // Changes that come while nobody watches are no latency of a later viewer's frames.
      this.source.takeArrivals(this.arrivals);
      this.arrivals.length = 0;
      this.stats.idle++;
      this.lastFormat = null; // convert afresh when a consumer comes back
      this.composed = null;
      return;
    }
    const changed = this.source.version !== this.lastVersion || format !== this.lastFormat || this.lastFrame === null;
    if (changed) {
      // Marked taken first: a picture the converter refuses is not retried on every tick.
      this.lastVersion = this.source.version;
      this.lastFormat = format;
      try {
        this.lastFrame = this.compose(format);
      } catch (err) {
        // The last good frame stays (the sink repeats it) until the picture changes again.
        this.composed = null;
        this.failed(`a guest picture could not be converted (${errorMessage(err)}); frame skipped`);
        return;
      }
      this.stats.converted++;
    } else if (this.sink.repeatsItself) {
      return;
    }
    try {
      if (this.sink.writeFrame(this.lastFrame!, format)) {
        this.lastFrameAt = performance.now();
        this.credit = Math.max(-1, this.creditNow(this.lastFrameAt) - 1);
        this.stats.written++;
        if (!changed) this.stats.repeated++;
      } else this.stats.dropped++;
    } catch (err) {
      this.failed(errorMessage(err));
      return;
    }
    if (changed && this.arrivals.length) {
      const now = performance.now();
      for (const t of this.arrivals) if (this.latencies.length < MAX_LATENCIES) this.latencies.push(now - t);
      this.arrivals.length = 0;
    }
  }

  /** Counted, logged once per distinct line (at most 100 kept); the clock keeps running. */
  private failed(line: string): void {
    this.stats.errors++;
    if (this.loggedErrors.has(line)) return;
    if (this.loggedErrors.size < 100) this.loggedErrors.add(line);
    this.log.warn(line);
  }

  private onTimer(): void {
    this.safeTick();
    const period = 1000 / this.fps;
    const now = performance.now();
    this.holdBack = 0;
    this.nextAt += period;
    if (this.nextAt < now - period) this.nextAt = now; // fell far behind (suspend, load): no burst
    this.arm(now);
  }

  /** A timer or immediate callback that throws takes the process down: nothing the guest sends may do that. */
  private safeTick(): void {
    try {
      this.tick();
    } catch (err) {
      this.failed(`frame tick failed (${errorMessage(err)})`);
    }
  }

  private arm(now: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, this.nextAt + this.holdBack - now));
  }

  private creditNow(now: number): number {
    this.credit = Math.min(1 + SLACK, this.credit + ((now - this.creditAt) * this.fps * (1 + RATE_MARGIN)) / 1000);
    this.creditAt = now;
    return this.credit;
  }

  /** From the source's change handler: only decides when the next tick runs (see the top). */
  private changeArrived(): void {
    const now = performance.now();
    const previous = this.lastChangeAt;
    this.lastChangeAt = now;
    if (!this.timer || this.early || !this.viewing) return;
    const period = 1000 / this.fps;
    if (now - this.lastFrameAt >= period * (1 - SLACK) && this.creditNow(now) >= 1 - SLACK) {
      const asked = now;
      this.early = setImmediate(() => {
        this.early = null;
        if (!this.timer) return; // stopped meanwhile
        if (this.lastFrameAt >= asked) return; // the clock's own tick came first and took the change
        this.safeTick();
        const at = performance.now();
        this.nextAt = at + period;
        this.holdBack = 0;
        this.arm(at);
      });
    } else if (now - previous < period) {
      // A steady guest (its last change came within a period): its next change takes the frame.
      // Held back from the steady clock, never moving it: a late frame does not delay the next.
      const want = Math.min(this.lastFrameAt + period * (1 + SLACK), this.nextAt + period * SLACK);
      if (this.nextAt + this.holdBack < want) {
        this.holdBack = want - this.nextAt;
        this.arm(now);
      }
    }
  }

  private outFor(format: CameraPixelFormat): Buffer {
    let b = this.outs.get(format);
    if (!b) {
      b = Buffer.alloc(frameBytes(format, this.width, this.height));
      this.outs.set(format, b);
    }
    return b;
  }

  private compose(format: CameraPixelFormat): Buffer {
    const out = this.outFor(format);
    this.source.takeArrivals(this.arrivals);
    const damage = this.source.takeDamage ? this.source.takeDamage() : null;
    const pic = this.source.picture();
    const last = this.composed;
    this.composed = null; // until this conversion has succeeded
    if (!pic) {
      fillBlack(out, format, this.width, this.height);
      return out;
    }
    const rect = letterbox(pic.width, pic.height, this.width, this.height);
    const scaled = rect[2] !== pic.width || rect[3] !== pic.height;
    if (scaled && !this.scratch) this.scratch = Buffer.alloc(this.width * this.height * 4);
    const cursor = this.source.cursor();
    const work = cursor ? cursorWorkBytes(scaled, pic.width, pic.height, cursor) : 0;
    if (this.cursorWork.length < work) this.cursorWork = Buffer.alloc(work);
    // Only what changed, when out holds this very picture's last frame: the changed pixels and
    // where the cursor was drawn (the addon draws it again wherever it is now).
    const same = last !== null && damage !== null && last.format === format && last.data === pic.data && last.width === pic.width && last.height === pic.height && last.stride === pic.stride;
    const cursorBox = cursor ? clipBox(cursor.x, cursor.y, cursor.width, cursor.height, pic.width, pic.height) : null;
    native.yuvCompose({
      fb: pic.data,
      fbStride: pic.stride,
      fbWidth: pic.width,
      fbHeight: pic.height,
      cursor,
      cursorWork: this.cursorWork,
      scratch: this.scratch,
      camWidth: this.width,
      camHeight: this.height,
      rect,
      format: FORMAT_CODE[format],
      out,
      damage: same ? unionBox(damage, last.cursor) : undefined,
    });
    this.composed = { format, data: pic.data, width: pic.width, height: pic.height, stride: pic.stride, cursor: cursorBox };
    return out;
  }
}

/**
 * Bytes yuvCompose blends the cursor in: its chroma-aligned box when the picture is not scaled;
 * scaled, a picture-sized image whose band under the cursor is re-scaled (see native/yuv.cc).
 */
export function cursorWorkBytes(scaled: boolean, picWidth: number, picHeight: number, cursor: { width: number; height: number }): number {
  return scaled ? picWidth * picHeight * 4 : (cursor.width + 2) * (cursor.height + 2) * 4;
}

/** [x, y, w, h] clipped to a width x height picture, or null if nothing is left. */
export function clipBox(x: number, y: number, w: number, h: number, width: number, height: number): Rect | null {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(width, x + w);
  const y1 = Math.min(height, y + h);
  return x1 > x0 && y1 > y0 ? [x0, y0, x1 - x0, y1 - y0] : null;
}

/** The box around both (an empty box, w or h 0, counts as nothing). */
export function unionBox(a: Rect, b: Rect | null): Rect {
  if (!b) return a;
  if (a[2] <= 0 || a[3] <= 0) return b;
  const x0 = Math.min(a[0], b[0]);
  const y0 = Math.min(a[1], b[1]);
  return [x0, y0, Math.max(a[0] + a[2], b[0] + b[2]) - x0, Math.max(a[1] + a[3], b[1] + b[3]) - y0];
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Black in limited-range YUV: Y=16, U=V=128. */
export function fillBlack(out: Buffer, format: CameraPixelFormat, width: number, height: number): void {
  const y = width * height;
  if (format === 'YUY2') {
    for (let i = 0; i < y * 2; i += 2) {
      out[i] = 16;
      out[i + 1] = 128;
    }
  } else {
    out.fill(16, 0, y);
    out.fill(128, y, frameBytes(format, width, height));
  }
}

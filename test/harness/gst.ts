// GStreamer helpers for camera tests: capture N frames of a PipeWire video node to PNG files with
// gst-launch-1.0 (the way a camera consumer sees the node), a PipeWire test video source built from
// videotestsrc ! pipewiresink, and a small PNG decoder so tests can check pixel colours.
// PipeWire 0.3.65 / GStreamer 1.22: pipewiresrc straight into a sink with no caps and no
// videoconvert hangs in negotiation, so there is always a videoconvert before pngenc.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { AudioEnv, clientEnv, codedError, dieWithParent, ownedTempDir, scratchDir } from './audio-tools';
import { Managed, spawnManaged, waitFor } from './procs';
import { pwDumpObjects } from './pipewire';

export interface CaptureOptions {
  /** The sound server's env (PipeWire: XDG_RUNTIME_DIR/PIPEWIRE_REMOTE). */
  env: AudioEnv;
  /** node.name (or object serial) of the video source. */
  target: string;
  count: number;
  /** Caps forced between pipewiresrc and videoconvert, e.g. 'video/x-raw,format=YUY2'. */
  caps?: string;
  /** Where the PNGs go (default: a scratch dir removed at process exit, see scratchDir). */
  dir?: string;
  /** Whole-pipeline timeout (default 30 s). */
  timeoutMs?: number;
}

/** Captures `count` frames from a PipeWire video node; returns the PNG paths in frame order. */
export async function captureCameraFrames(o: CaptureOptions): Promise<string[]> {
  if (!Number.isInteger(o.count) || o.count < 1) throw codedError('EINVAL', `captureCameraFrames: count ${o.count} must be a positive integer`);
  const timeoutMs = o.timeoutMs ?? 30_000;
  // pipewiresrc waits forever for a node that is missing or is not video, so look first and say so.
  if (!/^\d+$/.test(o.target)) await waitForVideoNode(o.env, o.target, Math.min(timeoutMs, 10_000));
  const dir = o.dir ?? scratchDir('gst');
  fs.mkdirSync(dir, { recursive: true });
  const prefix = `frame-${Date.now()}-`;
  const args = ['-q', 'pipewiresrc', `target-object=${o.target}`, `num-buffers=${o.count}`, '!'];
  if (o.caps) args.push(o.caps, '!');
  args.push('videoconvert', '!', 'pngenc', '!', 'multifilesink', `location=${path.join(dir, `${prefix}%03d.png`)}`);
  const logFile = path.join(dir, `${prefix}gst.log`);
  // Warnings in the log are what explain a failed negotiation.
  const proc = spawnManaged('gst-launch-1.0', ...dieWithParent('gst-launch-1.0', args), { env: clientEnv({ ...o.env, GST_DEBUG: '2' }), logFile });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.png'))
    .sort()
    .map((f) => path.join(dir, f));
  if (code !== 0 || files.length !== o.count) {
    // A caps filter the node cannot satisfy also hangs (0.3.65 does not fail the negotiation).
    const why = code === 'SIGKILL' ? `timed out after ${timeoutMs} ms (does ${o.target} offer ${o.caps ?? 'any raw video'}?)` : `exit ${code}`;
    throw codedError('EGSTCAPTURE', `gst-launch-1.0 ${args.join(' ')}: ${why}, ${files.length}/${o.count} frames. Log ${logFile}:\n${proc.log().slice(-3000)}`);
  }
  return files;
}

async function videoNodes(env: AudioEnv): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const x of await pwDumpObjects(env)) {
    const props = x.info?.props ?? {};
    if (x.type === 'PipeWire:Interface:Node' && typeof props['node.name'] === 'string') out.set(props['node.name'], String(props['media.class'] ?? ''));
  }
  return out;
}

async function waitForVideoNode(env: AudioEnv, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await videoNodes(env);
    const cls = nodes.get(name);
    if (cls !== undefined) {
      if (cls.startsWith('Video/')) return;
      throw codedError('EINVAL', `captureCameraFrames: PipeWire node ${name} is ${cls || 'of no media.class'}, not a video node`);
    }
    if (Date.now() > deadline) {
      const video = [...nodes].filter(([, c]) => c.startsWith('Video/')).map(([n, c]) => `${n} (${c})`);
      throw codedError('ENONODE', `captureCameraFrames: no PipeWire node ${name} after ${timeoutMs} ms; video nodes: ${video.join(', ') || 'none'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface TestVideoSourceOptions {
  env: AudioEnv;
  /** node.name of the new node (default unique). */
  name?: string;
  /** videotestsrc pattern, e.g. 'smpte', 'solid-color', 'ball'. */
  pattern?: string;
  /** For pattern=solid-color: 0xAARRGGBB. */
  foregroundColor?: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Raw format the node offers (default RGBx). */
  format?: string;
  readyTimeoutMs?: number;
}

export interface TestVideoSource {
  readonly name: string;
  readonly pid: number;
  readonly proc: Managed;
  stop(): Promise<void>;
}

/**
 * A PipeWire Video/Source node (media.role=Camera) fed by videotestsrc, standing in for the bridge's
 * camera node. pipewiresink mode=provide makes it a source other clients connect to.
 */
export async function startTestVideoSource(o: TestVideoSourceOptions): Promise<TestVideoSource> {
  const name = o.name ?? `qdb-testcam-${process.pid}-${Date.now() % 100000}`;
  const dir = ownedTempDir('vsrc');
  const src = ['videotestsrc', 'is-live=true', `pattern=${o.pattern ?? 'smpte'}`];
  if (o.foregroundColor !== undefined) src.push(`foreground-color=${o.foregroundColor >>> 0}`);
  const caps = `video/x-raw,format=${o.format ?? 'RGBx'},width=${o.width ?? 320},height=${o.height ?? 240},framerate=${o.fps ?? 30}/1`;
  const args = [
    '-q',
    ...src,
    '!',
    caps,
    '!',
    'pipewiresink',
    'mode=provide',
    `client-name=${name}`,
    `stream-properties=props,media.class=Video/Source,media.role=Camera,node.name=${name}`,
  ];
  const proc = spawnManaged('gst-videotestsrc', ...dieWithParent('gst-launch-1.0', args), {
    env: clientEnv({ ...o.env, GST_DEBUG: '2' }),
    logFile: path.join(dir, 'gst-source.log'),
  });
  try {
    await waitFor(`test video node ${name}`, o.readyTimeoutMs ?? 20_000, async () => {
      if (!proc.isRunning()) throw new Error(`gst-launch exited: ${proc.log().slice(-1500)}`);
      return (await pwDumpObjects(o.env)).some((x) => x.type === 'PipeWire:Interface:Node' && x.info?.props?.['node.name'] === name);
    }, 100);
  } catch (e) {
    await proc.stop(2000);
    throw codedError('EGSTSOURCE', `test video source did not appear: ${String(e)}`);
  }
  return {
    name,
    pid: proc.pid,
    proc,
    async stop() {
      await proc.stop(3000);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PNG decoding (8-bit greyscale / grey+alpha / RGB / RGBA, non-interlaced: what pngenc writes)

export interface Image {
  width: number;
  height: number;
  /** width * height * 4 bytes, row-major RGBA. */
  rgba: Uint8Array;
}

export function decodePng(file: string): Image {
  const buf = fs.readFileSync(file);
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(sig)) throw codedError('EBADPNG', `${file}: not a PNG file`);
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = -1;
  const idat: Buffer[] = [];
  while (off + 8 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8];
      colorType = data[9];
      const interlace = data[12];
      if (depth !== 8 || interlace !== 0 || ![0, 2, 4, 6].includes(colorType)) {
        throw codedError('EBADPNG', `${file}: only 8-bit non-interlaced grey/RGB/RGBA PNGs are supported (depth ${depth}, colour type ${colorType}, interlace ${interlace})`);
      }
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    off += 12 + len;
  }
  if (colorType < 0) throw codedError('EBADPNG', `${file}: no IHDR chunk`);
  const bpp = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType as 0 | 2 | 4 | 6];
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length < height * (stride + 1)) throw codedError('EBADPNG', `${file}: image data is truncated`);
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = y * stride;
    const prev = (y - 1) * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? px[cur + i - bpp] : 0;
      const b = y > 0 ? px[prev + i] : 0;
      const c = y > 0 && i >= bpp ? px[prev + i - bpp] : 0;
      let v: number;
      switch (filter) {
        case 0:
          v = line[i];
          break;
        case 1:
          v = line[i] + a;
          break;
        case 2:
          v = line[i] + b;
          break;
        case 3:
          v = line[i] + ((a + b) >> 1);
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v = line[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw codedError('EBADPNG', `${file}: bad filter type ${filter} on row ${y}`);
      }
      px[cur + i] = v & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    const s = p * bpp;
    const d = p * 4;
    if (colorType === 0 || colorType === 4) {
      rgba[d] = rgba[d + 1] = rgba[d + 2] = px[s];
      rgba[d + 3] = colorType === 4 ? px[s + 1] : 255;
    } else {
      rgba[d] = px[s];
      rgba[d + 1] = px[s + 1];
      rgba[d + 2] = px[s + 2];
      rgba[d + 3] = colorType === 6 ? px[s + 3] : 255;
    }
  }
  return { width, height, rgba };
}

export interface Rgba {
  r: number;
  g: number;
  b: number;
  a: number;
}

/** Mean colour of a rectangle (clipped to the image). */
export function meanColor(img: Image, rect: { x: number; y: number; w: number; h: number }): Rgba {
  const x0 = Math.max(0, Math.floor(rect.x));
  const y0 = Math.max(0, Math.floor(rect.y));
  const x1 = Math.min(img.width, Math.floor(rect.x + rect.w));
  const y1 = Math.min(img.height, Math.floor(rect.y + rect.h));
  if (x1 <= x0 || y1 <= y0) throw codedError('EINVAL', `meanColor: rectangle ${JSON.stringify(rect)} is outside the ${img.width}x${img.height} image`);
  const sum = [0, 0, 0, 0];
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const d = (y * img.width + x) * 4;
      for (let k = 0; k < 4; k++) sum[k] += img.rgba[d + k];
    }
  }
  const n = (x1 - x0) * (y1 - y0);
  return { r: sum[0] / n, g: sum[1] / n, b: sum[2] / n, a: sum[3] / n };
}

/** Largest per-channel difference between two colours (alpha ignored). */
export function colorDistance(a: Rgba, b: Omit<Rgba, 'a'> & { a?: number }): number {
  return Math.max(Math.abs(a.r - b.r), Math.abs(a.g - b.g), Math.abs(a.b - b.b));
}

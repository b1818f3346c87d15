// Kernel tier, v4l2 group (runs INSIDE the guest, as root; test/kernel/v4l2.test.ts boots it): the
// bridge's real CLI (`qemu-dbus-bridge run --camera /dev/video10`) writes the screen of the project's
// fake QEMU peer (test/fakes/qemu-peer.ts, on a private bus in the guest: four colour bars, so
// colours can be checked) into a real v4l2loopback 0.12.7 device (exclusive_caps=1), read by real
// consumers: `v4l2-ctl --stream-mmap`, GStreamer `v4l2src`, and a consumer that opened the device
// before any producer existed (v4l2_consumer.py). The VM side is the fake peer's frames, not the
// test guest: QEMU inside this TCG guest would be TCG in TCG.
//
// The fake peer lives in this process: every tool runs asynchronously (runTool), never spawnSync,
// or the "VM" would stop answering while a consumer reads. One bridge per pixel format, in order: YUYV, then I420 (restart 1), then NV12 (restart 2) with the
// early consumer attached and the VM going away at the end ("DISPLAY OFF").
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISPLAY_OFF_BACKGROUND, DISPLAY_OFF_HEIGHT, DISPLAY_OFF_WIDTH, displayOffTextBox } from '../../../src/camera/display-off';
import { letterbox } from '../../../src/camera/letterbox';
import { V4l2Sink } from '../../../src/camera/sinks/v4l2';
import { frameBytes, type CameraPixelFormat } from '../../../src/camera/sinks/types';
import { sinkContract } from '../../contracts/camera-sink.contract';
import { FakeQemuPeer } from '../../fakes/qemu-peer';
import { startDbusDaemon, type DbusDaemon } from '../../harness/dbus';
import { runTool } from '../../harness/audio-tools';
import { decodePng, meanColor } from '../../harness/gst';
import { tempDir, waitFor } from '../../harness/procs';
import { encodePixman, rgbAtFrame, dist, type Rgb } from '../../harness/yuv';
import { announcedFormat, loadV4l2loopback, startBridge as startCli, v4l2Caps, v4l2ctlFrames as framesOf, type BridgeProcess } from './tools';
import { silentLogger } from '../../../src/log';

const DEV = '/dev/video10';
const VM = 'kcam';
const W = 320;
const H = 240;
/** the guest screen: four vertical bars */
const BARS: Rgb[] = [
  { r: 255, g: 0, b: 0 },
  { r: 0, g: 255, b: 0 },
  { r: 0, g: 0, b: 255 },
  { r: 255, g: 255, b: 255 },
];
const barAt = (x: number): Rgb => BARS[Math.floor((x * BARS.length) / W)];
const FOURCC: Record<CameraPixelFormat, string> = { YUY2: 'YUYV', I420: 'YU12', NV12: 'NV12' };
/** per-channel tolerance: BT.601 limited range round trip plus chroma subsampling at bar centres */
const TOLERANCE = 12;

let bus: DbusDaemon;
let peer: FakeQemuPeer;
/** Scanouts the fake VM has sent (one per console listener registration) */
let scanouts = 0;
let dir: string;

/** VIDEO_CAPTURE / VIDEO_OUTPUT of the device now. */
const caps = (): { capture: boolean; output: boolean } => v4l2Caps(DEV);

const bridges: BridgeProcess[] = [];
function startBridge(format: CameraPixelFormat): BridgeProcess {
  const b = startCli(['run', '--address', bus.address, '--vm', VM, '--audio', 'none', '--camera', DEV, '--camera-size', `${W}x${H}`, '--camera-fps', '15', '--camera-format', format, '--log-level', 'debug']);
  bridges.push(b);
  return b;
}

/** Waits until the bridge's console listener got the screen and the device turned capture-only. */
async function bridgeWriting(b: BridgeProcess): Promise<void> {
  const before = scanouts;
  await b.waitLog(/attached to VM/, 60_000);
  await waitFor('the fake VM to send its screen to the new console listener', 60_000, () => {
    if (!b.running) throw new Error(`the bridge exited:\n${b.tail()}`);
    return scanouts > before;
  });
  await waitFor('the device to turn capture-only (a producer is writing)', 30_000, () => {
    if (!b.running) throw new Error(`the bridge exited:\n${b.tail()}`);
    const c = caps();
    return c.capture && !c.output;
  });
}

/** The bar colours at the centre of each bar, as the frame carries them. */
function barsOf(frame: Uint8Array, format: CameraPixelFormat): Rgb[] {
  return BARS.map((_, i) => rgbAtFrame(frame, format, W, H, Math.floor(((i + 0.5) * W) / BARS.length), H / 2));
}

function expectBars(got: Rgb[], what: string): void {
  got.forEach((c, i) => expect(dist(c, BARS[i]), `${what}: bar ${i} is ${JSON.stringify(c)}, want ${JSON.stringify(BARS[i])}`).toBeLessThanOrEqual(TOLERANCE));
}

/** `v4l2-ctl --stream-mmap`: n raw frames of `format` after skipping two (they may predate the screen). */
const v4l2ctlFrames = (n: number, format: CameraPixelFormat): Promise<Buffer[]> => framesOf(DEV, dir, n, format, W, H);

/** GStreamer `v4l2src ! videoconvert ! pngenc`: the last of n frames as a PNG. */
async function gstFrame(n: number): Promise<ReturnType<typeof decodePng>> {
  const prefix = path.join(dir, `gst-${Date.now()}-`);
  await runTool('gst-launch-1.0', ['-q', 'v4l2src', `device=${DEV}`, `num-buffers=${n}`, '!', 'videoconvert', '!', 'pngenc', '!', 'multifilesink', `location=${prefix}%d.png`], {
    timeoutMs: 60_000,
  });
  return decodePng(`${prefix}${n - 1}.png`);
}

/** The gst picture's bars: mean colour of a 16x16 square at each bar's centre. */
function expectGstBars(img: ReturnType<typeof decodePng>, what: string): void {
  expect([img.width, img.height]).toEqual([W, H]);
  BARS.forEach((want, i) => {
    const c = meanColor(img, { x: ((i + 0.5) * W) / BARS.length - 8, y: H / 2 - 8, w: 16, h: 16 });
    expect(dist(c, want), `${what}: bar ${i} is ${JSON.stringify(c)}, want ${JSON.stringify(want)}`).toBeLessThanOrEqual(TOLERANCE);
  });
}

/** The consumer started before any producer: opens the device now and keeps it open. */
class EarlyConsumer {
  readonly lines: string[] = [];
  readonly file = path.join(dir, 'early-consumer.raw');
  readonly proc: ChildProcess;
  constructor() {
    this.proc = spawn('/usr/bin/python3', [path.join(__dirname, '../../..', 'test/kernel/guest/v4l2_consumer.py'), DEV, this.file], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  /** starts streaming (after the other readers are done: see v4l2_consumer.py) */
  go(): void {
    this.proc.stdin!.write('go\n');
  }
  frames(): number {
    return this.lines.filter((l) => l.startsWith('FRAME ')).length;
  }
  async waitLine(re: RegExp, ms: number): Promise<string> {
    let hit: string | undefined;
    await waitFor(`early consumer: ${re}`, ms, () => {
      const err = this.lines.find((l) => l.startsWith('ERROR'));
      if (err) throw new Error(err);
      if (this.proc.exitCode !== null) throw new Error(`the early consumer ended (${this.proc.exitCode}) before ${re}: ${this.lines.slice(-3).join(' | ')}`);
      hit = this.lines.find((l) => re.test(l));
      return hit !== undefined;
    });
    return hit!;
  }
  /** the latest whole frame, once `more` frames arrived after this call */
  async nextFrame(more = 2): Promise<Buffer> {
    const from = this.frames();
    await waitFor(`early consumer: ${more} more frames`, 30_000, () => {
      const err = this.lines.find((l) => l.startsWith('ERROR'));
      if (err || this.proc.exitCode !== null) throw new Error(`the early consumer ended (${this.proc.exitCode}): ${this.lines.slice(-3).join(' | ')}`);
      return this.frames() >= from + more;
    });
    return fs.readFileSync(this.file);
  }
  async close(): Promise<void> {
    this.proc.stdin!.end();
    await Promise.race([new Promise((r) => this.proc.once('exit', r)), new Promise((r) => setTimeout(r, 10_000))]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

beforeAll(async () => {
  dir = tempDir('v4l2');
  await loadV4l2loopback([10], 'VM Camera');
  bus = await startDbusDaemon();
  peer = await FakeQemuPeer.start({ busAddress: bus.address, name: VM, width: W, height: H });
  const screen = encodePixman(0x20020888, W, H, (x) => barAt(x));
  peer.onListener = async (l) => {
    if (l.kind !== 'console') return;
    await l.call('Scanout', 'uuuuay', [W, H, screen.stride, 0x20020888, screen.data]);
    scanouts++;
  };
});

afterAll(async () => {
  bridges.forEach((b, i) => console.log(`--- bridge ${i} log:\n${b.log()}`));
  peer?.bus.connection.end();
  await bus?.stop();
});

/** The bridge of one describe block: started (and writing) before its tests, stopped after them. */
function bridgeRun(format: CameraPixelFormat): () => BridgeProcess {
  let b: BridgeProcess;
  beforeAll(async () => {
    b = startBridge(format);
    await bridgeWriting(b);
  });
  afterAll(async () => {
    await b?.stop();
  });
  return () => b;
}

/** The format the sink announced, then the bars in the last of two v4l2-ctl frames. */
async function v4l2ctlSeesBars(format: CameraPixelFormat): Promise<void> {
  expect(await announcedFormat(DEV)).toBe(`${FOURCC[format]} ${W}x${H}`);
  const frames = await v4l2ctlFrames(2, format);
  expectBars(barsOf(frames[1], format), `v4l2-ctl ${format}`);
}

async function stopGivesOutputBack(b: BridgeProcess): Promise<void> {
  expect((await b.stop()).code).toBe(0);
  expect(caps()).toEqual({ capture: false, output: true });
}

describe('v4l2loopback 0.12.7 (exclusive_caps=1) fed by the bridge, read by real consumers', () => {
  it('before any producer the device offers OUTPUT only', () => {
    expect(caps()).toEqual({ capture: false, output: true });
  });

  describe('YUYV: first bridge run', () => {
    const bridge = bridgeRun('YUY2');

    it('v4l2-ctl --stream-mmap reads whole YUYV frames with the four bars in their colours', async () => {
      await v4l2ctlSeesBars('YUY2');
    });

    it('GStreamer v4l2src (started after the bridge) gets the bars in their colours', async () => {
      expectGstBars(await gstFrame(3), 'gst YUYV');
    });

    it('a second producer (another bridge on the same device) gets the clear ECAMERA_NOTOUTPUT error, the first keeps writing', async () => {
      const second = startBridge('YUY2');
      try {
        await second.waitLog(/offers no video output: another producer is already writing to it/, 60_000);
        expect(second.log()).toContain('ECAMERA_NOTOUTPUT');
      } finally {
        await second.stop();
      }
      expect(bridge().running).toBe(true);
      expectBars(barsOf((await v4l2ctlFrames(1, 'YUY2'))[0], 'YUY2'), 'first bridge after the second gave up');
    });

    it('SIGTERM: the bridge exits 0 and the device offers OUTPUT again (VIDIOC_STREAMON made it the writer)', async () => {
      await stopGivesOutputBack(bridge());
    });
  });

  describe('I420: the bridge restarted once', () => {
    const bridge = bridgeRun('I420');

    it('the restarted bridge opens the device and v4l2-ctl reads I420 (YU12) frames with the right colours', async () => {
      await v4l2ctlSeesBars('I420');
    });

    it('GStreamer v4l2src reads the I420 frames with the right colours', async () => {
      expectGstBars(await gstFrame(2), 'gst I420');
    });

    it('SIGTERM again: OUTPUT is back for the next producer', async () => {
      await stopGivesOutputBack(bridge());
    });
  });

  describe('NV12: restarted twice, with a consumer that opened the device before the bridge', () => {
    let b: BridgeProcess;
    let early: EarlyConsumer;
    beforeAll(async () => {
      early = new EarlyConsumer();
      // The first python3 of this boot reads its standard library over 9p under TCG: on a host
      // whose other core runs another guest that took over 30 s once in a full run.
      await early.waitLine(/^OPENED /, 120_000);
      b = startBridge('NV12');
    });
    afterAll(async () => {
      await b?.stop();
      await early?.close();
    });

    it('v4l2-ctl and GStreamer started after the bridge read the NV12 picture with the right colours', async () => {
      await bridgeWriting(b);
      await v4l2ctlSeesBars('NV12');
      expectGstBars(await gstFrame(2), 'gst NV12');
    });

    it('the consumer that opened the device before the bridge started gets NV12 frames with the right colours', async () => {
      expect(await early.waitLine(/^CAPTURE /, 90_000)).toBe(`CAPTURE ${W}x${H} ${FOURCC.NV12} ${frameBytes('NV12', W, H)}`);
      early.go();
      const frame = await early.nextFrame(2);
      expect(frame.length).toBe(frameBytes('NV12', W, H));
      expectBars(barsOf(frame, 'NV12'), 'early consumer NV12');
    });

    it('the VM goes away: the consumer sees the "DISPLAY OFF" picture, letterboxed, and the bridge keeps running', async () => {
      // the fake QEMU "dies" (its bus connection and listener sockets close); not awaited: its own
      // bus.close() may wait for a reply that never comes, and the bridge's log says when it noticed
      void peer.stop();
      await b.waitLog(/is gone/, 30_000);
      const [rx, ry, rw, rh] = letterbox(DISPLAY_OFF_WIDTH, DISPLAY_OFF_HEIGHT, W, H);
      const s = rw / DISPLAY_OFF_WIDTH;
      const bg = { r: (DISPLAY_OFF_BACKGROUND >> 16) & 0xff, g: (DISPLAY_OFF_BACKGROUND >> 8) & 0xff, b: DISPLAY_OFF_BACKGROUND & 0xff };
      const [tx, ty, tw, th] = displayOffTextBox();
      let frame: Buffer = Buffer.alloc(0);
      await waitFor('the DISPLAY OFF picture at the early consumer', 30_000, async () => {
        frame = await early.nextFrame(1);
        return dist(rgbAtFrame(frame, 'NV12', W, H, rx + 4, ry + 4), bg) <= TOLERANCE;
      });
      // black bars above and below the 16:9 picture, the grey background, light text in its box
      expect(dist(rgbAtFrame(frame, 'NV12', W, H, W / 2, Math.max(0, ry - 4)), { r: 0, g: 0, b: 0 })).toBeLessThanOrEqual(TOLERANCE);
      expect(dist(rgbAtFrame(frame, 'NV12', W, H, rx + rw - 4, ry + rh - 4), bg)).toBeLessThanOrEqual(TOLERANCE);
      let light = 0;
      let total = 0;
      for (let y = Math.ceil(ry + ty * s); y < ry + (ty + th) * s; y++)
        for (let x = Math.ceil(rx + tx * s); x < rx + (tx + tw) * s; x++) {
          total++;
          if (frame[y * W + x] > 128) light++;
        }
      console.log(`DISPLAY OFF: ${light}/${total} light luma samples in the text box`);
      expect(light / total).toBeGreaterThan(0.2);
      expect(b.running).toBe(true);
    });

    it('after the bridge and the consumer close, the device offers OUTPUT again and a new producer can set its format and write', async () => {
      expect((await b.stop()).code).toBe(0);
      await early.close();
      expect(caps()).toEqual({ capture: false, output: true });
      // GStreamer's v4l2sink as that producer hung now and then under load (no reader, EOS): the
      // sink itself, in this process, is the deterministic one
      const next = new V4l2Sink({ path: DEV, width: W, height: H, fps: 15, format: 'YUY2', log: silentLogger });
      expect(next.writeFrame(Buffer.alloc(frameBytes('YUY2', W, H), 0x80), 'YUY2')).toBe(true);
      await next.close();
      expect(caps()).toEqual({ capture: false, output: true });
    });
  });
});

// The camera sink contract (test/contracts/camera-sink.contract.ts) on the real device through
// V4l2Sink's real backend (v4l2Backend: fs + the addon's ioctls): what the fake v4l2loopback
// backend claims in test/unit/camera-sink.fake.test.ts holds on the kernel's. Runs last, when
// the checks above have given the device its OUTPUT back.
sinkContract('v4l2 over the real backend (v4l2loopback 0.12.7)', async () => ({
  sink: new V4l2Sink({ path: DEV, width: W, height: H, fps: 15, format: 'YUY2', log: silentLogger }),
}));

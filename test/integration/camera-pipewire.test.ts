// Guest picture -> camera pipeline -> REAL PipeWire camera node (private pipewire + WirePlumber)
// -> gst-launch-1.0 pipewiresrc ... ! pngenc -> PNG decoded and compared region by region, in
// each negotiated format. Also the node's identity (what the camera portal filters on), and
// "paused when nobody watches". The sink contract against the real node is in
// camera-sink.real.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CameraConsoleListener } from '../../src/camera/listener';
import { letterbox } from '../../src/camera/letterbox';
import { CameraPipeline } from '../../src/camera/pipeline';
import { PipeWireSink, cameraNodeName } from '../../src/camera/sinks/pipewire';
import type { CameraPixelFormat } from '../../src/camera/sinks/types';
import { captureCameraFrames, colorDistance, decodePng, meanColor } from '../harness/gst';
import { startPipeWire, PipeWire } from '../harness/pipewire';
import { waitFor } from '../harness/procs';
import { encodePixman } from '../harness/yuv';
import { silentLogger } from '../../src/log';
import { lineLogger } from '../fakes/logger';

const XRGB = 0x20020888;
// YUV rounding plus bilinear scaling at region centres: well under the distance between any two
// of the test colours (>= 200 in some channel).
const TOL = 12;
// libyuv writes BT.601 limited range; GStreamer would assume BT.709 for >576-line YUV without it.
const capsFor = (f: CameraPixelFormat) => `video/x-raw,format=${f},colorimetry=bt601`;

let pw: PipeWire;
let seq = 0;
const vmName = () => `camtest${process.pid}x${++seq}`;

beforeAll(async () => {
  pw = await startPipeWire();
});
afterAll(async () => {
  await pw?.stop();
});

function newSink(o: { vm?: string; width?: number; height?: number; fps?: number; formats?: CameraPixelFormat[] } = {}): PipeWireSink {
  return new PipeWireSink({ vmName: o.vm ?? vmName(), width: o.width ?? 640, height: o.height ?? 360, fps: o.fps ?? 30, formats: o.formats, remote: pw.env.PIPEWIRE_REMOTE });
}

const RED = { r: 255, g: 0, b: 0 };
const GREEN = { r: 0, g: 255, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };
const WHITE = { r: 255, g: 255, b: 255 };
const BLACK = { r: 0, g: 0, b: 0 };
const quadrants = (w: number, h: number) => (x: number, y: number) => (y < h / 2 ? (x < w / 2 ? RED : GREEN) : x < w / 2 ? BLUE : WHITE);

describe('PipeWire camera node', () => {
  it('is a Video/Source with media.role=Camera named after the VM, paused while nobody watches', async () => {
    const vm = vmName();
    const sink = newSink({ vm });
    try {
      const node = await pw.waitForNode(cameraNodeName(vm));
      expect(node.info?.props).toMatchObject({ 'media.class': 'Video/Source', 'media.role': 'Camera', 'node.description': `${vm} screen` });
      await waitFor('paused state', 20_000, () => sink.state().state === 'paused');
      expect(sink.wantedFormat()).toBeNull();
      expect(sink.nodeId()).toBe(node.id);
    } finally {
      await sink.close();
    }
  });

  it('PipeWire restarts: the node comes back by itself and consumers get frames again', async () => {
    const lines: string[] = [];
    const vm = vmName();
    const sink = new PipeWireSink({ vmName: vm, width: 320, height: 180, fps: 30, remote: pw.env.PIPEWIRE_REMOTE, log: lineLogger((l) => lines.push(l)) });
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(XRGB, 320, 180, () => BLUE);
    l.scanout(320, 180, src.stride, XRGB, src.data);
    const p = new CameraPipeline({ source: l, sink });
    p.start();
    try {
      await pw.waitForNode(cameraNodeName(vm));
      await pw.restart();
      await waitFor('node re-created after the restart', 30_000, () => sink.reconnects > 0 && sink.state().state === 'paused');
      expect(lines[0]).toMatch(/PipeWire node .* failed .*reconnecting/);
      expect(lines.at(-1)).toMatch(/is back after/);
      const img = decodePng((await captureCameraFrames({ env: pw.env, target: sink.target, count: 2, caps: capsFor('YUY2'), timeoutMs: 60_000 }))[1]);
      expect(colorDistance(meanColor(img, { x: 100, y: 50, w: 40, h: 40 }), BLUE)).toBeLessThanOrEqual(TOL);
    } finally {
      p.stop();
      await sink.close();
    }
  });

  it('cannot start without a PipeWire daemon: one clear error', () => {
    let err: (Error & { code?: string }) | undefined;
    try {
      new PipeWireSink({ vmName: 'x', width: 64, height: 48, fps: 30, remote: '/nonexistent/pipewire-0' });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('EPIPEWIRE');
    expect(err?.message).toMatch(/cannot connect to PipeWire .*XDG_RUNTIME_DIR/);
  });

  for (const format of ['YUY2', 'I420', 'NV12'] as const) {
    it(`guest 1366x768 quadrants -> 640x360 ${format} -> gst PNG: regions, black bars`, async () => {
      const sink = newSink();
      const l = new CameraConsoleListener({ log: silentLogger });
      const src = encodePixman(XRGB, 1366, 768, quadrants(1366, 768));
      l.scanout(1366, 768, src.stride, XRGB, src.data);
      const p = new CameraPipeline({ source: l, sink });
      p.start();
      try {
        const files = await captureCameraFrames({ env: pw.env, target: sink.target, count: 3, caps: capsFor(format), timeoutMs: 60_000 });
        const img = decodePng(files[files.length - 1]);
        expect([img.width, img.height]).toEqual([640, 360]);
        const [rx, ry, rw, rh] = letterbox(1366, 768, 640, 360);
        const region = (fx: number, fy: number) => meanColor(img, { x: rx + fx * rw - 8, y: ry + fy * rh - 8, w: 16, h: 16 });
        expect(colorDistance(region(0.25, 0.25), RED)).toBeLessThanOrEqual(TOL);
        expect(colorDistance(region(0.75, 0.25), GREEN)).toBeLessThanOrEqual(TOL);
        expect(colorDistance(region(0.25, 0.75), BLUE)).toBeLessThanOrEqual(TOL);
        expect(colorDistance(region(0.75, 0.75), WHITE)).toBeLessThanOrEqual(TOL);
        expect(p.stats.converted).toBeGreaterThanOrEqual(1);
        // 1366x768 is not exactly 16:9: one pair of thin bars, black
        if (ry >= 2) expect(colorDistance(meanColor(img, { x: 300, y: 0, w: 40, h: ry }), BLACK)).toBeLessThanOrEqual(TOL);
        if (rx >= 2) expect(colorDistance(meanColor(img, { x: 0, y: 150, w: rx, h: 40 }), BLACK)).toBeLessThanOrEqual(TOL);
      } finally {
        p.stop();
        await sink.close();
      }
    });
  }

  it('4:3 guest pillarboxed; idle guest: the node repeats the last frame; pauses after the consumer leaves', async () => {
    const sink = newSink({ fps: 30 });
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(XRGB, 640, 480, quadrants(640, 480));
    l.scanout(640, 480, src.stride, XRGB, src.data);
    const p = new CameraPipeline({ source: l, sink });
    p.start();
    try {
      const files = await captureCameraFrames({ env: pw.env, target: sink.target, count: 10, caps: capsFor('YUY2'), timeoutMs: 60_000 });
      // the guest did not change: one conversion, every captured frame shows the same picture
      expect(p.stats.converted).toBe(1);
      const first = decodePng(files[0]);
      const last = decodePng(files[9]);
      const [rx, , rw] = letterbox(640, 480, 640, 360);
      expect(rx).toBe(80);
      expect(rw).toBe(480);
      for (const img of [first, last]) {
        expect(colorDistance(meanColor(img, { x: 0, y: 100, w: 70, h: 100 }), BLACK)).toBeLessThanOrEqual(TOL);
        expect(colorDistance(meanColor(img, { x: 570, y: 100, w: 70, h: 100 }), BLACK)).toBeLessThanOrEqual(TOL);
        expect(colorDistance(meanColor(img, { x: 140, y: 60, w: 40, h: 40 }), RED)).toBeLessThanOrEqual(TOL);
        expect(colorDistance(meanColor(img, { x: 460, y: 260, w: 40, h: 40 }), WHITE)).toBeLessThanOrEqual(TOL);
      }
      expect(sink.nativeStats().repeated).toBeGreaterThan(0);
      // gst has exited: the node goes back to paused and the pipeline stops converting
      await waitFor('camera paused after the consumer left', 20_000, () => sink.state().state === 'paused');
      const g = encodePixman(XRGB, 64, 64, () => GREEN);
      l.update(0, 0, 64, 64, g.stride, XRGB, g.data);
      const before = p.stats.converted;
      await waitFor('a few idle ticks', 10_000, () => p.stats.idle > 5);
      expect(p.stats.converted).toBe(before);
      // a new consumer sees the change
      const again = decodePng((await captureCameraFrames({ env: pw.env, target: sink.target, count: 2, caps: capsFor('NV12'), timeoutMs: 60_000 }))[1]);
      expect(colorDistance(meanColor(again, { x: 84, y: 2, w: 6, h: 6 }), GREEN)).toBeLessThanOrEqual(TOL);
    } finally {
      p.stop();
      await sink.close();
    }
  });

  it('Disable -> the consumer sees the DISPLAY OFF frame, not the last picture', async () => {
    const sink = newSink();
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(XRGB, 640, 360, () => GREEN);
    l.scanout(640, 360, src.stride, XRGB, src.data);
    l.disable();
    const p = new CameraPipeline({ source: l, sink });
    p.start();
    try {
      const img = decodePng((await captureCameraFrames({ env: pw.env, target: sink.target, count: 2, caps: capsFor('I420'), timeoutMs: 60_000 }))[1]);
      expect(colorDistance(meanColor(img, { x: 10, y: 10, w: 40, h: 40 }), { r: 0x20, g: 0x20, b: 0x20 })).toBeLessThanOrEqual(TOL);
    } finally {
      p.stop();
      await sink.close();
    }
  });
});

// The camera clock and its dirty flag, the memfd (ScanoutMap) path, flags and the
// pin-resolution hint — with the real addon for pixels and the fake sink for the output.
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startCamera } from '../../src/camera';
import { CameraConsoleListener } from '../../src/camera/listener';
import { CAMERA_DEFAULTS, cameraConfigOf, type CameraSettings } from '../../src/camera/options';
import { CameraPipeline } from '../../src/camera/pipeline';
import { letterbox } from '../../src/camera/letterbox';
import { FORMAT_CODE, frameBytes } from '../../src/camera/sinks/types';
import { native } from '../../src/native';
import { millimetres, pinGuestResolution } from '../../src/camera/pin-resolution';
import { FakeSink } from '../fakes/camera-sink';
import { tempDir, waitFor } from '../harness/procs';
import { argbAt, dist, encodePixman, rgbAtFrame } from '../harness/yuv';
import { silentLogger } from '../../src/log';
import { lineLogger } from '../fakes/logger';

const XRGB = 0x20020888;
const RED = { r: 255, g: 0, b: 0 };
const GREEN = { r: 0, g: 255, b: 0 };

function withFrame(w = 64, h = 48) {
  const l = new CameraConsoleListener({ log: silentLogger });
  const src = encodePixman(XRGB, w, h, () => RED);
  l.scanout(w, h, src.stride, XRGB, src.data);
  return l;
}

describe('pipeline: converts only on change, steady output', () => {
  it('v4l2-like sink: the last frame is written again every tick, converted once', () => {
    const l = withFrame();
    const sink = new FakeSink({ width: 64, height: 48, fps: 30, format: 'YUY2' });
    const p = new CameraPipeline({ source: l, sink });
    for (let i = 0; i < 5; i++) p.tick();
    expect(p.stats).toMatchObject({ ticks: 5, converted: 1, written: 5 });
    expect(sink.frames.every((f) => f.data.equals(sink.frames[0].data))).toBe(true);
    const g = encodePixman(XRGB, 8, 8, () => GREEN);
    l.update(0, 0, 8, 8, g.stride, XRGB, g.data);
    p.tick();
    p.tick();
    expect(p.stats).toMatchObject({ ticks: 7, converted: 2, written: 7 });
    expect(dist(rgbAtFrame(sink.frames[6].data, 'YUY2', 64, 48, 2, 2), GREEN)).toBeLessThanOrEqual(6);
  });

  it('PipeWire-like sink (repeats by itself): only changed frames are handed over', () => {
    const l = withFrame();
    const sink = new FakeSink({ width: 64, height: 48, fps: 30, format: 'NV12', repeatsItself: true });
    const p = new CameraPipeline({ source: l, sink });
    for (let i = 0; i < 5; i++) p.tick();
    expect(p.stats).toMatchObject({ converted: 1, written: 1 });
    l.mouseSet(3, 3, true); // no cursor image yet: nothing changes
    p.tick();
    expect(p.stats.converted).toBe(1);
    l.cursorDefine({ width: 2, height: 2, hotX: 0, hotY: 0, data: Buffer.alloc(16, 255) });
    p.tick();
    expect(p.stats).toMatchObject({ converted: 2, written: 2 });
  });

  it('nobody watching: nothing converted; a consumer coming back with another format gets a fresh frame', () => {
    const l = withFrame();
    const sink = new FakeSink({ width: 64, height: 48, fps: 30, format: null, repeatsItself: true });
    const p = new CameraPipeline({ source: l, sink });
    p.tick();
    p.tick();
    expect(p.stats).toMatchObject({ idle: 2, converted: 0, written: 0 });
    sink.format = 'I420';
    p.tick();
    expect(sink.frames[0].format).toBe('I420');
    sink.format = null;
    p.tick();
    sink.format = 'I420';
    p.tick();
    expect(p.stats.converted).toBe(2); // converted again after the pause although the picture is the same
    sink.format = 'YUY2';
    p.tick();
    expect(sink.frames.map((f) => f.format)).toEqual(['I420', 'I420', 'YUY2']);
  });

  it('records latency from change arrival to hand-over for every change', () => {
    // a clock of our own: the latencies are then exact, not merely plausible
    let clock = 1000;
    const now = vi.spyOn(performance, 'now').mockImplementation(() => clock);
    try {
      const l = withFrame(); // scanout at 1000
      const sink = new FakeSink({ width: 64, height: 48, fps: 30 });
      const p = new CameraPipeline({ source: l, sink });
      clock = 1002;
      p.tick(); // hands the scanout over
      const g = encodePixman(XRGB, 4, 4, () => GREEN);
      for (let i = 0; i < 3; i++) {
        clock = 1005 + i;
        l.update(i, 0, 4, 4, g.stride, XRGB, g.data);
      }
      clock = 1010;
      p.tick();
      // the scanout (handed over at 1002), then three updates handed over together at 1010
      expect(p.takeLatencies()).toEqual([2, 5, 4, 3]);
      p.tick();
      expect(p.takeLatencies()).toHaveLength(0);
    } finally {
      now.mockRestore();
    }
  });

  it('a sink error is logged once, the clock keeps going', () => {
    const lines: string[] = [];
    const l = withFrame();
    const sink = new FakeSink({ width: 64, height: 48, fps: 30 });
    sink.failWrites = { count: 3, error: new Error('camera: device gone') };
    const p = new CameraPipeline({ source: l, sink, log: lineLogger((s) => lines.push(s)) });
    for (let i = 0; i < 5; i++) p.tick();
    expect(lines).toEqual(['camera: device gone']);
    expect(p.stats).toMatchObject({ errors: 3, written: 2 });
  });

  describe('clock', () => {
    afterEach(() => {
      vi.useRealTimers();
    });
    it('ticks at the camera rate without drift and without bursts after a stall', () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const l = withFrame();
      const sink = new FakeSink({ width: 64, height: 48, fps: 30 });
      const p = new CameraPipeline({ source: l, sink });
      p.start();
      vi.advanceTimersByTime(1000);
      expect(p.stats.ticks).toBe(31); // t=0 and 30 more in one second
      vi.advanceTimersByTime(9000);
      expect(p.stats.ticks).toBe(301);
      p.stop();
      vi.advanceTimersByTime(1000);
      expect(p.stats.ticks).toBe(301);
    });

    /** A guest drawing at `hz` for 4 s, its first update `phaseMs` after the camera started; measured from 0.5 s to 3.1 s. */
    const guestAt = (hz: number, phaseMs: number) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] });
      const l = withFrame();
      const sink = new FakeSink({ width: 64, height: 48, fps: 30 });
      const p = new CameraPipeline({ source: l, sink });
      const handedAt: number[] = [];
      const write = sink.writeFrame.bind(sink);
      sink.writeFrame = (f, fmt) => (handedAt.push(performance.now()), write(f, fmt));
      p.start();
      const g = encodePixman(XRGB, 4, 4, () => GREEN);
      for (let k = 0; k < 4 * hz; k++) setTimeout(() => l.update(0, 0, 4, 4, g.stride, XRGB, g.data), phaseMs + (k * 1000) / hz);
      vi.advanceTimersByTime(500);
      p.takeLatencies();
      handedAt.length = 0;
      vi.advanceTimersByTime(2600);
      p.stop();
      const gaps = handedAt.slice(1).map((t, i) => t - handedAt[i]);
      return { latencies: p.takeLatencies(), frames: handedAt.length, gaps };
    };

    it.each([1, 8, 16])('a guest at 60/s, first update %i ms after a tick: every change shown within half a period, 30 frames/s', (phaseMs) => {
      const { latencies, frames, gaps } = guestAt(60, phaseMs);
      expect(latencies.length).toBeGreaterThanOrEqual(154); // 2.6 s of updates at 60/s
      // Fake time: conversion takes no time, so this is the pacing alone (a fixed clock: up to
      // 33 ms). Fake timers fire on whole milliseconds: the guest's 16.7 ms steps become 16 or 17.
      expect(Math.max(...latencies)).toBeLessThanOrEqual(1000 / 60 + 1.5);
      expect(frames).toBeGreaterThanOrEqual(77); // 2.6 s at 30/s
      expect(frames).toBeLessThanOrEqual(79);
      // never closer than a period minus the slack
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual((1000 / 30) * 0.75 - 0.01);
    });

    it('a guest at 38/s: about 30 frames/s, not 38 (early frames need credit), each change shown within a period and a quarter', () => {
      const { latencies, frames } = guestAt(38, 3);
      expect(frames).toBeGreaterThanOrEqual(76);
      expect(frames).toBeLessThanOrEqual(84); // 2.6 s at 30/s + 1/16: 83; at 38/s it would be 99
      expect(Math.max(...latencies)).toBeLessThanOrEqual((1000 / 30) * 1.25 + 1);
    });

    it("a change the clock's own tick takes before the early frame runs makes one frame, not two", () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] });
      const l = withFrame();
      const sink = new FakeSink({ width: 64, height: 48, fps: 30 }); // written every tick
      const p = new CameraPipeline({ source: l, sink });
      p.start();
      vi.advanceTimersByTime(1000 + 26); // 26 ms after a tick: a change now is shown early
      const before = sink.frames.length;
      const g = encodePixman(XRGB, 4, 4, () => GREEN);
      l.update(0, 0, 4, 4, g.stride, XRGB, g.data);
      p.tick(); // the clock's tick, due at the same moment, runs first
      vi.advanceTimersByTime(0); // then the early frame's turn
      expect(sink.frames.length).toBe(before + 1);
      p.stop();
    });

    it('a lone change soon after a frame is shown at the next regular tick, not held back', () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] });
      const l = withFrame();
      const sink = new FakeSink({ width: 64, height: 48, fps: 30 }); // written every tick
      const p = new CameraPipeline({ source: l, sink });
      p.start();
      vi.advanceTimersByTime(1000 + 5); // ticks at 0, 33.3 .. 1000: 5 ms after the last
      p.takeLatencies();
      const g = encodePixman(XRGB, 4, 4, () => GREEN);
      l.update(0, 0, 4, 4, g.stride, XRGB, g.data);
      vi.advanceTimersByTime(40);
      // the regular tick 28.3 ms later (fake timers fire on whole ms), not a held-back 36.7 ms
      const latencies = p.takeLatencies();
      expect(latencies).toHaveLength(1);
      expect(latencies[0]).toBeGreaterThanOrEqual(27);
      expect(latencies[0]).toBeLessThanOrEqual(29);
      p.stop();
    });

    it('a lone change long after the last frame is shown on the next turn of the event loop', () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'] });
      const l = withFrame();
      const sink = new FakeSink({ width: 64, height: 48, fps: 30, repeatsItself: true });
      const p = new CameraPipeline({ source: l, sink });
      p.start();
      vi.advanceTimersByTime(1005);
      p.takeLatencies();
      const g = encodePixman(XRGB, 4, 4, () => GREEN);
      l.update(0, 0, 4, 4, g.stride, XRGB, g.data);
      vi.advanceTimersByTime(0);
      expect(p.takeLatencies()).toEqual([0]);
      p.stop();
    });
  });
});

describe('pipeline: only what changed is converted again', () => {
  it.each([
    [96, 54, 64, 36, 'YUY2'],
    [64, 48, 64, 48, 'I420'],
    [100, 60, 64, 48, 'NV12'],
  ] as const)('%ix%i -> %ix%i %s: Updates and cursor moves give the frame a whole conversion gives', (gw, gh, cw, ch, format) => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const sink = new FakeSink({ width: cw, height: ch, fps: 30, format });
    const p = new CameraPipeline({ source: l, sink });
    const noise = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed * 13 + ((i * seed) >> 3)) & 0xff));
    l.scanout(gw, gh, gw * 4, XRGB, noise(gw * gh * 4, 1));
    l.update(0, 0, 2, 2, 8, XRGB, noise(16, 2)); // the picture is now the framebuffer, drawn over from here on
    l.cursorDefine({ width: 6, height: 5, hotX: 1, hotY: 1, data: noise(6 * 5 * 4, 3) });
    const damages: unknown[] = [];
    const compose = native.yuvCompose;
    const spy = vi.spyOn(native, 'yuvCompose').mockImplementation((o) => (damages.push(o.damage), compose(o)));
    try {
      const steps: (() => void)[] = [
        () => l.update(10, 7, 9, 4, 36, XRGB, noise(9 * 4 * 4, 4)),
        () => l.mouseSet(20, 10, true),
        () => l.mouseSet(gw - 2, gh - 1, true),
        () => l.update(gw - 5, 0, 5, gh, 20, XRGB, noise(5 * gh * 4, 5)),
        () => l.mouseSet(3, 30, false),
        () => l.update(0, gh - 2, gw, 2, gw * 4, XRGB, noise(gw * 2 * 4, 6)),
      ];
      p.tick();
      for (const [k, step] of steps.entries()) {
        step();
        p.tick();
        const pic = l.picture()!;
        const cursor = l.cursor();
        const whole = Buffer.alloc(frameBytes(format, cw, ch));
        compose({ fb: pic.data, fbStride: pic.stride, fbWidth: pic.width, fbHeight: pic.height, cursor, cursorWork: Buffer.alloc(gw * gh * 4 + 4096), scratch: Buffer.alloc(cw * ch * 4), camWidth: cw, camHeight: ch, rect: letterbox(gw, gh, cw, ch), format: FORMAT_CODE[format], out: whole });
        expect(sink.frames.at(-1)!.data.equals(whole), `after step ${k}`).toBe(true);
      }
    } finally {
      spy.mockRestore();
    }
    // the first conversion was whole, every one after the steps only a part
    expect(damages[0]).toBeUndefined();
    expect(damages.slice(1)).toHaveLength(6);
    for (const d of damages.slice(1)) expect(d).toEqual(expect.any(Array));
  });
});

describe('ScanoutMap / UpdateMap (memfd, read with pread)', () => {
  // A plain file stands in for QEMU's memfd: the listener only preads it and closes it.
  let dir: string;
  beforeEach(() => {
    dir = tempDir('cam-map');
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const memfd = (contents: Buffer, flags = 'r'): number => {
    const file = path.join(dir, 'memfd');
    fs.writeFileSync(file, contents);
    return fs.openSync(file, flags);
  };
  const loggingListener = () => {
    const lines: string[] = [];
    return { lines, l: new CameraConsoleListener({ log: lineLogger((s) => lines.push(s)) }) };
  };

  it('reads the mapped scanout at its offset and applies damage rectangles', () => {
    const w = 33;
    const h = 21;
    const stride = 33 * 4 + 12;
    const offset = 100;
    const pic = encodePixman(XRGB, w, h, () => RED, stride);
    const fd = memfd(Buffer.concat([Buffer.alloc(offset, 0x55), pic.data]), 'r+');
    const l = new CameraConsoleListener({ log: silentLogger });
    const v0 = l.version;
    l.scanoutMap(fd, offset, w, h, stride, XRGB);
    expect(l.version).toBe(v0 + 1);
    expect([l.fb.width, l.fb.height]).toEqual([w, h]);
    expect(argbAt(l.fb.data, l.fb.stride, 32, 20)).toEqual(RED);
    // the guest draws green into a rectangle of the shared memory, QEMU sends UpdateMap
    const g = encodePixman(XRGB, 5, 3, () => GREEN);
    for (let y = 0; y < 3; y++) fs.writeSync(fd, g.data, y * g.stride, g.stride, offset + (10 + y) * stride + 7 * 4);
    expect(argbAt(l.fb.data, l.fb.stride, 8, 11)).toEqual(RED);
    l.updateMap(7, 10, 5, 3);
    expect(argbAt(l.fb.data, l.fb.stride, 8, 11)).toEqual(GREEN);
    expect(argbAt(l.fb.data, l.fb.stride, 12, 11)).toEqual(RED);
    // a new Scanout releases (closes) the memfd we own
    const src = encodePixman(XRGB, 4, 4, () => GREEN);
    l.scanout(4, 4, src.stride, XRGB, src.data);
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
  });

  it('whole rows at the picture stride (one pread) and a 16-bit surface (converted) read the same way', () => {
    for (const [format, bpp] of [
      [XRGB, 4],
      [0x10020565, 2], // r5g6b5
    ]) {
      const w = 16;
      const h = 6;
      const pic = encodePixman(format, w, h, () => RED, w * bpp);
      const fd = memfd(pic.data, 'r+');
      const l = new CameraConsoleListener({ log: silentLogger });
      l.scanoutMap(fd, 0, w, h, w * bpp, format);
      expect(argbAt(l.picture()!.data, l.picture()!.stride, 15, 5)).toEqual(RED);
      const g = encodePixman(format, w, 2, () => GREEN, w * bpp);
      fs.writeSync(fd, g.data, 0, g.data.length, 3 * w * bpp);
      l.updateMap(0, 3, w, 2);
      const p = l.picture()!;
      expect([argbAt(p.data, p.stride, 0, 2), argbAt(p.data, p.stride, 15, 3), argbAt(p.data, p.stride, 7, 4), argbAt(p.data, p.stride, 7, 5)]).toEqual([RED, GREEN, GREEN, RED]);
      l.close();
    }
  });

  it('a mapped surface too large to hold is refused with one line and its fd closed', () => {
    const fd = memfd(Buffer.alloc(100));
    const { lines, l } = loggingListener();
    l.scanoutMap(fd, 0, 16384, 16384, 65536, XRGB);
    expect(lines).toEqual([expect.stringMatching(/dropped a ScanoutMap: picture 16384x16384 is larger than/)]);
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
    expect(l.picture()).toBeNull();
  });

  it('a memfd shorter than announced is reported and dropped, not read past', () => {
    const fd = memfd(Buffer.alloc(100));
    const { lines, l } = loggingListener();
    l.scanoutMap(fd, 0, 64, 64, 256, XRGB);
    expect(lines[0]).toMatch(/mapped scanout is shorter/);
    expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
  });
});

describe('startCamera (settings -> sink -> running pipeline)', () => {
  it('file target: frames of the configured size and format reach the file; none: no camera', async () => {
    const dir = tempDir('cam-start');
    const file = path.join(dir, 'cam.yuv');
    const cfg = cameraConfigOf({ ...CAMERA_DEFAULTS, device: `file:${file}`, size: '64x48', fps: 50, format: 'I420' });
    const cam = startCamera(cfg, 'vm1', { log: silentLogger })!;
    const src = encodePixman(XRGB, 100, 100, () => GREEN);
    cam.listener.scanout(100, 100, src.stride, XRGB, src.data);
    await waitFor('two frames written', 20_000, () => cam.sink.stats().written >= 2);
    await cam.stop();
    const bytes = fs.readFileSync(file);
    const n = 64 * 48 * 1.5;
    expect(bytes.length % n).toBe(0);
    expect(bytes.length / n).toBeGreaterThanOrEqual(2);
    const last = bytes.subarray(bytes.length - n);
    expect(dist(rgbAtFrame(last, 'I420', 64, 48, 32, 24), GREEN)).toBeLessThanOrEqual(6);
    expect(startCamera(cameraConfigOf({ ...CAMERA_DEFAULTS, device: 'none' }), 'vm1')).toBeNull();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('settings (the [camera] table; the config schema validates with the same parsers)', () => {
  const settings = (over: Partial<CameraSettings>): CameraSettings => ({ ...CAMERA_DEFAULTS, ...over });
  it('defaults: auto 1280x720@30 YUY2, cursor on; auto is a PipeWire camera node without a v4l2loopback device', () => {
    expect(CAMERA_DEFAULTS.device).toBe('auto');
    expect(cameraConfigOf(CAMERA_DEFAULTS, () => [])).toEqual({ target: { kind: 'pipewire' }, width: 1280, height: 720, fps: 30, format: 'YUY2', pinResolution: false, cursor: true });
  });
  it('auto takes the first v4l2loopback device the listing shows', () => {
    const listing = () => [
      { node: '/dev/video10', name: 'VM camera' },
      { node: '/dev/video11', name: 'other' },
    ];
    expect(cameraConfigOf(CAMERA_DEFAULTS, listing).target).toEqual({ kind: 'v4l2', path: '/dev/video10' });
    expect(cameraConfigOf(settings({ device: 'pipewire' }), listing).target).toEqual({ kind: 'pipewire' });
  });
  it('parses devices, files, sizes', () => {
    expect(cameraConfigOf(settings({ device: '/dev/video10', size: '640x480', fps: 15, format: 'NV12' }))).toMatchObject({
      target: { kind: 'v4l2', path: '/dev/video10' },
      width: 640,
      height: 480,
      fps: 15,
      format: 'NV12',
    });
    expect(cameraConfigOf(settings({ device: 'file:/tmp/x.yuv' })).target).toEqual({ kind: 'file', path: '/tmp/x.yuv' });
    expect(cameraConfigOf(settings({ device: 'none' })).target).toEqual({ kind: 'none' });
  });
  it.each([
    [{ size: '1281x720' }, /must be even/],
    [{ size: '1280*720' }, /expected WIDTHxHEIGHT/],
    [{ size: '20x20' }, /between 48x32/],
    [{ fps: 0 }, /1 to 120/],
    [{ fps: 29.97 }, /whole number/],
    [{ format: 'MJPG' }, /YUY2, I420 or NV12/],
    [{ device: 'video10' }, /\/dev\/video10/],
    [{ device: '/dev/sda' }, /\/dev\/video10/],
    [{ device: 'file:relative.yuv' }, /file:\/path/],
  ])('%j -> one clear usage error', (over, re) => {
    let err: (Error & { code?: string }) | undefined;
    try {
      cameraConfigOf(settings(over as Partial<CameraSettings>));
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('EUSAGE');
    expect(err?.message).toMatch(re);
    expect(err?.message.split('\n')).toHaveLength(1);
  });
});

describe('--camera-pin-resolution', () => {
  it('asks the guest for the camera size (96 dpi physical size)', async () => {
    const calls: number[][] = [];
    const ok = await pinGuestResolution({ setUIInfo: async (...a) => void calls.push(a) }, 1280, 720, silentLogger);
    expect(ok).toBe(true);
    expect(calls).toEqual([[millimetres(1280), millimetres(720), 0, 0, 1280, 720]]);
    expect(millimetres(1280)).toBe(339);
  });
  it('std VGA/bochs (Error.Unsupported): one line that says what to use instead', async () => {
    const lines: string[] = [];
    const err = Object.assign(new Error('SetUIInfo is not supported'), { name: 'RemoteCallError', dbusName: 'org.qemu.Display1.Error.Unsupported', code: 'EUNSUPPORTED' });
    const ok = await pinGuestResolution({ setUIInfo: () => Promise.reject(err) }, 1280, 720, lineLogger((l) => lines.push(l)));
    expect(ok).toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/virtio-vga/);
  });
});
